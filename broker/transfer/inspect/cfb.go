package inspect

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf16"
)

// Compound File Binary (OLE2) is the container of legacy Office documents
// (.doc, .xls, .ppt), of encrypted OOXML documents, of Windows Installer
// packages and of Outlook messages. [MS-CFB] describes it: a FAT file
// system in a file, whose directory names storages and streams.

var cfbMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

// Special FAT values.
const (
	cfbMaxRegSect = 0xfffffffa
	cfbEndOfChain = 0xfffffffe
	cfbFreeSect   = 0xffffffff
)

// Directory entry object types.
const (
	cfbStorage = 1
	cfbStream  = 2
	cfbRoot    = 5
)

const (
	cfbHeaderLen  = 512
	cfbDirEntLen  = 128
	cfbMaxEntries = 1 << 17
	cfbMaxMiniFAT = 1 << 22 // mini FAT entries read, 256 MiB of small streams
)

// msiCLSIDs are the root storage classes of Windows Installer packages,
// patches and transforms ({000C1084-…}, {000C1086-…}, {000C1082-…}).
var msiCLSIDSuffix = []byte{0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}

// Stream and storage names that say what a compound file holds, compared
// case-insensitively as CFB does.
var (
	cfbMacroNames     = []string{"VBA", "_VBA_PROJECT", "_VBA_PROJECT_CUR", "Macros"}
	cfbEncryptedNames = []string{"EncryptedPackage", "EncryptionInfo", "EncryptedSummary"}
)

type cfbEntry struct {
	name  string
	typ   byte
	clsid []byte
	start uint32
	size  uint64
}

// cfbFile is a parsed compound file: its FAT and directory.
type cfbFile struct {
	src        *source
	shift      uint
	secSize    int64
	miniShift  uint
	miniCutoff uint64
	miniFATAt  uint32
	fat        []uint32
	entries    []cfbEntry

	miniFAT    []uint32
	miniStream []uint32 // sectors of the root entry's stream
}

// inspectCFB inspects a compound file.
func inspectCFB(src *source, rep *report) error {
	rep.MIME, rep.Class = "application/x-ole-storage", ClassOffice
	f, err := parseCFB(src)
	if isMalformed(err) {
		// Office may still open what this parser cannot: assume the worst.
		rep.Macros = true
		rep.note("OLE2 compound file unreadable (%v); it may contain macros", err)
		return nil
	}
	if err != nil {
		return err
	}
	names := map[string]*cfbEntry{}
	for i := range f.entries {
		e := &f.entries[i]
		if e.typ == cfbStorage || e.typ == cfbStream || e.typ == cfbRoot {
			if _, dup := names[strings.ToLower(e.name)]; !dup {
				names[strings.ToLower(e.name)] = e
			}
		}
	}
	has := func(name string) *cfbEntry { return names[strings.ToLower(name)] }

	if root := f.root(); root != nil && len(root.clsid) == 16 && (root.clsid[0] == 0x82 || root.clsid[0] == 0x84 || root.clsid[0] == 0x86) && bytes.Equal(root.clsid[1:], msiCLSIDSuffix) {
		rep.MIME, rep.Class = "application/x-msi", ClassExecutable
		rep.note("Windows Installer package")
		return nil
	}
	switch {
	case has("EncryptedPackage") != nil:
		rep.note("encrypted Office document (EncryptedPackage)")
	case has("WordDocument") != nil:
		rep.MIME = "application/msword"
		rep.note("Word document (OLE2)")
	case has("Workbook") != nil || has("Book") != nil:
		rep.MIME = "application/vnd.ms-excel"
		rep.note("Excel workbook (OLE2)")
	case has("PowerPoint Document") != nil:
		rep.MIME = "application/vnd.ms-powerpoint"
		rep.note("PowerPoint presentation (OLE2)")
	case has("__properties_version1.0") != nil:
		rep.MIME = "application/vnd.ms-outlook"
		rep.note("Outlook message")
	}
	for _, n := range cfbEncryptedNames {
		if e := has(n); e != nil {
			rep.Encrypted = true
			rep.note("%s stream present", e.name)
			break
		}
	}
	for _, n := range cfbMacroNames {
		if e := has(n); e != nil {
			rep.Macros = true
			kind := "stream"
			if e.typ == cfbStorage {
				kind = "storage"
			}
			rep.note("%s %s present", e.name, kind)
			break
		}
	}
	if rep.Encrypted {
		return nil
	}
	return f.legacyEncryption(has, rep)
}

