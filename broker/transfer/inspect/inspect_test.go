package inspect

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type inspectCase struct {
	name      string // test case
	data      []byte
	file      string // the page's file name
	mime      string // prefix of Info.MIME
	class     string
	encrypted bool
	macros    bool
	detail    string // substring of Info.Detail
}

func inspectCases(t testing.TB) []inspectCase {
	pngData := pngSample(t)
	plainZIP := zipSample(t, zipFile{name: "report.txt", content: "hello"}, zipFile{name: "scan.png", content: string(pngData)})
	lnk := append(bytes.Clone(lnkMagic), make([]byte, 60)...)
	iso := make([]byte, 0x8800)
	copy(iso[0x8001:], "CD001")
	dicom := make([]byte, 200)
	copy(dicom[128:], "DICM")
	return []inspectCase{
		{name: "pdf", data: pdfSample(false), file: "report.pdf", mime: "application/pdf", class: ClassPDF},
		{name: "pdf encrypted", data: pdfSample(true), file: "report.pdf", mime: "application/pdf", class: ClassPDF, encrypted: true, detail: "/Encrypt"},
		{name: "pdf after junk", data: append([]byte("junk\n"), pdfSample(false)...), mime: "application/pdf", class: ClassPDF},
		{name: "html with a pdf header", data: []byte("<html><script>alert(1)</script>\n%PDF-1.4\n"), file: "x.pdf", mime: "text/html", class: ClassHTML, detail: "PDF header"},
		{name: "pdf named html", data: pdfSample(false), file: "report.html", mime: "application/pdf", class: ClassHTML},
		{name: "pdf named exe", data: pdfSample(false), file: "report.pdf.exe", mime: "application/pdf", class: ClassExecutable, detail: ".exe"},
		{name: "png", data: pngData, file: "x.png", mime: "image/png", class: ClassImage},
		{name: "png named jpg", data: pngData, file: "x.jpg", mime: "image/png", class: ClassImage},
		{name: "png with zip appended", data: append(bytes.Clone(pngData), plainZIP...), file: "x.png", mime: "image/png", class: ClassArchive, detail: "ZIP archive appended"},
		{name: "png with encrypted zip appended", data: append(bytes.Clone(pngData), setZIPFlag(plainZIP, false, 1)...), file: "x.png", mime: "image/png", class: ClassArchive, encrypted: true},
		{name: "gif", data: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), mime: "image/gif", class: ClassImage},
		{name: "jpeg", data: []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), mime: "image/jpeg", class: ClassImage},
		{name: "tiff", data: []byte("II*\x00\x08\x00\x00\x00"), mime: "image/tiff", class: ClassImage},
		{name: "dicom", data: dicom, file: "ct.dcm", mime: "application/dicom", class: ClassImage},
		{name: "zip", data: plainZIP, file: "a.zip", mime: "application/zip", class: ClassArchive},
		{name: "zip empty", data: zipSample(t), file: "a.zip", mime: "application/zip", class: ClassArchive},
		{name: "zip encrypted", data: zipSample(t, zipFile{name: "report.xlsx", content: "x", flags: 1}), mime: "application/zip", class: ClassArchive, encrypted: true, detail: "ZIP entry report.xlsx is encrypted"},
		{name: "zip encrypted in local header only", data: setZIPFlag(plainZIP, true, 1), class: ClassArchive, encrypted: true},
		{name: "zip encrypted in central directory only", data: setZIPFlag(plainZIP, false, 1), class: ClassArchive, encrypted: true},
		{name: "zip with program", data: zipSample(t, zipFile{name: "setup.exe", content: "MZ"}), class: ClassArchive, detail: "contains setup.exe"},
		{name: "zip directory broken, encrypted entry", data: setZIPFlag(plainZIP, true, 1)[:len(plainZIP)-30], class: ClassArchive, encrypted: true, detail: "local headers checked"},
		{name: "docx", data: docxSample(t, docxTypes, false), file: "a.docx", mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", class: ClassOffice, detail: "Word"},
		{name: "docx with vbaProject.bin", data: docxSample(t, docxTypes, true), file: "a.docx", class: ClassOffice, macros: true, detail: "vbaProject.bin present"},
		{name: "docm", data: docxSample(t, docmTypes, true), file: "a.docm", mime: "application/vnd.ms-word.document.macroEnabled.12", class: ClassOffice, macros: true},
		{name: "macro content type without part", data: docxSample(t, docmTypes, false), class: ClassOffice, macros: true, detail: "content types declare macros"},
		{name: "xlsx", data: zipSample(t, zipFile{name: "[Content_Types].xml", content: xlsxTypes}), mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", class: ClassOffice},
		{name: "docx encrypted entry", data: setZIPFlag(docxSample(t, docxTypes, false), false, 1), class: ClassOffice, encrypted: true},
		{name: "odt", data: odtSample(t, false, false), mime: "application/vnd.oasis.opendocument.text", class: ClassOffice},
		{name: "odt with Basic macros", data: odtSample(t, true, false), class: ClassOffice, macros: true, detail: "Module1.xml"},
		{name: "odt encrypted", data: odtSample(t, false, true), class: ClassOffice, encrypted: true},
		{name: "jar", data: zipSample(t, zipFile{name: "META-INF/MANIFEST.MF", content: "Main-Class: A\n"}, zipFile{name: "A.class", content: "\xca\xfe\xba\xbe"}), mime: "application/java-archive", class: ClassExecutable},
		{name: "apk", data: zipSample(t, zipFile{name: "AndroidManifest.xml", content: "x"}, zipFile{name: "classes.dex", content: "dex\n"}), class: ClassExecutable},
		{name: "doc", data: docSample(false, false), file: "a.doc", mime: "application/msword", class: ClassOffice},
		{name: "doc with VBA", data: docSample(true, false), file: "a.doc", mime: "application/msword", class: ClassOffice, macros: true, detail: "VBA storage present"},
		{name: "doc encrypted", data: docSample(false, true), mime: "application/msword", class: ClassOffice, encrypted: true, detail: "Word document is password-protected"},
		{name: "xls", data: cfbSample(nil, cfbNode{name: "Workbook", data: biffWorkbook(false)}), mime: "application/vnd.ms-excel", class: ClassOffice},
		{name: "xls encrypted", data: cfbSample(nil, cfbNode{name: "Workbook", data: biffWorkbook(true)}), mime: "application/vnd.ms-excel", class: ClassOffice, encrypted: true},
		{name: "xls with VBA", data: cfbSample(nil, cfbNode{name: "Workbook", data: biffWorkbook(false)}, cfbNode{name: "_VBA_PROJECT_CUR", storage: true}, cfbNode{name: "VBA", storage: true}), class: ClassOffice, macros: true},
		{name: "ppt", data: cfbSample(nil, cfbNode{name: "PowerPoint Document", data: make([]byte, 100)}, cfbNode{name: "Current User", data: pptCurrentUser(false)}), mime: "application/vnd.ms-powerpoint", class: ClassOffice},
		{name: "ppt encrypted", data: cfbSample(nil, cfbNode{name: "PowerPoint Document", data: make([]byte, 100)}, cfbNode{name: "Current User", data: pptCurrentUser(true)}), class: ClassOffice, encrypted: true},
		{name: "encrypted ooxml", data: cfbSample(nil, cfbNode{name: "EncryptionInfo", data: make([]byte, 200)}, cfbNode{name: "EncryptedPackage", data: make([]byte, 5000)}), file: "a.docx", class: ClassOffice, encrypted: true, detail: "EncryptedPackage"},
		{name: "msi", data: cfbSample(msiCLSID, cfbNode{name: "\u4840\u3f3f\u4577", data: make([]byte, 10)}), file: "setup.msi", mime: "application/x-msi", class: ClassExecutable},
		{name: "cfb broken", data: cfbSample(nil, cfbNode{name: "WordDocument", data: wordFIB(false)})[:600], class: ClassOffice, macros: true, detail: "unreadable"},
		{name: "rtf", data: []byte(`{\rtf1\ansi hello}`), mime: "application/rtf", class: ClassOffice},
		{name: "pe", data: peSample(false), file: "invoice.pdf", mime: "application/vnd.microsoft.portable-executable", class: ClassExecutable, detail: "PE"},
		{name: "dll", data: peSample(true), class: ClassExecutable, detail: "DLL"},
		{name: "elf", data: elfSample(), file: "notes.txt", mime: "application/x-elf", class: ClassExecutable},
		{name: "mach-o", data: []byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"), class: ClassExecutable},
		{name: "java class", data: []byte("\xca\xfe\xba\xbe\x00\x00\x00\x34"), mime: "application/java-vm", class: ClassExecutable},
		{name: "wasm", data: []byte("\x00asm\x01\x00\x00\x00"), mime: "application/wasm", class: ClassExecutable},
		{name: "lnk", data: lnk, file: "photo.jpg", class: ClassExecutable, detail: "shortcut"},
		{name: "iso", data: iso, class: ClassExecutable, detail: "ISO"},
		{name: "shebang", data: []byte("#!/bin/sh\nrm -rf /\n"), file: "readme", mime: "text/plain", class: ClassScript, detail: "/bin/sh"},
		{name: "js named text", data: []byte("var x = new ActiveXObject('WScript.Shell');\n"), file: "invoice.js", mime: "text/plain", class: ClassScript, detail: ".js"},
		{name: "bat name with trailing dot", data: []byte("echo hi\r\n"), file: "run.bat.", class: ClassScript},
		{name: "reg file", data: []byte("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\x]\r\n"), class: ClassScript},
		{name: "text", data: []byte("Patient list\nmorning round 9:00\n"), file: "notes.txt", mime: "text/plain; charset=utf-8", class: ClassText},
		{name: "text shift_jis", data: []byte("\x8a\xb3\x8e\xd2\x96\xbc\x0d\x0a"), file: "list.csv", mime: "text/plain", class: ClassText},
		{name: "text utf-16", data: []byte("\xff\xfeh\x00i\x00"), mime: "text/plain; charset=utf-16le", class: ClassText},
		{name: "text named html", data: []byte("just words\n"), file: "a.html", class: ClassHTML},
		{name: "empty", data: nil, class: ClassText},
		{name: "html", data: []byte("<!DOCTYPE html><html><body>hi</body></html>"), file: "a.txt", mime: "text/html", class: ClassHTML},
		{name: "html script later", data: []byte("Dear user,\nplease see below\n<script>alert(1)</script>\n"), mime: "text/html", class: ClassHTML},
		{name: "html utf-16", data: append([]byte("\xff\xfe"), []byte("<\x00s\x00c\x00r\x00i\x00p\x00t\x00>\x00")...), class: ClassHTML},
		{name: "svg", data: []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), file: "logo.svg", mime: "image/svg+xml", class: ClassHTML},
		{name: "xml", data: []byte(`<?xml version="1.0"?><order><item>1</item></order>`), mime: "text/xml", class: ClassText},
		{name: "gzip tar", data: tgzSample(t), mime: "application/gzip", class: ClassArchive},
		{name: "tar", data: tarSample(t), mime: "application/x-tar", class: ClassArchive},
		{name: "bzip2", data: []byte("BZh91AY&SY"), class: ClassArchive},
		{name: "xz", data: []byte("\xfd7zXZ\x00\x00"), class: ClassArchive},
		{name: "rar4", data: rar4Sample(false, false), mime: "application/vnd.rar", class: ClassArchive},
		{name: "rar4 encrypted file", data: rar4Sample(true, false), class: ClassArchive, encrypted: true, detail: "secret.docx"},
		{name: "rar4 encrypted headers", data: rar4Sample(false, true), class: ClassArchive, encrypted: true, detail: "headers are encrypted"},
		{name: "rar5", data: rar5Sample(false, false), mime: "application/vnd.rar", class: ClassArchive},
		{name: "rar5 encrypted file", data: rar5Sample(true, false), class: ClassArchive, encrypted: true, detail: "secret.xlsx"},
		{name: "rar5 encrypted headers", data: rar5Sample(false, true), class: ClassArchive, encrypted: true},
		{name: "7z", data: sevenZipSample(false, lzmaCoder), mime: "application/x-7z-compressed", class: ClassArchive},
		{name: "7z encrypted content", data: sevenZipSample(false, lzmaCoder, aesCoder), class: ClassArchive, encrypted: true, detail: "content is encrypted"},
		{name: "7z encrypted header", data: sevenZipSample(true, lzmaCoder, aesCoder), class: ClassArchive, encrypted: true, detail: "headers are encrypted"},
		{name: "7z compressed header", data: sevenZipSample(true, lzmaCoder), class: ClassArchive, detail: "not inspected"},
		{name: "mp3", data: []byte("ID3\x03\x00\x00\x00\x00\x00\x00"), mime: "audio/mpeg", class: ClassMedia},
		{name: "mp4", data: []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), mime: "video/mp4", class: ClassMedia},
		{name: "unknown binary", data: []byte("\x00\x01\x02\x03\x04\x05garbage"), mime: "application/octet-stream", class: ClassOther},
		{name: "unknown binary named scr", data: []byte("\x00\x01\x02\x03\x04\x05garbage"), file: "holiday.scr", class: ClassExecutable},
		{name: "rtl override name", data: []byte("hello\n"), file: "invoice\u202Efdp.exe", class: ClassScript, detail: ".exe"},
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range inspectCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.Repeat("f", i+1))
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Inspect(path, tt.file)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got.Class != tt.class || got.Encrypted != tt.encrypted || got.Macros != tt.macros ||
				!strings.HasPrefix(got.MIME, tt.mime) || !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("Inspect(%q) = %+v\nwant class %q, encrypted %v, macros %v, MIME %q…, detail containing %q",
					tt.file, got, tt.class, tt.encrypted, tt.macros, tt.mime, tt.detail)
			}
			if got.MIME == "" {
				t.Error("MIME is empty")
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	if _, err := Inspect(filepath.Join(t.TempDir(), "missing"), "a.txt"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Inspect of a missing file: %v, want an error naming it", err)
	}
	if _, err := Inspect(t.TempDir(), "a.txt"); err == nil {
		t.Error("Inspect of a directory: no error")
	}
}

