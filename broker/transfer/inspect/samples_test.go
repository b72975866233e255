package inspect

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"testing"
	"unicode/utf16"
)

// Samples of real formats, built byte by byte or with the standard
// library's writers.

func pdfSample(encrypted bool) []byte {
	trailer := "trailer\n<< /Size 3 /Root 1 0 R >>\n"
	if encrypted {
		trailer = "trailer\n<< /Size 4 /Root 1 0 R /Encrypt 3 0 R /ID [<0123456789abcdef0123456789abcdef><0123456789abcdef0123456789abcdef>] >>\n"
	}
	return []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" +
		"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" +
		"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n" +
		"xref\n0 3\n0000000000 65535 f \n0000000015 00000 n \n0000000064 00000 n \n" +
		trailer + "startxref\n120\n%%EOF\n")
}

func pngSample(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zipFile struct {
	name    string
	content string
	flags   uint16
}

func zipSample(t testing.TB, files ...zipFile) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range files {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Flags: f.flags})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// setZIPFlag sets general-purpose flag bits in every local header
// (local) or every central directory header (!local) of a ZIP.
func setZIPFlag(b []byte, local bool, bits uint16) []byte {
	b = bytes.Clone(b)
	sig, at := []byte(zipCentralSig), 8
	if local {
		sig, at = []byte(zipLocalSig), 6
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], sig)
		if j < 0 {
			return b
		}
		i += j
		binary.LittleEndian.PutUint16(b[i+at:], binary.LittleEndian.Uint16(b[i+at:])|bits)
		i += 4
	}
}

const (
	docxTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`
	docmTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>`
	xlsxTypes = `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>`
	rels      = `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>`
	docBody   = `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>`
)

func docxSample(t testing.TB, types string, vba bool) []byte {
	files := []zipFile{
		{name: "[Content_Types].xml", content: types},
		{name: "_rels/.rels", content: rels},
		{name: "word/document.xml", content: docBody},
	}
	if vba {
		files = append(files, zipFile{name: "word/vbaProject.bin", content: "\xd0\xcf\x11\xe0 not really"})
	}
	return zipSample(t, files...)
}

func odtSample(t testing.TB, macros, encrypted bool) []byte {
	manifest := `<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>`
	if encrypted {
		manifest = `<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry></manifest:manifest>`
	}
	files := []zipFile{
		{name: "mimetype", content: "application/vnd.oasis.opendocument.text"},
		{name: "content.xml", content: "<office:document-content/>"},
		{name: "META-INF/manifest.xml", content: manifest},
		{name: "Basic/script-lc.xml", content: "<library:libraries/>"},
	}
	if macros {
		files = append(files, zipFile{name: "Basic/Standard/Module1.xml", content: "<script:module>Sub Main\nShell \"calc\"\nEnd Sub</script:module>"})
	}
	return zipSample(t, files...)
}

// peSample is a DOS stub that points to a PE header.
func peSample(dll bool) []byte {
	b := make([]byte, 0x200)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x84:], 0x14c) // i386
	characteristics := uint16(0x0102)
	if dll {
		characteristics |= 0x2000
	}
	binary.LittleEndian.PutUint16(b[0x80+22:], characteristics)
	return b
}

func elfSample() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], 0x3e) // x86-64
	return b
}

func tgzSample(t testing.TB) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func tarSample(t testing.TB) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 2, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	tw.Close()
	return b.Bytes()
}

// cfbNode is a storage or stream of a compound file built by cfbSample.
type cfbNode struct {
	name    string
	storage bool
	data    []byte
}