// legacyEncryption finds the password protection of Word, Excel and
// PowerPoint 97–2003 files, which is a flag inside their main stream.
func (f *cfbFile) legacyEncryption(has func(string) *cfbEntry, rep *report) error {
	if e := has("WordDocument"); e != nil && e.typ == cfbStream {
		fib, err := f.readStream(e, 12)
		if err != nil && !isMalformed(err) {
			return err
		}
		// FibBase: wIdent 0xA5EC, then fEncrypted is bit 8 of the flags
		// at offset 10 ([MS-DOC] 2.5.2).
		if err == nil && len(fib) >= 12 && binary.LittleEndian.Uint16(fib) == 0xa5ec && binary.LittleEndian.Uint16(fib[10:])&0x0100 != 0 {
			rep.Encrypted = true
			rep.note("Word document is password-protected")
		}
	}
	for _, name := range []string{"Workbook", "Book"} {
		e := has(name)
		if e == nil || e.typ != cfbStream {
			continue
		}
		data, err := f.readStream(e, 8<<10)
		if err != nil && !isMalformed(err) {
			return err
		}
		if err == nil && biffFilePass(data) {
			rep.Encrypted = true
			rep.note("Excel workbook is password-protected")
		}
	}
	if e := has("Current User"); e != nil && e.typ == cfbStream && has("PowerPoint Document") != nil {
		cu, err := f.readStream(e, 16)
		if err != nil && !isMalformed(err) {
			return err
		}
		// CurrentUserAtom.headerToken says whether the document is
		// encrypted ([MS-PPT] 2.3.2).
		if err == nil && len(cu) >= 16 && binary.LittleEndian.Uint32(cu[12:]) == 0xf3d1c4df {
			rep.Encrypted = true
			rep.note("PowerPoint presentation is password-protected")
		}
	}
	return nil
}

// biffFilePass reports whether the globals substream of a BIFF workbook
// has a FILEPASS record, which follows the first BOF when the workbook is
// encrypted.
func biffFilePass(data []byte) bool {
	for i := 0; i < 64 && len(data) >= 4; i++ {
		typ := binary.LittleEndian.Uint16(data)
		n := int(binary.LittleEndian.Uint16(data[2:]))
		switch {
		case typ == 0x002f:
			return true
		case i > 0 && (typ == 0x0809 || typ == 0x0085 || typ == 0x000a):
			// The next BOF, a BOUNDSHEET or EOF: past where FILEPASS is.
			return false
		}
		if n > len(data)-4 {
			return false
		}
		data = data[4+n:]
	}
	return false
}

func (f *cfbFile) root() *cfbEntry {
	if len(f.entries) > 0 && f.entries[0].typ == cfbRoot {
		return &f.entries[0]
	}
	return nil
}

// parseCFB reads the header, the FAT and the directory.
func parseCFB(src *source) (*cfbFile, error) {
	h, err := src.read(0, cfbHeaderLen)
	if err != nil {
		return nil, err
	}
	major := binary.LittleEndian.Uint16(h[0x1a:])
	shift := uint(binary.LittleEndian.Uint16(h[0x1e:]))
	if binary.LittleEndian.Uint16(h[0x1c:]) != 0xfffe {
		return nil, malformed("bad byte order mark")
	}
	if !(major == 3 && shift == 9 || major == 4 && shift == 12) {
		return nil, malformed("version %d with %d-byte sectors is not a compound file version", major, 1<<min(shift, 31))
	}
	miniShift := uint(binary.LittleEndian.Uint16(h[0x20:]))
	if miniShift != 6 {
		return nil, malformed("mini sector shift %d, want 6", miniShift)
	}
	f := &cfbFile{
		src:        src,
		shift:      shift,
		secSize:    1 << shift,
		miniShift:  miniShift,
		miniCutoff: uint64(binary.LittleEndian.Uint32(h[0x38:])),
		miniFATAt:  binary.LittleEndian.Uint32(h[0x3c:]),
	}
	if err := f.loadFAT(h); err != nil {
		return nil, err
	}
	if err := f.loadDirectory(binary.LittleEndian.Uint32(h[0x30:]), major); err != nil {
		return nil, err
	}
	return f, nil
}

