package chrome

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CertutilPath is NSS's certutil (Debian: libnss3-tools), which writes the
// certificate database a browser reads from HOME/.pki/nssdb.
const CertutilPath = "/usr/bin/certutil"

// ParseTrustedCAs parses a PEM bundle of certificate authorities for
// Config.TrustedCAs. Every block must be a CA certificate; the error names
// the first that is not.
func ParseTrustedCAs(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("PEM block %d (%s) is not a certificate authority", n, c.Subject)
		}
		out = append(out, c)
	}
	if len(strings.TrimSpace(string(bundle))) != 0 {
		return nil, errors.New("trailing data after the last PEM block")
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// installTrustedCAs writes an NSS certificate database into the browser's
// HOME (its profile directory) that trusts cas to identify web sites, in
// addition to the system's roots.
func installTrustedCAs(home string, cas []*x509.Certificate) error {
	if len(cas) == 0 {
		return nil
	}
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return fmt.Errorf("trusted CAs: %w", err)
	}
	run := func(args ...string) error {
		cmd := exec.Command(CertutilPath, append([]string{"-d", "sql:" + db}, args...)...)
		cmd.Env = []string{"HOME=" + home}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("trusted CAs: certutil %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("-N", "--empty-password"); err != nil {
		return err
	}
	for i, c := range cas {
		f := filepath.Join(db, fmt.Sprintf("ca-%d.pem", i))
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
			return fmt.Errorf("trusted CAs: %w", err)
		}
		// "C,," trusts the CA to issue server certificates only.
		if err := run("-A", "-n", fmt.Sprintf("shoji-trusted-%d", i), "-t", "C,,", "-i", f); err != nil {
			return err
		}
		os.Remove(f)
	}
	return nil
}
