package inspect

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// ZIP record signatures.
const (
	zipLocalSig    = "PK\x03\x04"
	zipCentralSig  = "PK\x01\x02"
	zipEndSig      = "PK\x05\x06"
	zip64EndSig    = "PK\x06\x06"
	zip64LocSig    = "PK\x06\x07"
	zipSpannedSig  = "PK\x07\x08"
	zipLocalLen    = 30
	zipCentralLen  = 46
	zipEndLen      = 22
	zip64EndLen    = 56
	zip64LocLen    = 20
	maxZipComment  = 0xffff
	maxZipEntries  = 200_000
	maxZipPartSize = 1 << 20 // largest metadata entry read ([Content_Types].xml, manifests)
)

// zipEncryptedFlags are the general-purpose flag bits of an encrypted entry:
// encrypted, strong encryption, and masked local header (encrypted central
// directory).
const zipEncryptedFlags = 1 | 1<<6 | 1<<13

func isZIP(head []byte) bool {
	return hasPrefixAny(head, zipLocalSig, zipEndSig, zipSpannedSig)
}

// zipEntry is one entry of a ZIP central directory.
type zipEntry struct {
	name   string
	flags  uint16
	method uint16
	csize  uint64
	usize  uint64
	offset int64 // of the local header in the file
}

// zipScan is what one pass over a ZIP's entries found.
type zipScan struct {
	entries     int
	encrypted   []string
	localMissed int
	macros      []string
	executables []string

	contentTypes, mimetype, odfManifest *zipEntry

	jarManifest, classFiles, androidManifest, dex, appx bool
}

func (z *zipScan) entry(e zipEntry, localFlags uint16) {
	z.entries++
	lower := strings.ToLower(e.name)
	if (e.flags|localFlags)&zipEncryptedFlags != 0 || e.method == 99 {
		z.encrypted = append(z.encrypted, e.name)
	}
	keep := func() *zipEntry { c := e; return &c }
	switch {
	case strings.HasSuffix(lower, "vbaproject.bin"):
		z.macros = append(z.macros, e.name)
	case lower == "[content_types].xml":
		z.contentTypes = keep()
	case lower == "mimetype":
		z.mimetype = keep()
	case lower == "meta-inf/manifest.xml":
		z.odfManifest = keep()
	case lower == "meta-inf/manifest.mf":
		z.jarManifest = true
	case lower == "androidmanifest.xml":
		z.androidManifest = true
	case lower == "classes.dex":
		z.dex = true
	case lower == "appxmanifest.xml" || lower == "appxmetadata/appxbundlemanifest.xml":
		z.appx = true
	case strings.HasSuffix(lower, ".class"):
		z.classFiles = true
	case odfMacroPart(lower):
		z.macros = append(z.macros, e.name)
	}
	if runnableExt[extension(lower)] {
		z.executables = append(z.executables, e.name)
	}
}

// odfMacroPart reports whether an OpenDocument entry holds a Basic module
// or a script (the library index files alone do not).
func odfMacroPart(lower string) bool {
	if strings.HasPrefix(lower, "scripts/") && !strings.HasSuffix(lower, "/") {
		return true
	}
	if !strings.HasPrefix(lower, "basic/") || !strings.HasSuffix(lower, ".xml") {
		return false
	}
	switch lower[strings.LastIndexByte(lower, '/')+1:] {
	case "script-lc.xml", "script-lb.xml", "dialog-lc.xml", "dialog-lb.xml":
		return false
	}
	return true
}