// cfbSample builds a version 3 compound file (512-byte sectors) with the
// given root CLSID and entries, all children of the root. Streams shorter
// than 4096 bytes go to the mini stream, as [MS-CFB] requires.
func cfbSample(clsid []byte, nodes ...cfbNode) []byte {
	const (
		secSize = 512
		cutoff  = 4096
		free    = 0xffffffff
		end     = 0xfffffffe
		fatSect = 0xfffffffd
	)
	sectorsFor := func(n int) int { return (n + secSize - 1) / secSize }

	// The mini stream: small streams in 64-byte mini sectors.
	var mini []byte
	var miniFAT []uint32
	miniStart := make([]uint32, len(nodes))
	for i, n := range nodes {
		miniStart[i] = end
		if n.storage || len(n.data) == 0 || len(n.data) >= cutoff {
			continue
		}
		miniStart[i] = uint32(len(miniFAT))
		count := (len(n.data) + 63) / 64
		for k := 0; k < count; k++ {
			next := uint32(len(miniFAT) + 1)
			if k == count-1 {
				next = end
			}
			miniFAT = append(miniFAT, next)
		}
		padded := make([]byte, count*64)
		copy(padded, n.data)
		mini = append(mini, padded...)
	}

	dirSecs := sectorsFor((len(nodes) + 1) * 128)
	miniFATSecs := sectorsFor(len(miniFAT) * 4)
	miniSecs := sectorsFor(len(mini))
	bigSecs := 0
	for _, n := range nodes {
		if !n.storage && len(n.data) >= cutoff {
			bigSecs += sectorsFor(len(n.data))
		}
	}
	other := dirSecs + miniFATSecs + miniSecs + bigSecs
	fatSecs := 1
	for (other+fatSecs)*4 > fatSecs*secSize {
		fatSecs++
	}
	total := fatSecs + other
	fat := make([]uint32, fatSecs*secSize/4)
	for i := range fat {
		fat[i] = free
	}
	next := uint32(0)
	region := func(count int) uint32 {
		if count == 0 {
			return end
		}
		start := next
		for k := 0; k < count; k++ {
			if k == count-1 {
				fat[next] = end
			} else {
				fat[next] = next + 1
			}
			next++
		}
		return start
	}
	for range fatSecs {
		fat[next] = fatSect
		next++
	}
	dirStart := region(dirSecs)
	miniFATStart := region(miniFATSecs)
	miniStreamStart := region(miniSecs)
	out := make([]byte, secSize*(1+total))

	h := out[:secSize]
	copy(h, cfbMagic)
	binary.LittleEndian.PutUint16(h[0x18:], 0x3e)
	binary.LittleEndian.PutUint16(h[0x1a:], 3)
	binary.LittleEndian.PutUint16(h[0x1c:], 0xfffe)
	binary.LittleEndian.PutUint16(h[0x1e:], 9)
	binary.LittleEndian.PutUint16(h[0x20:], 6)
	binary.LittleEndian.PutUint32(h[0x2c:], uint32(fatSecs))
	binary.LittleEndian.PutUint32(h[0x30:], dirStart)
	binary.LittleEndian.PutUint32(h[0x38:], cutoff)
	binary.LittleEndian.PutUint32(h[0x3c:], miniFATStart)
	binary.LittleEndian.PutUint32(h[0x40:], uint32(miniFATSecs))
	binary.LittleEndian.PutUint32(h[0x44:], end)
	for i := 0; i < 109; i++ {
		v := uint32(free)
		if i < fatSecs {
			v = uint32(i)
		}
		binary.LittleEndian.PutUint32(h[0x4c+4*i:], v)
	}
	sector := func(id uint32) []byte { return out[(int(id)+1)*secSize:] }

	// Directory: the root, then the nodes as a chain of right siblings.
	dir := make([]byte, dirSecs*secSize)
	entry := func(i int, name string, typ byte, right, child, start uint32, size int) {
		e := dir[i*128 : (i+1)*128]
		u := utf16.Encode([]rune(name))
		for k, c := range u {
			binary.LittleEndian.PutUint16(e[2*k:], c)
		}
		binary.LittleEndian.PutUint16(e[0x40:], uint16(2*(len(u)+1)))
		e[0x42], e[0x43] = typ, 1
		binary.LittleEndian.PutUint32(e[0x44:], free)
		binary.LittleEndian.PutUint32(e[0x48:], right)
		binary.LittleEndian.PutUint32(e[0x4c:], child)
		binary.LittleEndian.PutUint32(e[0x74:], start)
		binary.LittleEndian.PutUint64(e[0x78:], uint64(size))
	}
	for i := range len(dir) / 128 {
		e := dir[i*128:]
		binary.LittleEndian.PutUint32(e[0x44:], free)
		binary.LittleEndian.PutUint32(e[0x48:], free)
		binary.LittleEndian.PutUint32(e[0x4c:], free)
	}
	rootChild := uint32(free)
	if len(nodes) > 0 {
		rootChild = 1
	}
	entry(0, "Root Entry", cfbRoot, free, rootChild, miniStreamStart, len(mini))
	copy(dir[0x50:0x60], clsid)
	for i, n := range nodes {
		right := uint32(i + 2)
		if i == len(nodes)-1 {
			right = free
		}
		switch {
		case n.storage:
			entry(i+1, n.name, cfbStorage, right, free, 0, 0)
		case len(n.data) >= cutoff:
			start := region(sectorsFor(len(n.data)))
			for k := 0; k*secSize < len(n.data); k++ {
				copy(sector(start + uint32(k))[:secSize], n.data[k*secSize:])
			}
			entry(i+1, n.name, cfbStream, right, free, start, len(n.data))
		default:
			entry(i+1, n.name, cfbStream, right, free, miniStart[i], len(n.data))
		}
	}
	for k := 0; k < dirSecs; k++ {
		copy(sector(dirStart + uint32(k))[:secSize], dir[k*secSize:])
	}
	for k := 0; k < miniSecs; k++ {
		copy(sector(miniStreamStart + uint32(k))[:secSize], mini[k*secSize:])
	}
	mf := make([]byte, miniFATSecs*secSize)
	for i := range len(mf) / 4 {
		v := uint32(free)
		if i < len(miniFAT) {
			v = miniFAT[i]
		}
		binary.LittleEndian.PutUint32(mf[4*i:], v)
	}
	for k := 0; k < miniFATSecs; k++ {
		copy(sector(miniFATStart + uint32(k))[:secSize], mf[k*secSize:])
	}
	for k := 0; k < fatSecs; k++ {
		for i := 0; i < secSize/4; i++ {
			binary.LittleEndian.PutUint32(sector(uint32(k))[4*i:], fat[k*secSize/4+i])
		}
	}
	return out
}