// sectors is how many sectors the file holds after its header.
func (f *cfbFile) sectors() int64 {
	return (f.src.size - f.secSize + f.secSize - 1) / f.secSize
}

// readSector returns sector id; a last sector cut short by the end of the
// file is padded.
func (f *cfbFile) readSector(id uint32) ([]byte, error) {
	if id > cfbMaxRegSect || int64(id) >= f.sectors() {
		return nil, malformed("sector %d outside the file", id)
	}
	off := (int64(id) + 1) << f.shift
	n := min(f.secSize, f.src.size-off)
	b, err := f.src.read(off, int(n))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < f.secSize {
		b = append(b, make([]byte, f.secSize-int64(len(b)))...)
	}
	return b, nil
}

// loadFAT reads the sectors the DIFAT lists into the FAT.
func (f *cfbFile) loadFAT(h []byte) error {
	numFAT := int64(binary.LittleEndian.Uint32(h[0x2c:]))
	if numFAT > f.sectors() {
		return malformed("%d FAT sectors in a file of %d sectors", numFAT, f.sectors())
	}
	ids := make([]uint32, 0, numFAT)
	for i := 0; i < 109 && int64(len(ids)) < numFAT; i++ {
		if id := binary.LittleEndian.Uint32(h[0x4c+4*i:]); id <= cfbMaxRegSect {
			ids = append(ids, id)
		}
	}
	next := binary.LittleEndian.Uint32(h[0x44:])
	perDIFAT := int(f.secSize/4) - 1
	for steps := int64(0); int64(len(ids)) < numFAT && next <= cfbMaxRegSect; steps++ {
		if steps > f.sectors() {
			return malformed("DIFAT chain loops")
		}
		sec, err := f.readSector(next)
		if err != nil {
			return err
		}
		for i := 0; i < perDIFAT && int64(len(ids)) < numFAT; i++ {
			if id := binary.LittleEndian.Uint32(sec[4*i:]); id <= cfbMaxRegSect {
				ids = append(ids, id)
			}
		}
		next = binary.LittleEndian.Uint32(sec[4*perDIFAT:])
	}
	// A FAT needs one entry per sector of the file; more sectors listed
	// than that are repeats or junk.
	if need := (f.sectors() + f.secSize/4 - 1) / (f.secSize / 4); int64(len(ids)) > need {
		ids = ids[:need]
	}
	f.fat = make([]uint32, 0, int64(len(ids))*f.secSize/4)
	for _, id := range ids {
		sec, err := f.readSector(id)
		if err != nil {
			return err
		}
		for i := 0; i < len(sec); i += 4 {
			f.fat = append(f.fat, binary.LittleEndian.Uint32(sec[i:]))
		}
	}
	return nil
}

// chain returns the sectors of the chain that starts at start, at most
// limit of them (0: no limit).
func chain(table []uint32, start uint32, limit int) ([]uint32, error) {
	var ids []uint32
	for id := start; id != cfbEndOfChain; {
		if id > cfbMaxRegSect || int(id) >= len(table) {
			if id == cfbFreeSect && len(ids) == 0 {
				return nil, nil // empty chain
			}
			return nil, malformed("chain through sector %d outside the table", id)
		}
		if len(ids) >= len(table) {
			return nil, malformed("sector chain loops")
		}
		ids = append(ids, id)
		if limit > 0 && len(ids) >= limit {
			break
		}
		id = table[id]
	}
	return ids, nil
}

