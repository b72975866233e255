package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
)

var (
	rar4Magic     = []byte("Rar!\x1a\x07\x00")
	rar5Magic     = []byte("Rar!\x1a\x07\x01\x00")
	sevenZipMagic = []byte("7z\xbc\xaf\x27\x1c")
)

// maxArchiveBlocks bounds how many RAR blocks are walked.
const maxArchiveBlocks = 100_000

// inspectRAR walks a RAR archive's block headers for encryption: of the
// headers themselves (the entry list is hidden) or of any entry.
func inspectRAR(src *source, rep *report) {
	var err error
	if bytes.HasPrefix(mustHead(src, len(rar5Magic)), rar5Magic) {
		err = walkRAR5(src, rep)
	} else {
		err = walkRAR4(src, rep)
	}
	if err != nil {
		rep.note("RAR archive: entries not fully inspected (%v)", err)
	}
}

func mustHead(src *source, n int) []byte {
	b, _ := src.read(0, int(min(int64(n), src.size)))
	return b
}

// encryptedEntry notes an encrypted archive entry.
func encryptedEntry(rep *report, format, name string) {
	if !rep.Encrypted {
		rep.note("%s entry %s is encrypted", format, printable(name, 80))
	}
	rep.Encrypted = true
}

// walkRAR4 walks RAR 1.5–4.x blocks.
func walkRAR4(src *source, rep *report) error {
	pos := int64(len(rar4Magic))
	for i := 0; i < maxArchiveBlocks && pos < src.size; i++ {
		h, err := src.read(pos, 7)
		if err != nil {
			return err
		}
		typ := h[2]
		flags := binary.LittleEndian.Uint16(h[3:])
		size := int64(binary.LittleEndian.Uint16(h[5:]))
		if size < 7 {
			return errors.New("bad block size")
		}
		var add int64
		if flags&0x8000 != 0 || typ == 0x74 {
			b, err := src.read(pos+7, 4)
			if err != nil {
				return err
			}
			add = int64(binary.LittleEndian.Uint32(b))
		}
		switch typ {
		case 0x73: // main header
			if flags&0x0080 != 0 {
				rep.Encrypted = true
				rep.note("RAR archive headers are encrypted")
				return nil
			}
		case 0x74: // file header
			if size < 32 {
				return errors.New("short file header")
			}
			hdr, err := src.read(pos, int(size))
			if err != nil {
				return err
			}
			nameAt := 32
			if flags&0x0100 != 0 && len(hdr) >= 40 {
				add += int64(binary.LittleEndian.Uint32(hdr[32:])) << 32
				nameAt = 40
			}
			if flags&0x0004 != 0 {
				nameLen := int(binary.LittleEndian.Uint16(hdr[26:]))
				name := hdr[min(nameAt, len(hdr)):min(nameAt+nameLen, len(hdr))]
				encryptedEntry(rep, "RAR", string(name))
			}
		case 0x7b: // end of archive
			return nil
		}
		pos += size + add
	}
	return nil
}

// vint reads a RAR5 variable-length integer.
func vint(b []byte) (uint64, []byte, bool) {
	var v uint64
	for i := 0; i < 10 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, b[i+1:], true
		}
	}
	return 0, nil, false
}

// walkRAR5 walks RAR 5 headers.
func walkRAR5(src *source, rep *report) error {
	errBad := errors.New("bad header")
	pos := int64(len(rar5Magic))
	for i := 0; i < maxArchiveBlocks && pos < src.size; i++ {
		pre, err := src.read(pos, int(min(14, src.size-pos)))
		if err != nil || len(pre) < 5 {
			return errBad
		}
		hsize, rest, ok := vint(pre[4:])
		if !ok || hsize == 0 || hsize > 2<<20 {
			return errBad
		}
		start := pos + int64(len(pre)-len(rest))
		hdr, err := src.read(start, int(hsize))
		if err != nil {
			return err
		}
		typ, b, ok1 := vint(hdr)
		flags, b, ok2 := vint(b)
		if !ok1 || !ok2 {
			return errBad
		}
		var extraSize, dataSize uint64
		if flags&0x01 != 0 {
			if extraSize, b, ok = vint(b); !ok || extraSize > hsize {
				return errBad
			}
		}
		if flags&0x02 != 0 {
			if dataSize, b, ok = vint(b); !ok {
				return errBad
			}
		}
		switch typ {
		case 4: // archive encryption header
			rep.Encrypted = true
			rep.note("RAR archive headers are encrypted")
			return nil
		case 2, 3: // file or service header
			if rar5Encrypted(hdr[hsize-extraSize:]) {
				encryptedEntry(rep, "RAR", rar5Name(b))
			}
		case 5: // end of archive
			return nil
		}
		if dataSize > uint64(src.size) {
			return errBad
		}
		pos = start + int64(hsize) + int64(dataSize)
	}
	return nil
}