// wordFIB is the start of a WordDocument stream.
func wordFIB(encrypted bool) []byte {
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint16(b, 0xa5ec)
	binary.LittleEndian.PutUint16(b[2:], 0x00c1)
	flags := uint16(0x0200) // fWhichTblStm: 1Table
	if encrypted {
		flags |= 0x0100
	}
	binary.LittleEndian.PutUint16(b[10:], flags)
	return b
}

// biffWorkbook is a Workbook stream: BOF, optionally FILEPASS, and enough
// records to need regular sectors.
func biffWorkbook(encrypted bool) []byte {
	rec := func(typ uint16, data []byte) []byte {
		r := binary.LittleEndian.AppendUint16(nil, typ)
		r = binary.LittleEndian.AppendUint16(r, uint16(len(data)))
		return append(r, data...)
	}
	b := rec(0x0809, make([]byte, 16))
	if encrypted {
		b = append(b, rec(0x002f, make([]byte, 54))...)
	}
	b = append(b, rec(0x00e1, make([]byte, 2))...) // INTERFACEHDR
	for len(b) < 5000 {
		b = append(b, rec(0x003c, make([]byte, 100))...) // CONTINUE padding
	}
	b = append(b, rec(0x0085, make([]byte, 8))...) // BOUNDSHEET
	return append(b, rec(0x000a, nil)...)
}

func pptCurrentUser(encrypted bool) []byte {
	b := make([]byte, 40)
	binary.LittleEndian.PutUint16(b[2:], 0x0ff6)
	binary.LittleEndian.PutUint32(b[4:], 32)
	binary.LittleEndian.PutUint32(b[8:], 0x14)
	token := uint32(0xe391c05f)
	if encrypted {
		token = 0xf3d1c4df
	}
	binary.LittleEndian.PutUint32(b[12:], token)
	return b
}

var msiCLSID = []byte{0x84, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}

func docSample(vba, encrypted bool) []byte {
	nodes := []cfbNode{
		{name: "WordDocument", data: wordFIB(encrypted)},
		{name: "1Table", data: make([]byte, 600)},
		{name: "\x05SummaryInformation", data: make([]byte, 200)},
	}
	if vba {
		nodes = append(nodes,
			cfbNode{name: "Macros", storage: true},
			cfbNode{name: "VBA", storage: true},
			cfbNode{name: "_VBA_PROJECT", data: []byte{0xcc, 0x61, 0xff, 0xff, 0x00}},
			cfbNode{name: "dir", data: make([]byte, 300)},
		)
	}
	return cfbSample(nil, nodes...)
}

// rar4Sample is a RAR 4 archive with one file header.
func rar4Sample(encryptedFile, encryptedHeaders bool) []byte {
	b := append([]byte(nil), rar4Magic...)
	mainFlags := uint16(0)
	if encryptedHeaders {
		mainFlags |= 0x0080
	}
	b = append(b, 0, 0, 0x73)
	b = binary.LittleEndian.AppendUint16(b, mainFlags)
	b = binary.LittleEndian.AppendUint16(b, 13)
	b = append(b, make([]byte, 6)...)
	if encryptedHeaders {
		return append(b, make([]byte, 64)...) // encrypted blocks follow
	}
	name := "secret.docx"
	data := []byte("packed data")
	fileFlags := uint16(0x8000)
	if encryptedFile {
		fileFlags |= 0x0004
	}
	b = append(b, 0, 0, 0x74)
	b = binary.LittleEndian.AppendUint16(b, fileFlags)
	b = binary.LittleEndian.AppendUint16(b, uint16(32+len(name)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data))) // PACK_SIZE
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data))) // UNP_SIZE
	b = append(b, 2)                                           // HOST_OS
	b = append(b, 0, 0, 0, 0)                                  // FILE_CRC
	b = append(b, 0, 0, 0, 0)                                  // FTIME
	b = append(b, 29, 0x30)                                    // UNP_VER, METHOD
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name))) // NAME_SIZE
	b = append(b, 0x20, 0, 0, 0)                               // ATTR
	b = append(b, name...)
	b = append(b, data...)
	b = append(b, 0, 0, 0x7b)
	b = binary.LittleEndian.AppendUint16(b, 0x4000)
	return binary.LittleEndian.AppendUint16(b, 7)
}