// inspectZIP inspects a file that starts like a ZIP archive: every entry
// for encryption, and what kind of package it is (Office, OpenDocument,
// Java, Android, Windows app).
func inspectZIP(src *source, rep *report) error {
	rep.MIME, rep.Class, rep.zip = "application/zip", ClassArchive, true
	z := &zipScan{}
	err := scanZIPDirectory(src, z)
	switch {
	case isMalformed(err):
		rep.note("ZIP directory unreadable (%v); local headers checked instead", err)
		z = &zipScan{}
		if err := scanZIPLocal(src, z); err != nil && !isMalformed(err) {
			return err
		}
	case err != nil:
		return err
	}
	if err := classifyZIP(src, z, rep); err != nil {
		return err
	}
	reportZIP(z, rep)
	return nil
}

// appendedZIP finds a ZIP archive at the end of a file that is something
// else at its start (a self-extracting program, a picture with an archive
// appended): archive tools open it all the same.
func appendedZIP(src *source, rep *report) error {
	if rep.zip || src.size < zipEndLen {
		return nil
	}
	z := &zipScan{}
	err := scanZIPDirectory(src, z)
	if isMalformed(err) || (err == nil && z.entries == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	rep.note("ZIP archive appended (%d entries)", z.entries)
	rep.restrict(ClassArchive)
	reportZIP(z, rep)
	return nil
}

// reportZIP turns what the entries showed into the report.
func reportZIP(z *zipScan, rep *report) {
	if len(z.encrypted) > 0 {
		rep.Encrypted = true
		if len(z.encrypted) == 1 {
			rep.note("ZIP entry %s is encrypted", printable(z.encrypted[0], 80))
		} else {
			rep.note("ZIP entry %s and %d more are encrypted", printable(z.encrypted[0], 80), len(z.encrypted)-1)
		}
	}
	if len(z.macros) > 0 {
		rep.Macros = true
		rep.note("%s present", printable(z.macros[0], 80))
	}
	if len(z.executables) > 0 && rep.Class == ClassArchive {
		rep.note("contains %s", printable(z.executables[0], 80))
	}
	if z.localMissed > 0 {
		rep.note("%d ZIP entries without a local header", z.localMissed)
	}
	if z.entries >= maxZipEntries {
		rep.note("ZIP has more than %d entries; the rest were not inspected", maxZipEntries)
	}
}

// classifyZIP decides what kind of ZIP-based file it is.
func classifyZIP(src *source, z *zipScan, rep *report) error {
	switch {
	case z.appx:
		rep.MIME, rep.Class = "application/vnd.ms-appx", ClassExecutable
		rep.note("Windows app package")
	case z.androidManifest && z.dex:
		rep.MIME, rep.Class = "application/vnd.android.package-archive", ClassExecutable
		rep.note("Android app package")
	case z.jarManifest && z.classFiles:
		rep.MIME, rep.Class = "application/java-archive", ClassExecutable
		rep.note("Java archive")
	case z.contentTypes != nil:
		return classifyOOXML(src, z, rep)
	case z.mimetype != nil:
		return classifyODF(src, z, rep)
	}
	return nil
}

// ooxmlTypes is the [Content_Types].xml part of an Office Open XML package.
type ooxmlTypes struct {
	Defaults []struct {
		Extension   string `xml:"Extension,attr"`
		ContentType string `xml:"ContentType,attr"`
	} `xml:"Default"`
	Overrides []struct {
		PartName    string `xml:"PartName,attr"`
		ContentType string `xml:"ContentType,attr"`
	} `xml:"Override"`
}

func classifyOOXML(src *source, z *zipScan, rep *report) error {
	rep.Class = ClassOffice
	data, err := readZIPEntry(src, *z.contentTypes)
	if isMalformed(err) {
		rep.note("[Content_Types].xml unreadable: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	var types ooxmlTypes
	if err := xml.Unmarshal(data, &types); err != nil {
		rep.note("[Content_Types].xml unreadable: %v", err)
		return nil
	}
	all := make([]string, 0, len(types.Defaults)+len(types.Overrides))
	for _, d := range types.Defaults {
		all = append(all, d.ContentType)
	}
	for _, o := range types.Overrides {
		all = append(all, o.ContentType)
		if main, ok := strings.CutSuffix(o.ContentType, ".main+xml"); ok && rep.MIME == "application/zip" {
			rep.MIME = main
			if strings.Contains(strings.ToLower(main), "macroenabled") {
				rep.MIME += ".12"
			}
		}
	}
	rep.note("%s", ooxmlKind(rep.MIME))
	for _, ct := range all {
		lower := strings.ToLower(ct)
		if strings.Contains(lower, "macroenabled") || strings.Contains(lower, "vbaproject") {
			rep.Macros = true
			rep.note("content types declare macros (%s)", printable(ct, 80))
			break
		}
	}
	return nil
}

func ooxmlKind(mime string) string {
	lower := strings.ToLower(mime)
	switch {
	case strings.Contains(lower, "wordprocessingml") || strings.Contains(lower, "ms-word"):
		return "Word document (OOXML)"
	case strings.Contains(lower, "spreadsheetml") || strings.Contains(lower, "ms-excel"):
		return "Excel workbook (OOXML)"
	case strings.Contains(lower, "presentationml") || strings.Contains(lower, "ms-powerpoint"):
		return "PowerPoint presentation (OOXML)"
	}
	return "Office Open XML package"
}

func classifyODF(src *source, z *zipScan, rep *report) error {
	data, err := readZIPEntry(src, *z.mimetype)
	if err != nil && !isMalformed(err) {
		return err
	}
	mime := string(bytes.TrimSpace(data))
	if err != nil || !strings.HasPrefix(mime, "application/vnd.oasis.opendocument.") || len(mime) > 100 || strings.ContainsAny(mime, " ;\"") {
		return nil // some other ZIP with a file called mimetype
	}
	rep.MIME, rep.Class = mime, ClassOffice
	rep.note("OpenDocument (%s)", strings.TrimPrefix(mime, "application/vnd.oasis.opendocument."))
	if z.odfManifest == nil {
		return nil
	}
	manifest, err := readZIPEntry(src, *z.odfManifest)
	switch {
	case isMalformed(err):
		rep.note("META-INF/manifest.xml unreadable: %v", err)
	case err != nil:
		return err
	case bytes.Contains(manifest, []byte("encryption-data")):
		rep.Encrypted = true
		rep.note("OpenDocument is password-protected")
	}
	return nil
}

// readZIPEntry returns the content of a small entry (at most
// maxZipPartSize bytes).
func readZIPEntry(src *source, e zipEntry) ([]byte, error) {
	if e.flags&zipEncryptedFlags != 0 {
		return nil, malformed("%s is encrypted", e.name)
	}
	if e.usize > maxZipPartSize {
		return nil, malformed("%s is larger than %d bytes", e.name, maxZipPartSize)
	}
	lh, err := src.read(e.offset, zipLocalLen)
	if err != nil {
		return nil, err
	}
	if string(lh[:4]) != zipLocalSig {
		return nil, malformed("%s: no local header at offset %d", e.name, e.offset)
	}
	dataOff := e.offset + zipLocalLen + int64(binary.LittleEndian.Uint16(lh[26:])) + int64(binary.LittleEndian.Uint16(lh[28:]))
	if e.csize > uint64(src.size) || dataOff > src.size-int64(e.csize) {
		return nil, malformed("%s: data past the end of the file", e.name)
	}
	raw := io.NewSectionReader(src.r, dataOff, int64(e.csize))
	var rd io.Reader
	switch e.method {
	case 0:
		rd = raw
	case 8:
		fr := flate.NewReader(raw)
		defer fr.Close()
		rd = fr
	default:
		return nil, malformed("%s: compression method %d not supported", e.name, e.method)
	}
	data, err := io.ReadAll(io.LimitReader(rd, maxZipPartSize+1))
	var ce flate.CorruptInputError
	switch {
	case errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, malformed("%s: %v", e.name, err)
	case err != nil:
		return nil, err
	case len(data) > maxZipPartSize:
		return nil, malformed("%s is larger than %d bytes", e.name, maxZipPartSize)
	}
	return data, nil
}

// scanZIPDirectory reads the central directory and each entry's local
// header: an extractor may follow either, so both must say "not
// encrypted".
func scanZIPDirectory(src *source, z *zipScan) error {
	cdStart, cdSize, base, err := findZIPDirectory(src)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(io.NewSectionReader(src.r, cdStart, cdSize), 64<<10)
	hdr := make([]byte, zipCentralLen)
	for z.entries < maxZipEntries {
		if _, err := io.ReadFull(br, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return malformed("central directory cut short after %d entries", z.entries)
			}
			return err
		}
		if string(hdr[:4]) != zipCentralSig {
			if z.entries == 0 {
				return malformed("no central directory at offset %d", cdStart)
			}
			return nil // digital signature or zip64 records follow
		}
		var (
			flags      = binary.LittleEndian.Uint16(hdr[8:])
			method     = binary.LittleEndian.Uint16(hdr[10:])
			csize      = uint64(binary.LittleEndian.Uint32(hdr[20:]))
			usize      = uint64(binary.LittleEndian.Uint32(hdr[24:]))
			nameLen    = int(binary.LittleEndian.Uint16(hdr[28:]))
			extraLen   = int(binary.LittleEndian.Uint16(hdr[30:]))
			commentLen = int(binary.LittleEndian.Uint16(hdr[32:]))
			offset     = uint64(binary.LittleEndian.Uint32(hdr[42:]))
		)
		rest := make([]byte, nameLen+extraLen+commentLen)
		if _, err := io.ReadFull(br, rest); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return malformed("central directory cut short in entry %d", z.entries+1)
			}
			return err
		}
		usize, csize, offset = zip64Sizes(rest[nameLen:nameLen+extraLen], usize, csize, offset)
		e := zipEntry{name: string(rest[:nameLen]), flags: flags, method: method, csize: csize, usize: usize}
		if offset > uint64(src.size) {
			return malformed("entry %s: local header offset %d past the end", printable(e.name, 80), offset)
		}
		e.offset = base + int64(offset)
		localFlags, err := zipLocalFlags(src, e.offset)
		if isMalformed(err) {
			z.localMissed++
		} else if err != nil {
			return err
		}
		z.entry(e, localFlags)
	}
	return nil
}