// rar5Encrypted reports whether a RAR5 extra area has a file encryption
// record.
func rar5Encrypted(extra []byte) bool {
	for len(extra) > 0 {
		size, b, ok := vint(extra)
		if !ok || size == 0 || size > uint64(len(b)) {
			return false
		}
		if typ, _, ok := vint(b[:size]); ok && typ == 0x01 {
			return true
		}
		extra = b[size:]
	}
	return false
}

// rar5Name returns the name in the type-specific part of a RAR5 file
// header, or "" when it cannot be read.
func rar5Name(b []byte) string {
	fileFlags, b, ok := vint(b)
	if !ok {
		return ""
	}
	for range 2 { // unpacked size, attributes
		if _, b, ok = vint(b); !ok {
			return ""
		}
	}
	skip := 0
	if fileFlags&0x02 != 0 {
		skip += 4
	}
	if fileFlags&0x04 != 0 {
		skip += 4
	}
	if len(b) < skip {
		return ""
	}
	b = b[skip:]
	for range 2 { // compression information, host OS
		if _, b, ok = vint(b); !ok {
			return ""
		}
	}
	n, b, ok := vint(b)
	if !ok || n > uint64(len(b)) {
		return ""
	}
	return string(b[:n])
}

// 7z property IDs.
const (
	k7zEnd              = 0x00
	k7zHeader           = 0x01
	k7zArchiveProps     = 0x02
	k7zAdditionalStream = 0x03
	k7zMainStreams      = 0x04
	k7zPackInfo         = 0x06
	k7zUnpackInfo       = 0x07
	k7zSize             = 0x09
	k7zCRC              = 0x0a
	k7zFolder           = 0x0b
	k7zEncodedHeader    = 0x17
)

var aesCoderID = []byte{0x06, 0xf1, 0x07, 0x01}

// inspect7z looks for AES in the coders a 7z archive's header lists. An
// encrypted header is visible directly; when the header is compressed but
// not encrypted, its entries are not inspected here (that would need
// LZMA).
func inspect7z(src *source, rep *report) {
	const maxHeader = 16 << 20
	sh, err := src.read(0, 32)
	if err != nil {
		rep.note("7z archive: entries not inspected (%v)", err)
		return
	}
	off := binary.LittleEndian.Uint64(sh[12:])
	size := binary.LittleEndian.Uint64(sh[20:])
	if size == 0 {
		return // empty archive
	}
	if size > maxHeader || off > uint64(src.size) || 32+off+size > uint64(src.size) {
		rep.note("7z archive: entries not inspected (header outside the file or too large)")
		return
	}
	hdr, err := src.read(32+int64(off), int(size))
	if err != nil {
		rep.note("7z archive: entries not inspected (%v)", err)
		return
	}
	p := &sevenZipParser{b: hdr}
	switch p.byte() {
	case k7zEncodedHeader:
		aes, err := p.streamsUseAES()
		switch {
		case err != nil:
			rep.note("7z archive: entries not inspected (%v)", err)
		case aes:
			rep.Encrypted = true
			rep.note("7z archive headers are encrypted")
		default:
			rep.note("7z archive: entries not inspected (compressed header)")
		}
	case k7zHeader:
		aes, err := p.headerUsesAES()
		switch {
		case err != nil:
			rep.note("7z archive: entries not inspected (%v)", err)
		case aes:
			rep.Encrypted = true
			rep.note("7z archive content is encrypted")
		}
	default:
		rep.note("7z archive: entries not inspected (unknown header)")
	}
}

// sevenZipParser reads 7z header structures; a read past the end sets err.
type sevenZipParser struct {
	b   []byte
	err error
}

var err7zShort = errors.New("header cut short")