func appendVint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// rar5Block frames a RAR 5 header (type, flags and the rest).
func rar5Block(body []byte) []byte {
	b := make([]byte, 4) // CRC32, not checked
	b = appendVint(b, uint64(len(body)))
	return append(b, body...)
}

// rar5Sample is a RAR 5 archive with one file.
func rar5Sample(encryptedFile, encryptedHeaders bool) []byte {
	b := append([]byte(nil), rar5Magic...)
	if encryptedHeaders {
		b = append(b, rar5Block([]byte{4, 0, 0, 0, 15})...) // encryption header: version 0, flags, KDF count
		return append(b, make([]byte, 48)...)
	}
	b = append(b, rar5Block([]byte{1, 0, 0})...) // main header
	name := "secret.xlsx"
	data := []byte("packed data")
	var extra []byte
	if encryptedFile {
		rec := []byte{0x01, 0, 0, 15}          // type 1 (encryption), version, flags, KDF count
		rec = append(rec, make([]byte, 32)...) // salt and IV
		extra = appendVint(nil, uint64(len(rec)))
		extra = append(extra, rec...)
	}
	var body []byte
	body = appendVint(body, 2) // file header
	flags := uint64(0x02)      // data area
	if len(extra) > 0 {
		flags |= 0x01
	}
	body = appendVint(body, flags)
	if len(extra) > 0 {
		body = appendVint(body, uint64(len(extra)))
	}
	body = appendVint(body, uint64(len(data)))
	body = appendVint(body, 0)                 // file flags
	body = appendVint(body, uint64(len(data))) // unpacked size
	body = appendVint(body, 0x20)              // attributes
	body = appendVint(body, 0)                 // compression information
	body = appendVint(body, 0)                 // host OS
	body = appendVint(body, uint64(len(name)))
	body = append(body, name...)
	body = append(body, extra...)
	b = append(b, rar5Block(body)...)
	b = append(b, data...)
	return append(b, rar5Block([]byte{5, 0, 0})...)
}

func append7zNumber(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return append(b, 0x80|byte(v>>8), byte(v)) // values below 0x4000 here
}

// sevenZipSample is a 7z archive with a plain (uncompressed) header whose
// one folder uses the given coder chain, or an encoded header that does.
func sevenZipSample(encodedHeader bool, coders ...[]byte) []byte {
	packed := []byte("packed data.....")
	var h []byte
	if encodedHeader {
		h = append(h, k7zEncodedHeader)
	} else {
		h = append(h, k7zHeader, k7zMainStreams)
	}
	h = append(h, k7zPackInfo)
	h = append7zNumber(h, 0)
	h = append7zNumber(h, 1)
	h = append(h, k7zSize)
	h = append7zNumber(h, uint64(len(packed)))
	h = append(h, k7zEnd)
	h = append(h, k7zUnpackInfo, k7zFolder)
	h = append7zNumber(h, 1)
	h = append(h, 0) // not external
	h = append7zNumber(h, uint64(len(coders)))
	for _, id := range coders {
		flag := byte(len(id)) | 0x20
		h = append(h, flag)
		h = append(h, id...)
		h = append7zNumber(h, 5)
		h = append(h, 0x5d, 0, 0, 1, 0)
	}
	for range len(coders) - 1 { // bind pairs
		h = append(h, 1, 0)
	}
	h = append(h, 0x0c) // kCodersUnpackSize
	for range coders {
		h = append7zNumber(h, 20)
	}
	h = append(h, k7zEnd, k7zEnd)
	if !encodedHeader {
		h = append(h, k7zEnd)
	}
	b := append([]byte(nil), sevenZipMagic...)
	b = append(b, 0, 4)
	b = append(b, 0, 0, 0, 0) // start header CRC, not checked
	b = binary.LittleEndian.AppendUint64(b, uint64(len(packed)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(h)))
	b = append(b, 0, 0, 0, 0)
	b = append(b, packed...)
	return append(b, h...)
}

var (
	lzmaCoder = []byte{0x03, 0x01, 0x01}
	aesCoder  = []byte{0x06, 0xf1, 0x07, 0x01}
)