// zip64Sizes applies the Zip64 extended information extra field.
func zip64Sizes(extra []byte, usize, csize, offset uint64) (uint64, uint64, uint64) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		size := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if size > len(extra) {
			break
		}
		field := extra[:size]
		extra = extra[size:]
		if id != 0x0001 {
			continue
		}
		next := func(v *uint64) {
			if *v == 0xffffffff && len(field) >= 8 {
				*v = binary.LittleEndian.Uint64(field)
				field = field[8:]
			}
		}
		next(&usize)
		next(&csize)
		next(&offset)
	}
	return usize, csize, offset
}

// zipLocalFlags returns the general-purpose flags of the local header at
// off.
func zipLocalFlags(src *source, off int64) (uint16, error) {
	lh, err := src.read(off, zipLocalLen)
	if err != nil {
		return 0, err
	}
	if string(lh[:4]) != zipLocalSig {
		return 0, malformed("no local header at offset %d", off)
	}
	return binary.LittleEndian.Uint16(lh[6:]), nil
}

// findZIPDirectory locates the central directory from the end of central
// directory record (and its Zip64 form). base is what to add to the
// offsets the archive records: nonzero when something is prepended to it.
func findZIPDirectory(src *source) (cdStart, cdSize, base int64, err error) {
	tailLen := min(src.size, zipEndLen+maxZipComment)
	tail, err := src.read(src.size-tailLen, int(tailLen))
	if err != nil {
		return 0, 0, 0, err
	}
	i := len(tail) - zipEndLen
	for ; i >= 0; i-- {
		if string(tail[i:i+4]) == zipEndSig && i+zipEndLen+int(binary.LittleEndian.Uint16(tail[i+20:])) <= len(tail) {
			break
		}
	}
	if i < 0 {
		return 0, 0, 0, malformed("no end of central directory record")
	}
	end := tail[i:]
	endPos := src.size - tailLen + int64(i)
	size := uint64(binary.LittleEndian.Uint32(end[12:]))
	offset := uint64(binary.LittleEndian.Uint32(end[16:]))
	if size == 0xffffffff || offset == 0xffffffff || binary.LittleEndian.Uint16(end[10:]) == 0xffff {
		if pos, z64, err := findZIP64End(src, endPos); err == nil {
			endPos = pos
			size = binary.LittleEndian.Uint64(z64[40:])
			offset = binary.LittleEndian.Uint64(z64[48:])
		} else if !isMalformed(err) {
			return 0, 0, 0, err
		}
	}
	if size > uint64(endPos) || offset > uint64(endPos) {
		return 0, 0, 0, malformed("central directory (%d bytes at %d) does not fit before its end record at %d", size, offset, endPos)
	}
	cdStart = endPos - int64(size)
	base = cdStart - int64(offset)
	if base < 0 {
		return 0, 0, 0, malformed("central directory offset %d past its position %d", offset, cdStart)
	}
	return cdStart, int64(size), base, nil
}

