package inspect

import (
	"bytes"
	"encoding/binary"
)

// lnkMagic starts a Windows shortcut: header size 0x4C and the ShellLink
// CLSID {00021401-0000-0000-C000-000000000046}.
var lnkMagic = []byte{0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}

// sniffExecutable recognizes programs, shortcuts and disk images (which
// Windows mounts on a double click, past any scan of their content).
func sniffExecutable(src *source, head []byte, rep *report) bool {
	set := func(mime, detail string) bool {
		rep.MIME, rep.Class = mime, ClassExecutable
		rep.note("%s", detail)
		return true
	}
	switch {
	case bytes.HasPrefix(head, []byte("MZ")):
		return set(peKind(head))
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return set("application/x-elf", "ELF program")
	case hasPrefixAny(head, "\xfe\xed\xfa\xce", "\xfe\xed\xfa\xcf", "\xce\xfa\xed\xfe", "\xcf\xfa\xed\xfe"):
		return set("application/x-mach-binary", "Mach-O program")
	case bytes.HasPrefix(head, []byte("\xca\xfe\xba\xbe")) && len(head) >= 8:
		// Java class files and universal Mach-O binaries share a magic
		// number; a class file's version is at least 45, a universal
		// binary's architecture count is small.
		if binary.BigEndian.Uint32(head[4:8]) < 30 {
			return set("application/x-mach-binary", "Mach-O universal program")
		}
		return set("application/java-vm", "Java class file")
	case bytes.HasPrefix(head, []byte("\x00asm")):
		return set("application/wasm", "WebAssembly module")
	case bytes.HasPrefix(head, []byte("dex\n")):
		return set("application/vnd.android.dex", "Android Dalvik executable")
	case bytes.HasPrefix(head, lnkMagic):
		return set("application/x-ms-shortcut", "Windows shortcut (.lnk)")
	case bytes.HasPrefix(head, []byte("ITSF")):
		return set("application/vnd.ms-htmlhelp", "compiled HTML help (.chm): runs scripts")
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return set("application/x-vhdx", "disk image (VHDX)")
	case bytes.HasPrefix(head, []byte("conectix")) || tailIs(src, 512, "conectix"):
		return set("application/x-vhd", "disk image (VHD)")
	case bytes.HasPrefix(head, []byte("KDMV")):
		return set("application/x-vmdk", "disk image (VMDK)")
	case tailIs(src, 512, "koly"):
		return set("application/x-apple-diskimage", "disk image (DMG)")
	}
	for _, off := range []int{0x8001, 0x8801, 0x9001} {
		if len(head) >= off+5 && string(head[off:off+5]) == "CD001" {
			return set("application/x-iso9660-image", "disk image (ISO 9660)")
		}
	}
	return false
}

// peKind tells a Windows program from a DLL and from an old DOS program.
func peKind(head []byte) (mime, detail string) {
	if len(head) >= 0x40 {
		off := int(binary.LittleEndian.Uint32(head[0x3c:]))
		if off > 0 && off+24 <= len(head) && string(head[off:off+4]) == "PE\x00\x00" {
			characteristics := binary.LittleEndian.Uint16(head[off+22:])
			if characteristics&0x2000 != 0 {
				return "application/vnd.microsoft.portable-executable", "Windows DLL (PE)"
			}
			return "application/vnd.microsoft.portable-executable", "Windows program (PE)"
		}
	}
	return "application/x-msdos-program", "DOS/Windows program (MZ)"
}

// tailIs reports whether the file has magic at n bytes from its end.
func tailIs(src *source, n int64, magic string) bool {
	if src.size < n {
		return false
	}
	b, err := src.read(src.size-n, len(magic))
	return err == nil && string(b) == magic
}

func hasPrefixAny(b []byte, prefixes ...string) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

// sniffArchive recognizes archives other than ZIP.
func sniffArchive(src *source, head []byte, rep *report) bool {
	set := func(mime, detail string) bool {
		rep.MIME, rep.Class = mime, ClassArchive
		rep.note("%s", detail)
		return true
	}
	switch {
	case bytes.HasPrefix(head, rar5Magic) || bytes.HasPrefix(head, rar4Magic):
		rep.MIME, rep.Class = "application/vnd.rar", ClassArchive
		inspectRAR(src, rep)
		return true
	case bytes.HasPrefix(head, sevenZipMagic):
		rep.MIME, rep.Class = "application/x-7z-compressed", ClassArchive
		inspect7z(src, rep)
		return true
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return set("application/gzip", "gzip compressed")
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9':
		return set("application/x-bzip2", "bzip2 compressed")
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return set("application/x-xz", "xz compressed")
	case bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")):
		return set("application/zstd", "zstd compressed")
	case bytes.HasPrefix(head, []byte("LZIP")):
		return set("application/x-lzip", "lzip compressed")
	case bytes.HasPrefix(head, []byte("MSCF\x00\x00\x00\x00")):
		return set("application/vnd.ms-cab-compressed", "Windows cabinet archive")
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return set("application/x-tar", "tar archive")
	case bytes.HasPrefix(head, []byte("!<arch>\n")):
		return set("application/x-archive", "ar archive")
	case hasPrefixAny(head, "070701", "070702", "070707"):
		return set("application/x-cpio", "cpio archive")
	case len(head) >= 7 && head[2] == '-' && head[3] == 'l' && (head[4] == 'h' || head[4] == 'z') && head[6] == '-':
		return set("application/x-lzh-compressed", "LZH archive")
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("\x60\xea")) && binary.LittleEndian.Uint16(head[2:]) <= 2600:
		return set("application/x-arj", "ARJ archive")
	}
	return false
}