// TestCFBSampleLayout checks the test's compound file builder against the
// parser's view of it, so that the CFB cases test the parser and not the
// builder.
func TestCFBSampleLayout(t *testing.T) {
	data := cfbSample(nil,
		cfbNode{name: "Small", data: bytes.Repeat([]byte("s"), 100)},
		cfbNode{name: "Big", data: bytes.Repeat([]byte("b"), 5000)},
		cfbNode{name: "Dir", storage: true},
	)
	f, err := parseCFB(&source{r: bytes.NewReader(data), size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range f.entries {
		if e.typ != 0 {
			names = append(names, e.name)
		}
	}
	if want := []string{"Root Entry", "Small", "Big", "Dir"}; !slices.Equal(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	for i, want := range map[int]string{1: strings.Repeat("s", 100), 2: strings.Repeat("b", 5000)} {
		got, err := f.readStream(&f.entries[i], 10000)
		if err != nil || string(got) != want {
			t.Errorf("stream %s: %d bytes, %v; want %d bytes", f.entries[i].name, len(got), err, len(want))
		}
	}
}

func TestClasses(t *testing.T) {
	want := []string{"pdf", "image", "text", "html", "archive", "office", "executable", "script", "media", "other"}
	if !slices.Equal(Classes(), want) {
		t.Errorf("Classes() = %q, want %q", Classes(), want)
	}
	for _, c := range want {
		if _, ok := restriction[c]; !ok {
			t.Errorf("class %q has no restriction rank", c)
		}
	}
}

func FuzzInspect(f *testing.F) {
	for _, tt := range inspectCases(f) {
		f.Add(tt.data, tt.file)
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		info, err := inspect(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			t.Fatalf("inspect: %v (content errors belong in Detail)", err)
		}
		if !slices.Contains(Classes(), info.Class) {
			t.Fatalf("class %q is not one of %q", info.Class, Classes())
		}
		if info.MIME == "" {
			t.Fatal("empty MIME")
		}
		// The name can only restrict.
		plain, err := inspect(bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		if restriction[info.Class] < restriction[plain.Class] {
			t.Fatalf("name %q made class %q less restricted than %q", name, info.Class, plain.Class)
		}
	})
}