// loadDirectory reads every directory entry. The tree that links them is
// not needed: every named storage or stream counts, linked or not.
func (f *cfbFile) loadDirectory(first uint32, major uint16) error {
	ids, err := chain(f.fat, first, 0)
	if err != nil {
		return malformed("directory: %v", err)
	}
	if len(ids) == 0 {
		return malformed("no directory")
	}
	for _, id := range ids {
		sec, err := f.readSector(id)
		if err != nil {
			return err
		}
		for off := 0; off+cfbDirEntLen <= len(sec); off += cfbDirEntLen {
			if len(f.entries) >= cfbMaxEntries {
				return malformed("more than %d directory entries", cfbMaxEntries)
			}
			f.entries = append(f.entries, parseCFBEntry(sec[off:off+cfbDirEntLen], major))
		}
	}
	return nil
}

func parseCFBEntry(d []byte, major uint16) cfbEntry {
	nameLen := int(binary.LittleEndian.Uint16(d[0x40:]))
	if nameLen > 64 {
		nameLen = 64
	}
	u := make([]uint16, 0, nameLen/2)
	for i := 0; i+1 < nameLen; i += 2 {
		c := binary.LittleEndian.Uint16(d[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	size := binary.LittleEndian.Uint64(d[0x78:])
	if major == 3 {
		size &= 0xffffffff // the high half is undefined in version 3
	}
	return cfbEntry{
		name:  string(utf16.Decode(u)),
		typ:   d[0x42],
		clsid: d[0x50:0x60],
		start: binary.LittleEndian.Uint32(d[0x74:]),
		size:  size,
	}
}

// readStream returns the first n bytes of a stream (fewer if it is
// shorter).
func (f *cfbFile) readStream(e *cfbEntry, n int) ([]byte, error) {
	n = int(min(uint64(n), e.size))
	if e.size < f.miniCutoff {
		return f.readMiniStream(e.start, n)
	}
	ids, err := chain(f.fat, e.start, int((int64(n)+f.secSize-1)/f.secSize))
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, id := range ids {
		sec, err := f.readSector(id)
		if err != nil {
			return nil, err
		}
		out = append(out, sec...)
	}
	if len(out) < n {
		return nil, malformed("stream shorter than its size")
	}
	return out[:n], nil
}

// readMiniStream reads a small stream, stored in 64-byte mini sectors
// inside the root entry's stream.
func (f *cfbFile) readMiniStream(start uint32, n int) ([]byte, error) {
	if f.miniFAT == nil {
		ids, err := chain(f.fat, f.miniFATAt, int(cfbMaxMiniFAT*4/f.secSize))
		if err != nil {
			return nil, malformed("mini FAT: %v", err)
		}
		f.miniFAT = []uint32{}
		for _, id := range ids {
			sec, err := f.readSector(id)
			if err != nil {
				return nil, err
			}
			for i := 0; i < len(sec); i += 4 {
				f.miniFAT = append(f.miniFAT, binary.LittleEndian.Uint32(sec[i:]))
			}
		}
		root := f.root()
		if root == nil {
			return nil, malformed("no root entry")
		}
		if f.miniStream, err = chain(f.fat, root.start, 0); err != nil {
			return nil, malformed("mini stream: %v", err)
		}
	}
	miniSize := int64(1) << f.miniShift
	ids, err := chain(f.miniFAT, start, int((int64(n)+miniSize-1)/miniSize))
	if err != nil {
		return nil, malformed("mini stream chain: %v", err)
	}
	var out []byte
	for _, id := range ids {
		pos := int64(id) << f.miniShift
		idx := pos / f.secSize
		if idx >= int64(len(f.miniStream)) {
			return nil, malformed("mini sector %d outside the mini stream", id)
		}
		sec, err := f.readSector(f.miniStream[idx])
		if err != nil {
			return nil, err
		}
		in := pos % f.secSize
		out = append(out, sec[in:in+miniSize]...)
	}
	if len(out) < n {
		return nil, malformed("stream shorter than its size")
	}
	return out[:n], nil
}