func (p *sevenZipParser) byte() byte {
	if len(p.b) == 0 {
		p.err = err7zShort
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *sevenZipParser) bytes(n uint64) []byte {
	if n > uint64(len(p.b)) {
		p.err = err7zShort
		p.b = nil
		return nil
	}
	out := p.b[:n]
	p.b = p.b[n:]
	return out
}

// number reads a 7z NUMBER: the leading one bits of the first byte say
// how many little-endian bytes follow.
func (p *sevenZipParser) number() uint64 {
	first := p.byte()
	var v uint64
	mask := byte(0x80)
	for i := 0; i < 8; i++ {
		if first&mask == 0 {
			return v | uint64(first&(mask-1))<<(8*i)
		}
		v |= uint64(p.byte()) << (8 * i)
		mask >>= 1
	}
	return v
}

// count reads a NUMBER used as a count and bounds it by what is left.
func (p *sevenZipParser) count() uint64 {
	n := p.number()
	if n > uint64(len(p.b)) {
		p.err = errors.New("count larger than the header")
		return 0
	}
	return n
}

func (p *sevenZipParser) digests(n uint64) {
	defined := n
	if p.byte() == 0 {
		bits := p.bytes((n + 7) / 8)
		defined = 0
		for _, c := range bits {
			for ; c != 0; c &= c - 1 {
				defined++
			}
		}
	}
	p.bytes(4 * defined)
}

// headerUsesAES parses a plain Header up to its main streams' folders.
func (p *sevenZipParser) headerUsesAES() (bool, error) {
	for p.err == nil {
		switch id := p.number(); id {
		case k7zArchiveProps:
			for p.err == nil && p.byte() != 0 {
				p.bytes(p.number())
			}
		case k7zAdditionalStream, k7zMainStreams:
			aes, err := p.streamsUseAES()
			if err != nil || aes || id == k7zMainStreams {
				return aes, err
			}
		default:
			return false, p.err
		}
	}
	return false, p.err
}

// streamsUseAES parses a StreamsInfo up to its folders and reports whether
// any folder's coders include AES.
func (p *sevenZipParser) streamsUseAES() (bool, error) {
	for p.err == nil {
		switch p.number() {
		case k7zPackInfo:
			p.number() // pack position
			n := p.count()
			for p.err == nil {
				id := p.number()
				if id == k7zEnd {
					break
				}
				switch id {
				case k7zSize:
					for i := uint64(0); i < n && p.err == nil; i++ {
						p.number()
					}
				case k7zCRC:
					p.digests(n)
				default:
					return false, errors.New("unexpected property in pack info")
				}
			}
		case k7zUnpackInfo:
			if p.number() != k7zFolder {
				return false, errors.New("no folder list")
			}
			n := p.count()
			if p.byte() != 0 {
				return false, errors.New("external folder list")
			}
			aes := false
			for i := uint64(0); i < n && p.err == nil; i++ {
				aes = p.folderUsesAES() || aes
			}
			return aes, p.err
		case k7zEnd:
			return false, p.err
		default:
			return false, errors.New("unexpected property in streams info")
		}
	}
	return false, p.err
}

// folderUsesAES parses one Folder.
func (p *sevenZipParser) folderUsesAES() bool {
	aes := false
	coders := p.count()
	var ins, outs uint64
	for i := uint64(0); i < coders && p.err == nil; i++ {
		flag := p.byte()
		if bytes.Equal(p.bytes(uint64(flag&0x0f)), aesCoderID) {
			aes = true
		}
		in, out := uint64(1), uint64(1)
		if flag&0x10 != 0 {
			in, out = p.count(), p.count()
		}
		ins, outs = ins+in, outs+out
		if flag&0x20 != 0 {
			p.bytes(p.number())
		}
	}
	if outs == 0 || ins > uint64(len(p.b)) || outs > uint64(len(p.b)) {
		if p.err == nil {
			p.err = errors.New("bad folder")
		}
		return aes
	}
	for i := uint64(0); i < outs-1 && p.err == nil; i++ { // bind pairs
		p.number()
		p.number()
	}
	if packed := ins - min(ins, outs-1); packed > 1 {
		for i := uint64(0); i < packed && p.err == nil; i++ {
			p.number()
		}
	}
	return aes
}