// findZIP64End returns the Zip64 end of central directory record that the
// locator before endPos points to.
func findZIP64End(src *source, endPos int64) (int64, []byte, error) {
	if endPos < zip64LocLen {
		return 0, nil, malformed("no Zip64 locator")
	}
	loc, err := src.read(endPos-zip64LocLen, zip64LocLen)
	if err != nil {
		return 0, nil, err
	}
	if string(loc[:4]) != zip64LocSig {
		return 0, nil, malformed("no Zip64 locator")
	}
	// The record is usually right before the locator, whatever offset the
	// locator says (an archive with data prepended).
	candidates := []int64{endPos - zip64LocLen - zip64EndLen}
	if off := binary.LittleEndian.Uint64(loc[8:]); off < uint64(src.size) {
		candidates = append(candidates, int64(off))
	}
	for _, pos := range candidates {
		if pos < 0 {
			continue
		}
		rec, err := src.read(pos, zip64EndLen)
		if isMalformed(err) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if string(rec[:4]) == zip64EndSig {
			return pos, rec, nil
		}
	}
	return 0, nil, malformed("no Zip64 end of central directory record")
}

// scanZIPLocal walks the local headers from the start of the file, for a
// ZIP whose central directory is unreadable. It stops at an entry whose
// size is only known from a data descriptor.
func scanZIPLocal(src *source, z *zipScan) error {
	var off int64
	for z.entries < maxZipEntries {
		lh, err := src.read(off, zipLocalLen)
		if err != nil {
			return err
		}
		if string(lh[:4]) != zipLocalSig {
			return nil
		}
		flags := binary.LittleEndian.Uint16(lh[6:])
		method := binary.LittleEndian.Uint16(lh[8:])
		csize := int64(binary.LittleEndian.Uint32(lh[18:]))
		nameLen := int(binary.LittleEndian.Uint16(lh[26:]))
		extraLen := int(binary.LittleEndian.Uint16(lh[28:]))
		name, err := src.read(off+zipLocalLen, nameLen)
		if err != nil {
			return err
		}
		z.entry(zipEntry{name: string(name), flags: flags, method: method, offset: off}, flags)
		if flags&(1<<3) != 0 && csize == 0 {
			return malformed("entry %s: size only in a data descriptor", printable(string(name), 80))
		}
		off += zipLocalLen + int64(nameLen) + int64(extraLen) + csize
	}
	return nil
}
