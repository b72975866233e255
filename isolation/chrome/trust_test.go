package chrome

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// testCA makes a certificate authority and a server certificate it signed
// for host.
func testCA(t *testing.T, host string) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoji test hospital CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

func TestParseTrustedCAs(t *testing.T) {
	ca, leaf := testCA(t, "x.test")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	if got, err := ParseTrustedCAs(caPEM); err != nil || len(got) != 1 {
		t.Fatalf("CA: %v %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"not a CA":   leafPEM,
		"empty":      nil,
		"a key":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
		"trailing":   append(append([]byte{}, caPEM...), "garbage"...),
		"broken DER": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := ParseTrustedCAs(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTrustedCAs: a site whose certificate the hospital's CA signed is
// secure in a browser given that CA, and refused (no click-through) in one
// without it.
func TestTrustedCAs(t *testing.T) {
	const host = "intranet.test"
	ca, cert := testCA(t, host)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>intranet</title><p id="ok">guidelines</p>`)
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	hosts := map[string]string{host + ":443": ts.Listener.Addr().String()}
	u := "https://" + host + "/"

	trusting := launchFixtureWith(t, isolation.Viewport{Width: 800, Height: 600, DPR: 1}, "", fixtureSetup{
		hosts:  hosts,
		config: []func(*Config){func(c *Config) { c.TrustedCAs = []*x509.Certificate{ca} }},
	})
	if err := trusting.b.Navigate(testCtx(t), u); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the intranet page, secure", func() bool {
		s := trusting.b.State()
		return s.URL == u && s.Secure && !s.Loading && text(t, trusting.b, "ok") == "guidelines"
	})

	plain := launchFixtureWith(t, isolation.Viewport{Width: 800, Height: 600, DPR: 1}, "", fixtureSetup{hosts: hosts})
	_ = plain.b.Navigate(testCtx(t), u)
	eventually(t, "the refusal", func() bool {
		s := plain.b.State()
		return s.URL == u && !s.Secure && !s.Loading && strings.HasPrefix(s.Title, "証明書が無効です / Invalid certificate")
	})
	if text(t, plain.b, "ok") == "guidelines" {
		t.Fatal("the page loaded without the CA")
	}
}
