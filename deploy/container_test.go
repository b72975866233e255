package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The tests in this file run the image's entrypoint outside a container
// engine: the machine that runs them has none, but it has runc, the OCI
// runtime that Docker and containerd themselves start containers with. The
// container's root file system is the host's /usr and /etc (read-only, with
// the image's additions laid over them), which hold the same Debian packages
// the Dockerfile installs; the process, its user, environment and working
// directory come from the Dockerfile's final stage, and the seccomp profile is
// the one deploy/ ships.

// containerProfilePath is the seccomp profile the deployment files use.
const containerProfilePath = "seccomp/shoji-chromium.json"

// containerStepTimeout bounds every wait of these tests: a browser start,
// a page load, a transfer. Generous, because the machines that run the
// tests are shared and Chromium under runc starts slowly on them.
const containerStepTimeout = 3 * time.Minute

// containerImage is what the Dockerfile's final stage declares about the
// process the image runs.
type containerImage struct {
	// UID and GID are the numeric USER.
	UID, GID uint32
	// Env are the ENV settings, "KEY=value", in order.
	Env []string
	// Workdir is the WORKDIR.
	Workdir string
	// Entrypoint and Cmd are the exec-form ENTRYPOINT and CMD.
	Entrypoint, Cmd []string
	// Packages are the Debian packages the stage installs with apt-get.
	Packages []string
}

// containerDockerfileLines returns the instructions of a Dockerfile: comments
// and blank lines dropped, continued lines joined.
func containerDockerfileLines(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// containerParseDockerfile reads the final stage of a Dockerfile. It accepts
// only what a reviewer can check the image by: a numeric USER, exec-form
// (JSON) ENTRYPOINT and CMD, ENV in KEY=value form.
func containerParseDockerfile(text string) (containerImage, error) {
	var img containerImage
	stage := -1
	for _, line := range containerDockerfileLines(text) {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			img = containerImage{}
			stage++
		case "USER":
			u, g, ok := strings.Cut(rest, ":")
			if !ok {
				return img, fmt.Errorf("USER %q: want numeric uid:gid", rest)
			}
			uid, err1 := strconv.ParseUint(u, 10, 32)
			gid, err2 := strconv.ParseUint(g, 10, 32)
			if err1 != nil || err2 != nil {
				return img, fmt.Errorf("USER %q: want numeric uid:gid", rest)
			}
			img.UID, img.GID = uint32(uid), uint32(gid)
		case "ENV":
			for f := range strings.FieldsSeq(rest) {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k == "" || strings.ContainsAny(v, `"'$`) {
					return img, fmt.Errorf("ENV %q: want unquoted KEY=value pairs", rest)
				}
				img.Env = append(img.Env, k+"="+v)
			}
		case "WORKDIR":
			img.Workdir = rest
		case "ENTRYPOINT", "CMD":
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil || len(args) == 0 {
				return img, fmt.Errorf("%s %s: want the exec (JSON array) form", instr, rest)
			}
			if strings.EqualFold(instr, "ENTRYPOINT") {
				img.Entrypoint = args
			} else {
				img.Cmd = args
			}
		case "RUN":
			img.Packages = append(img.Packages, containerAptPackages(rest)...)
		}
	}
	switch {
	case stage < 0:
		return img, errors.New("no FROM")
	case img.UID == 0:
		return img, errors.New("the final stage runs as root (no numeric non-root USER)")
	case len(img.Entrypoint) == 0:
		return img, errors.New("the final stage has no ENTRYPOINT")
	case img.Workdir == "":
		return img, errors.New("the final stage has no WORKDIR")
	}
	return img, nil
}

// containerAptPackages returns the packages of every `apt-get install` in a
// RUN command.
func containerAptPackages(run string) []string {
	var pkgs []string
	for cmd := range strings.SplitSeq(run, "&&") {
		f := strings.Fields(cmd)
		if len(f) < 2 || f[0] != "apt-get" || !slices.Contains(f, "install") {
			continue
		}
		for _, a := range f[slices.Index(f, "install")+1:] {
			if !strings.HasPrefix(a, "-") {
				pkgs = append(pkgs, a)
			}
		}
	}
	return pkgs
}

// containerEnv returns the value of key in env ("KEY=value" entries).
func containerEnv(env []string, key string) string {
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v
		}
	}
	return ""
}

// containerReadImage parses the repository's Dockerfile.
func containerReadImage(t *testing.T) containerImage {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	img, err := containerParseDockerfile(string(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return img
}

func TestContainerParseDockerfile(t *testing.T) {
	for _, tc := range []struct {
		name, text, wantErr string
	}{
		{"root", "FROM x\nUSER 0:0\nWORKDIR /\nENTRYPOINT [\"/a\"]\n", "root"},
		{"named user", "FROM x\nUSER shoji\nWORKDIR /\nENTRYPOINT [\"/a\"]\n", "numeric"},
		{"shell form", "FROM x\nUSER 1:1\nWORKDIR /\nENTRYPOINT /a b\n", "exec (JSON array) form"},
		{"quoted env", "FROM x\nUSER 1:1\nENV A=\"b c\"\nWORKDIR /\nENTRYPOINT [\"/a\"]\n", "KEY=value"},
		{"no entrypoint", "FROM x\nUSER 1:1\nWORKDIR /\n", "no ENTRYPOINT"},
		{"earlier stage only", "FROM x\nUSER 1:1\nWORKDIR /\nENTRYPOINT [\"/a\"]\nFROM y\n", "root"},
		{"no FROM", "USER 1:1\n", "no FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := containerParseDockerfile(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
	got, err := containerParseDockerfile("FROM a AS b\nRUN true\nFROM c\n" +
		"RUN apt-get update \\\n  && apt-get install -y --no-install-recommends p1 p2 \\\n  && rm -rf x\n" +
		"# comment\nUSER 7:8\nWORKDIR /w\nENV A=1 \\\n    B=2\nENTRYPOINT [\"/t\", \"--\"]\nCMD [\"serve\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	want := containerImage{UID: 7, GID: 8, Env: []string{"A=1", "B=2"}, Workdir: "/w",
		Entrypoint: []string{"/t", "--"}, Cmd: []string{"serve"}, Packages: []string{"p1", "p2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
}

// TestContainerImageDeclares checks the Dockerfile's final stage against
// what the deployment needs: a non-root numeric user, tini as PID 1, the
// broker serving the documented config path, and the Debian packages that
// hold every program the broker runs (Chromium, certutil for trusted_cas).
// Where dpkg is present it also checks that those programs, which the
// container test below takes from this machine, come from those packages.
func TestContainerImageDeclares(t *testing.T) {
	img := containerReadImage(t)
	if img.UID != 10001 || img.GID != 10001 {
		t.Errorf("USER %d:%d, want 10001:10001", img.UID, img.GID)
	}
	if img.Entrypoint[0] != "/usr/bin/tini" {
		t.Errorf("ENTRYPOINT %q: want tini as PID 1 (it reaps Chromium's orphans)", img.Entrypoint)
	}
	if i := slices.Index(img.Cmd, "--config"); i < 0 || i+1 >= len(img.Cmd) || img.Cmd[i+1] != "/etc/shoji/config.yaml" {
		t.Errorf("CMD %q: want --config /etc/shoji/config.yaml", img.Cmd)
	}
	chromium := containerEnv(img.Env, "SHOJI_CHROMIUM")
	programs := map[string]string{
		img.Entrypoint[0]:   "tini",
		chromium:            "chromium",
		"/usr/bin/certutil": "libnss3-tools",
	}
	for path, pkg := range programs {
		if !slices.Contains(img.Packages, pkg) {
			t.Errorf("the image runs %s but does not install %s", path, pkg)
		}
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Logf("no dpkg-query: cannot check which packages hold the programs")
		return
	}
	for path, pkg := range programs {
		out, err := exec.Command("dpkg-query", "-S", path).CombinedOutput()
		if err != nil {
			t.Logf("dpkg-query -S %s: %v: %s", path, err, bytes.TrimSpace(out))
			continue
		}
		if got, _, _ := strings.Cut(string(out), ":"); got != pkg {
			t.Errorf("%s belongs to package %s here, not %s", path, got, pkg)
		}
	}
}

// containerNeed skips the test, or fails it when SHOJI_REQUIRE_DEPS=1, when
// the machine cannot run the image's entrypoint under runc: runc, tini,
// Chromium, certutil (and any extra program) must be installed and the test
// must run as root, which runc needs to create the container.
func containerNeed(t *testing.T, img containerImage, extra ...string) {
	t.Helper()
	miss := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("%s (SHOJI_REQUIRE_DEPS=1)", msg)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		miss("runc needs root to create the container: run the test as root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		miss("runc missing (Debian package runc: make deps): %v", err)
	}
	// The container's /usr is this machine's: the image's programs must be
	// installed here.
	programs := append([]string{img.Entrypoint[0], containerEnv(img.Env, "SHOJI_CHROMIUM"), "/usr/bin/certutil"}, extra...)
	for _, p := range programs {
		if _, err := os.Stat(p); err != nil {
			miss("%s missing (Debian packages: make deps): %v", p, err)
		}
	}
}

// containerOptions vary the container a test runs.
type containerOptions struct {
	// Seccomp is the linux.seccomp of the spec; nil runs without a filter.
	Seccomp json.RawMessage
	// Wrap is put before the image's ENTRYPOINT, e.g. strace.
	Wrap []string
	// Mounts are added to the spec's mounts.
	Mounts []map[string]any
}

// container is the image's entrypoint running under runc.
type container struct {
	id, stateRoot string
	// Base is the broker's URL; Client trusts its certificate.
	Base           string
	Client         *http.Client
	stdout, stderr *containerOutput
	exited         chan struct{}
	waitErr        error
}

// containerOutput collects a process's output and lets a test wait for a
// pattern in it.
type containerOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // capacity 1: latest-wins wake-up for waiters
}

func newContainerOutput() *containerOutput {
	return &containerOutput{changed: make(chan struct{}, 1)}
}

func (w *containerOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (w *containerOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns the first match of re in the output, failing the test when
// none comes before the deadline or the container exits.
func (w *containerOutput) wait(t *testing.T, c *container, re *regexp.Regexp) []string {
	t.Helper()
	timer := time.NewTimer(containerStepTimeout)
	defer timer.Stop()
	for {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		select {
		case <-w.changed:
		case <-c.exited:
			if m := re.FindStringSubmatch(w.String()); m != nil {
				return m
			}
			t.Fatalf("the container exited (%v) before printing %v", c.waitErr, re)
		case <-timer.C:
			t.Fatalf("no %v in the output after %v", re, containerStepTimeout)
		}
	}
}

// containerBuildBroker builds the broker as the Dockerfile does.
func containerBuildBroker(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "shoji")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/shoji")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// containerTLS writes a CA and a certificate for 127.0.0.1 signed by it,
// and returns the PEM of both, the key's PEM and a pool with the CA.
func containerTLS(t *testing.T) (caPEM, certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoji container test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), pool
}

// containerFreePort returns a loopback TCP port that was free a moment ago.
func containerFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// containerFile is a file of the image's additions to /etc.
type containerFile struct {
	path     string
	data     []byte
	mode     os.FileMode
	uid, gid int
}

// containerWriteFiles writes files below root, creating their directories
// (root-owned, 0755 unless a containerFile with a trailing slash says
// otherwise).
func containerWriteFiles(t *testing.T, root string, files []containerFile) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if strings.HasSuffix(f.path, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.data, f.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// containerAccounts returns the host's /etc/passwd and /etc/group with the
// image's shoji user and group added, as the Dockerfile's useradd does.
func containerAccounts(t *testing.T, img containerImage) (passwd, group []byte) {
	t.Helper()
	read := func(path, line string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		for l := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
			if !strings.HasPrefix(l, "shoji:") {
				out.WriteString(l + "\n")
			}
		}
		out.WriteString(line + "\n")
		return out.Bytes()
	}
	passwd = read("/etc/passwd", fmt.Sprintf("shoji:x:%d:%d::/home/shoji:/usr/sbin/nologin", img.UID, img.GID))
	group = read("/etc/group", fmt.Sprintf("shoji:x:%d:", img.GID))
	return passwd, group
}

// containerStart runs the image's entrypoint under runc: the final stage's
// user, environment, working directory, ENTRYPOINT and CMD (with --listen
// moved to a free loopback port and --demo added, as an operator overriding
// the command would), every capability dropped, no new privileges, a
// read-only root, the host's network namespace, and opts.Seccomp. The broker
// reads its configuration from /etc/shoji/config.yaml with TLS, an audit
// checkpoint key and a trusted CA (so that certutil runs for every browser),
// all at the paths the deployment documents.
func containerStart(t *testing.T, img containerImage, bin string, opts containerOptions) *container {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir is 0700: the container's user must be able to walk /.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := containerFreePort(t)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	bundle, usr := containerRootfs(t, dir, img, bin)
	etc, pool := containerEtc(t, dir, img, bin, port, base)
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, int(img.UID), int(img.GID)); err != nil {
		t.Fatal(err)
	}
	args := slices.Concat(opts.Wrap, img.Entrypoint, containerCommand(t, img.Cmd, port))
	js, err := json.MarshalIndent(containerSpec(img, args, usr, etc, data, opts), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}

	c := &container{
		id:        fmt.Sprintf("shoji-test-%d-%d", os.Getpid(), port),
		stateRoot: filepath.Join(dir, "runc"),
		Base:      base,
		stdout:    newContainerOutput(),
		stderr:    newContainerOutput(),
		exited:    make(chan struct{}),
	}
	jar, _ := cookiejar.New(nil)
	c.Client = &http.Client{Jar: jar, Timeout: containerStepTimeout,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cmd := exec.Command("runc", "--root", c.stateRoot, "run", "--bundle", bundle, c.id)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	// Chromium's helpers inherit the output pipes; do not wait for them
	// for ever once the container is gone.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	go func() { c.waitErr = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		_ = exec.Command("runc", "--root", c.stateRoot, "kill", c.id, "KILL").Run()
		if out, err := exec.Command("runc", "--root", c.stateRoot, "delete", "--force", c.id).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "does not exist") {
			t.Errorf("runc delete --force %s: %v: %s", c.id, err, out)
		}
		<-c.exited
		if t.Failed() {
			t.Logf("container stdout:\n%s\ncontainer stderr:\n%s", c.stdout, c.stderr)
		}
	})
	return c
}

// containerRootfs makes the OCI bundle's directory and its root file
// system in dir: the merged-/usr symlinks, the shoji user's home directory
// (read-only, like the rest of the root: nothing may need to write there),
// and the image's addition to /usr, the broker binary, in its own directory
// to be laid over the host's /usr.
func containerRootfs(t *testing.T, dir string, img containerImage, bin string) (bundle, usr string) {
	t.Helper()
	bundle = filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	home := filepath.Join(rootfs, "home", "shoji")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{bundle, rootfs, filepath.Dir(home)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, int(img.UID), int(img.GID)); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	usr = filepath.Join(dir, "usr")
	if err := os.MkdirAll(filepath.Join(usr, "local", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(usr, "local", "bin", "shoji"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bundle, usr
}

// containerEtc writes the image's additions to /etc into a directory of
// dir, to be laid over the host's /etc: the user the Dockerfile adds, and
// what an operator mounts (the configuration, TLS certificate and key, the
// checkpoint key and a hospital CA) with the owners and modes the
// deployment documents. It returns the directory and a pool that trusts the
// broker's certificate.
func containerEtc(t *testing.T, dir string, img containerImage, bin string, port int, base string) (etc string, pool *x509.CertPool) {
	t.Helper()
	caPEM, certPEM, keyPEM, pool := containerTLS(t)
	checkpointKey := filepath.Join(dir, "checkpoint.key")
	if out, err := exec.Command(bin, "audit", "keygen", "--out", checkpointKey).CombinedOutput(); err != nil {
		t.Fatalf("audit keygen: %v\n%s", err, out)
	}
	ckPEM, err := os.ReadFile(checkpointKey)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`listen: "127.0.0.1:%d"
public_url: %q
data: /var/lib/shoji
tls_cert: /etc/shoji/tls/tls.crt
tls_key: /etc/shoji/tls/tls.key
sandbox: true
trusted_cas: [/etc/shoji/hospital-ca.pem]
audit:
  checkpoint_key: /etc/shoji/audit-checkpoint.key
`, port, base)
	passwd, group := containerAccounts(t, img)
	uid, gid := int(img.UID), int(img.GID)
	etc = filepath.Join(dir, "etc")
	containerWriteFiles(t, etc, []containerFile{
		{path: "passwd", data: passwd, mode: 0o644},
		{path: "group", data: group, mode: 0o644},
		{path: "shoji/", mode: 0o755},
		{path: "shoji/config.yaml", data: []byte(config), mode: 0o640, gid: gid},
		{path: "shoji/hospital-ca.pem", data: caPEM, mode: 0o644},
		{path: "shoji/audit-checkpoint.key", data: ckPEM, mode: 0o600, uid: uid, gid: gid},
		{path: "shoji/tls/", mode: 0o750, gid: gid},
		{path: "shoji/tls/tls.crt", data: certPEM, mode: 0o644},
		{path: "shoji/tls/tls.key", data: keyPEM, mode: 0o640, gid: gid},
	})
	return etc, pool
}

// containerSpec returns the OCI runtime spec (config.json) of the
// container: what a container engine makes of the image and of the
// settings docs/deploy.md asks for.
func containerSpec(img containerImage, args []string, usr, etc, data string, opts containerOptions) map[string]any {
	mounts := []map[string]any{
		{"destination": "/proc", "type": "proc", "source": "proc", "options": []string{"nosuid", "noexec", "nodev"}},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		// 64 MiB, Docker's and containerd's default size.
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": []string{"nosuid", "noexec", "nodev"}},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
		// The image's layers: the host's /usr and /etc with the image's
		// additions on top, read-only (an overlay with no upper layer).
		{"destination": "/usr", "type": "overlay", "source": "overlay", "options": []string{"ro", "lowerdir=" + usr + ":/usr"}},
		{"destination": "/etc", "type": "overlay", "source": "overlay", "options": []string{"ro", "lowerdir=" + etc + ":/etc"}},
		{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777"}},
		{"destination": "/var/lib/shoji", "type": "bind", "source": data, "options": []string{"rbind", "rw", "nosuid", "nodev"}},
	}
	noCaps := []string{}
	linux := map[string]any{
		// No network namespace: the host's, so that the test reaches the
		// broker on a loopback port. No cgroup settings: runc here cannot
		// set them up on this machine's cgroup layout.
		"namespaces":    []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
		"maskedPaths":   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
		"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
	if opts.Seccomp != nil {
		linux["seccomp"] = opts.Seccomp
	}
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": img.UID, "gid": img.GID},
			"args":     args,
			// A container engine's default PATH; HOME comes from the
			// user's passwd entry, as runc sets it.
			"env":             append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, img.Env...),
			"cwd":             img.Workdir,
			"capabilities":    map[string]any{"bounding": noCaps, "effective": noCaps, "inheritable": noCaps, "permitted": noCaps, "ambient": noCaps},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "shoji",
		"mounts":   append(mounts, opts.Mounts...),
		"linux":    linux,
	}
}

// containerCommand is the image's CMD with --listen moved to a loopback
// port of the host's network namespace, and --demo added.
func containerCommand(t *testing.T, cmd []string, port int) []string {
	t.Helper()
	out := slices.Clone(cmd)
	i := slices.Index(out, "--listen")
	if i < 0 || i+1 >= len(out) {
		t.Fatalf("CMD %q has no --listen ADDR", cmd)
	}
	out[i+1] = fmt.Sprintf("127.0.0.1:%d", port)
	return append(out, "--demo")
}

// initPID returns the host PID of the container's first process.
func (c *container) initPID(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("runc", "--root", c.stateRoot, "state", c.id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("runc state: %v: %s", err, out)
	}
	return st.Pid
}

// containerAdminCommands are commands an administrator runs in the
// broker's container beside the broker (`docker exec`, `kubectl exec`):
// they must work under the same filter.
var containerAdminCommands = [][]string{
	{"audit", "verify", "--data", "/var/lib/shoji"},
	// The key is written next to a temporary file and linked into place.
	{"audit", "keygen", "--out", "/tmp/admin-checkpoint.key"},
}

// containerLogout fetches the metrics and health pages, then logs the
// clinician out: the broker ends the browser and deletes its profile, and
// tells the viewer.
func containerLogout(t *testing.T, c *container, s *containerStream) {
	t.Helper()
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := c.Client.Get(c.Base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	from := s.mark()
	resp, err := c.Client.Post(c.Base+"/api/logout", "application/json", nil)
	if err != nil {
		t.Fatalf("POST /api/logout: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/logout: %s", resp.Status)
	}
	s.await(t, from, "the session's end", func(m containerMsg) bool {
		return m.typ == "status" && m.raw["state"] == "ended"
	})
}

// exec runs a command in the running container as the image's user, with
// the container's seccomp filter, as `docker exec` does, and returns its
// output.
func (c *container) exec(t *testing.T, img containerImage, args ...string) string {
	t.Helper()
	cmd := exec.Command("runc", slices.Concat([]string{"--root", c.stateRoot, "exec",
		"--user", fmt.Sprintf("%d:%d", img.UID, img.GID), "--cwd", img.Workdir, "--no-new-privs", c.id}, args)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runc exec %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// containerProc is a process of the container as the host sees it.
type containerProc struct {
	pid     int
	cmdline []string
}

// procs returns the container's processes: its first process and all its
// descendants, in the host's PID namespace.
func (c *container) procs(t *testing.T) []containerProc {
	t.Helper()
	init := c.initPID(t)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// The command name in parentheses may contain spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	var out []containerProc
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == init {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if err != nil || len(b) == 0 {
					break // exited meanwhile, or a zombie
				}
				args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
				if len(args) == 1 {
					// Chromium's helpers rewrite their command line into
					// one string (setproctitle).
					args = strings.Fields(args[0])
				}
				out = append(out, containerProc{pid: pid, cmdline: args})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b containerProc) int { return a.pid - b.pid })
	return out
}

// containerMsg is one message of the viewer stream: a frame or a JSON text.
type containerMsg struct {
	frame bool
	typ   string
	raw   map[string]any
}

// containerStream is the viewer's WebSocket; one goroutine reads it into
// msgs until it closes.
type containerStream struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	msgs    []containerMsg
	err     error
	changed chan struct{} // capacity 1: latest-wins wake-up for await
	done    chan struct{}
}

// login logs in as the demo clinician with the password the broker printed,
// accepts the usage pledge, opens the viewer's stream and says hello.
func (c *container) login(t *testing.T) *containerStream {
	t.Helper()
	pw := c.stdout.wait(t, c, regexp.MustCompile(`user demo\s+password (\S+)`))[1]
	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := c.Client.Post(c.Base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return resp
	}
	resp := post("/api/login", `{"username":"demo","password":"`+pw+`"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/login: %s", resp.Status)
	}
	resp, err := c.Client.Get(c.Base + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		PledgeVersion string `json:"pledgeVersion"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET /api/session: %v", err)
	}
	resp = post("/api/pledge", `{"version":"`+sess.PledgeVersion+`"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/pledge: %s", resp.Status)
	}

	u, _ := url.Parse(c.Base)
	hdr := http.Header{"Origin": {c.Base}}
	for _, ck := range c.Client.Jar.Cookies(u) {
		hdr.Add("Cookie", ck.Name+"="+ck.Value)
	}
	dialer := websocket.Dialer{TLSClientConfig: c.Client.Transport.(*http.Transport).TLSClientConfig, HandshakeTimeout: containerStepTimeout}
	ws, _, err := dialer.Dial("wss"+strings.TrimPrefix(c.Base, "https")+"/api/stream", hdr)
	if err != nil {
		t.Fatalf("GET /api/stream: %v", err)
	}
	s := &containerStream{ws: ws, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() { ws.Close(); <-s.done })
	s.send(t, map[string]any{"type": "hello", "version": 1, "width": 1000, "height": 700, "dpr": 1})
	return s
}

func (s *containerStream) read() {
	defer close(s.done)
	for {
		typ, b, err := s.ws.ReadMessage()
		m := containerMsg{frame: typ == websocket.BinaryMessage}
		if err == nil && !m.frame {
			err = json.Unmarshal(b, &m.raw)
			m.typ, _ = m.raw["type"].(string)
		}
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			s.msgs = append(s.msgs, m)
		}
		s.mu.Unlock()
		select {
		case s.changed <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (s *containerStream) send(t *testing.T, msg map[string]any) {
	t.Helper()
	if err := s.ws.WriteJSON(msg); err != nil {
		t.Fatalf("send %v: %v", msg["type"], err)
	}
}

// mark returns the position of the next message the stream receives, for
// await to look from.
func (s *containerStream) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// await returns the first message at or after position from (see mark)
// for which match is true, and its position.
func (s *containerStream) await(t *testing.T, from int, what string, match func(containerMsg) bool) (containerMsg, int) {
	t.Helper()
	timer := time.NewTimer(containerStepTimeout)
	defer timer.Stop()
	var seen []string
	for i := from; ; {
		s.mu.Lock()
		for ; i < len(s.msgs); i++ {
			m := s.msgs[i]
			if match(m) {
				s.mu.Unlock()
				return m, i
			}
			if !m.frame {
				seen = append(seen, fmt.Sprint(m.raw))
			}
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: the stream ended: %v; messages meanwhile: %q", what, err, seen)
		}
		select {
		case <-s.changed:
		case <-timer.C:
			t.Fatalf("no %s after %v; messages meanwhile: %q", what, containerStepTimeout, seen)
		}
	}
}

// closed waits for the server to close the stream and returns why.
func (s *containerStream) closed(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(containerStepTimeout):
		t.Fatalf("the stream is still open after %v", containerStepTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// isFrame matches a frame.
func isFrame(m containerMsg) bool { return m.frame }

// containerExercise uses the remote browser as a clinician would, so that
// every kind of work Chromium and the broker do runs under the profile:
// page loads, a scroll, typing (keys and an IME commit), a form submission,
// a download and a print through the transfer channel.
func containerExercise(t *testing.T, s *containerStream) {
	t.Helper()
	s.await(t, 0, "the first frame", isFrame)
	st, _ := s.await(t, 0, "the demo site's page", func(m containerMsg) bool {
		u, _ := m.raw["url"].(string)
		return m.typ == "state" && strings.HasPrefix(u, "http://")
	})
	start, _ := url.Parse(st.raw["url"].(string))
	demo := "http://" + start.Host
	visit := func(path string) {
		from := s.mark()
		s.send(t, map[string]any{"type": "nav", "action": "go", "url": demo + path})
		s.await(t, from, path+" loaded", func(m containerMsg) bool {
			u, _ := m.raw["url"].(string)
			loading, _ := m.raw["loading"].(bool)
			return m.typ == "state" && strings.HasPrefix(u, demo+path) && !loading
		})
	}

	visit("/article")
	from := s.mark()
	s.send(t, map[string]any{"type": "wheel", "x": 500, "y": 350, "dx": 0, "dy": 800, "mode": 0, "mods": 0})
	s.await(t, from, "a frame after the scroll", isFrame)

	visit("/form")
	from = s.mark()
	for _, k := range []map[string]any{
		{"key": "Tab", "code": "Tab", "keyCode": 9},
		{"key": "a", "code": "KeyA", "keyCode": 65},
	} {
		for _, action := range []string{"down", "up"} {
			msg := map[string]any{"type": "key", "action": action, "mods": 0, "repeat": false, "location": 0}
			for k, v := range k {
				msg[k] = v
			}
			s.send(t, msg)
		}
	}
	s.send(t, map[string]any{"type": "ime", "action": "update", "text": "しょほう", "selStart": 4, "selEnd": 4})
	s.send(t, map[string]any{"type": "ime", "action": "commit", "text": "処方", "selStart": 2, "selEnd": 2})
	// The page logs every key it gets, so typing changes it.
	s.await(t, from, "a frame after typing", isFrame)
	visit("/form/result?name=%E5%87%A6%E6%96%B9")
	visit("/japanese")
	from = s.mark()
	visit("/animation")
	for i := range 3 {
		_, from = s.await(t, from, fmt.Sprintf("animation frame %d", i+1), isFrame)
		from++
	}

	verdict := func(exclude string) func(containerMsg) bool {
		return func(m containerMsg) bool {
			state, _ := m.raw["state"].(string)
			id, _ := m.raw["id"].(string)
			return m.typ == "transfer" && id != exclude && (state == "released" || state == "held" || state == "rejected")
		}
	}
	visit("/files")
	from = s.mark()
	s.send(t, map[string]any{"type": "nav", "action": "go", "url": demo + "/files/notice.pdf"})
	dl, _ := s.await(t, from, "the download's verdict", verdict(""))
	from = s.mark()
	s.send(t, map[string]any{"type": "print"})
	s.await(t, from, "the print's verdict", verdict(dl.raw["id"].(string)))
}

// chromiumProcs returns the container's Chromium processes: the browser's
// (no --type) and its helpers' by type.
func chromiumProcs(procs []containerProc, chromium string) (browser []containerProc, helpers map[string][]containerProc) {
	helpers = map[string][]containerProc{}
	for _, p := range procs {
		if len(p.cmdline) == 0 || p.cmdline[0] != chromium {
			continue
		}
		typ := ""
		for _, a := range p.cmdline[1:] {
			if v, ok := strings.CutPrefix(a, "--type="); ok {
				typ = v
			}
		}
		if typ == "" {
			browser = append(browser, p)
		} else {
			helpers[typ] = append(helpers[typ], p)
		}
	}
	return browser, helpers
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// containerCheckSandboxed proves that Chromium runs sandboxed inside the
// container: the browser has no --no-sandbox, and its renderers are in user
// and PID namespaces of their own (Chromium's namespace sandbox) under a
// seccomp filter stacked on the container's (its seccomp-BPF sandbox), while
// every process runs as the image's user under the container's filter with
// no new privileges, and none has a capability in the container's user
// namespace.
func containerCheckSandboxed(t *testing.T, c *container, img containerImage) {
	t.Helper()
	procs := c.procs(t)
	chromium := containerEnv(img.Env, "SHOJI_CHROMIUM")
	browser, helpers := chromiumProcs(procs, chromium)
	if len(browser) == 0 || len(helpers["renderer"]) == 0 {
		t.Fatalf("no Chromium browser and renderer among the container's processes: %v", procs)
	}
	var broker containerProc
	for _, p := range procs {
		if p.cmdline[0] == "/usr/local/bin/shoji" {
			broker = p
		}
	}
	if broker.pid == 0 {
		t.Fatalf("no broker among the container's processes: %v", procs)
	}
	brokerStatus, err1 := procStatus(broker.pid)
	brokerUser, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", broker.pid))
	brokerPID, err3 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", broker.pid))
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("the broker: %v", err)
	}
	for _, b := range browser {
		if slices.Contains(b.cmdline, "--no-sandbox") {
			t.Errorf("Chromium runs with --no-sandbox: %q", b.cmdline)
		}
	}
	wantUID := strconv.FormatUint(uint64(img.UID), 10)
	renderers := 0
	for _, p := range procs {
		// A process may end while it is looked at; its record is then
		// incomplete and skipped.
		st, err1 := procStatus(p.pid)
		user, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", p.pid))
		pidNS, err3 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.pid))
		if err := errors.Join(err1, err2, err3); err != nil {
			continue
		}
		// The host's view: Chromium's uid_map maps a sandboxed process's
		// ids back to the container's user.
		if uid := strings.Fields(st["Uid"]); len(uid) == 0 || uid[0] != wantUID {
			t.Errorf("process %d %q runs as uid %v, want %s", p.pid, p.cmdline[0], uid, wantUID)
		}
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
			t.Errorf("process %d %q: Seccomp %s NoNewPrivs %s, want 2 (filter) and 1",
				p.pid, p.cmdline[0], st["Seccomp"], st["NoNewPrivs"])
		}
		if user == brokerUser && st["CapEff"] != "0000000000000000" {
			t.Errorf("process %d %q has capabilities %s, want none", p.pid, p.cmdline[0], st["CapEff"])
		}
		if !slices.ContainsFunc(helpers["renderer"], func(r containerProc) bool { return r.pid == p.pid }) {
			continue
		}
		renderers++
		if user == brokerUser {
			t.Errorf("renderer %d shares the broker's user namespace %s: Chromium's namespace sandbox is off", p.pid, user)
		}
		if pidNS == brokerPID {
			t.Errorf("renderer %d shares the broker's PID namespace %s: Chromium's namespace sandbox is off", p.pid, pidNS)
		}
		mine, _ := strconv.Atoi(brokerStatus["Seccomp_filters"])
		theirs, _ := strconv.Atoi(st["Seccomp_filters"])
		if theirs <= mine {
			t.Errorf("renderer %d has %d seccomp filters, the broker %d: Chromium's seccomp-BPF sandbox is off", p.pid, theirs, mine)
		}
	}
	if renderers == 0 {
		t.Fatal("every renderer ended before it was looked at: nothing was checked")
	}
}

// containerStop sends SIGTERM to the container, as `docker stop` does, and
// checks that the broker shuts down cleanly (tini passes on its status).
func containerStop(t *testing.T, c *container) {
	t.Helper()
	if out, err := exec.Command("runc", "--root", c.stateRoot, "kill", c.id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill TERM: %v: %s", err, out)
	}
	select {
	case <-c.exited:
	case <-time.After(containerStepTimeout):
		t.Fatalf("the container did not stop within %v of SIGTERM", containerStepTimeout)
	}
	if c.waitErr != nil {
		t.Errorf("the container's exit after SIGTERM: %v", c.waitErr)
	}
}

// containerProfile reads the shipped seccomp profile.
func containerProfile(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(containerProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", containerProfilePath, err)
	}
	return p
}

func containerJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContainerSandboxedChromium runs the image's entrypoint under the
// shipped seccomp profile as the image's non-root user, logs in as the demo
// clinician, receives frames, browses, types, downloads and prints, checks
// that Chromium runs with its sandbox on, and stops the container cleanly.
func TestContainerSandboxedChromium(t *testing.T) {
	img := containerReadImage(t)
	containerNeed(t, img)
	bin := containerBuildBroker(t, t.TempDir())
	c := containerStart(t, img, bin, containerOptions{Seccomp: containerJSON(t, containerProfile(t))})
	s := c.login(t)
	containerExercise(t, s)
	containerCheckSandboxed(t, c, img)
	for _, cmd := range containerAdminCommands {
		c.exec(t, img, append([]string{"/usr/local/bin/shoji"}, cmd...)...)
	}
	containerLogout(t, c, s)
	containerStop(t, c)
}

// TestContainerSyscallTrace records every system call the image's processes
// make while TestContainerSandboxedChromium's clinician works, with strace
// inside the container and no seccomp filter, and reports the calls the
// shipped profile does not allow. It is how the profile was derived
// (deploy/seccomp/README.md); it runs only when SHOJI_SECCOMP_TRACE names
// a directory for strace's log and the list of calls.
func TestContainerSyscallTrace(t *testing.T) {
	out := os.Getenv("SHOJI_SECCOMP_TRACE")
	if out == "" {
		t.Skip("set SHOJI_SECCOMP_TRACE=DIR to trace the image's system calls into DIR")
	}
	img := containerReadImage(t)
	containerNeed(t, img, "/usr/bin/strace")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	traceDir := filepath.Join(t.TempDir(), "trace")
	if err := os.Mkdir(traceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(traceDir, int(img.UID), int(img.GID)); err != nil {
		t.Fatal(err)
	}
	bin := containerBuildBroker(t, t.TempDir())
	c := containerStart(t, img, bin, containerOptions{
		Wrap:   []string{"/usr/bin/strace", "-f", "-qq", "-Y", "-o", "/trace/strace.log", "--"},
		Mounts: []map[string]any{{"destination": "/trace", "type": "bind", "source": traceDir, "options": []string{"rbind", "rw"}}},
	})
	s := c.login(t)
	containerExercise(t, s)
	var logs []string
	for i, cmd := range containerAdminCommands {
		log := fmt.Sprintf("exec%d.log", i)
		logs = append(logs, log)
		c.exec(t, img, append([]string{"/usr/bin/strace", "-f", "-qq", "-Y", "-o", "/trace/" + log, "--", "/usr/local/bin/shoji"}, cmd...)...)
	}
	containerLogout(t, c, s)
	// strace is PID 1 here and would end the trace on SIGTERM: stop the
	// broker itself, as tini would pass SIGTERM on.
	for _, p := range c.procs(t) {
		if p.cmdline[0] == "/usr/local/bin/shoji" {
			if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-c.exited:
	case <-time.After(containerStepTimeout):
		t.Fatalf("the container did not stop within %v of SIGTERM", containerStepTimeout)
	}
	calls := map[string]int{}
	for _, name := range append([]string{"strace.log"}, logs...) {
		log, err := os.ReadFile(filepath.Join(traceDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), log, 0o644); err != nil {
			t.Fatal(err)
		}
		for k, n := range containerTraceCalls(log) {
			calls[k] += n
		}
	}
	var list bytes.Buffer
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&list, "%s %d\n", name, calls[name])
	}
	if err := os.WriteFile(filepath.Join(out, "syscalls.txt"), list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d distinct system calls written to %s", len(calls), filepath.Join(out, "syscalls.txt"))
	// Names only: whether clone, unshare and socket were called with the
	// arguments the profile allows shows when TestContainerSandboxedChromium
	// runs the same session under it.
	p := seccompRead(t)
	allowed := seccompAllowed(p)
	for name, n := range calls {
		named := slices.ContainsFunc(p.Syscalls, func(r seccompRule) bool { return slices.Contains(r.Names, name) })
		switch {
		case allowed[name]:
		case named:
			t.Logf("%s is made (%d times) and refused on purpose (deploy/seccomp/README.md)", name, n)
		default:
			t.Errorf("%s is made (%d times) but the profile does not allow it", name, n)
		}
	}
}

// containerTraceCallRE matches a system call in a line of `strace -f -Y`'s
// log: "PID<comm> name(" or "PID<comm> <... name resumed>".
var containerTraceCallRE = regexp.MustCompile(`^\d+(?:<[^>]*>)?\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)`)

// containerTraceCalls counts the system calls in an strace log.
func containerTraceCalls(log []byte) map[string]int {
	calls := map[string]int{}
	for line := range strings.SplitSeq(string(log), "\n") {
		if m := containerTraceCallRE.FindStringSubmatch(line); m != nil && !strings.Contains(line, " resumed>") {
			calls[m[1]]++
		}
	}
	return calls
}

// containerWithoutNamespaces returns the profile with the calls that create
// namespaces refused, as a container engine's default profile refuses them
// to a container without CAP_SYS_ADMIN: clone with CLONE_NEWUSER, and
// unshare.
func containerWithoutNamespaces(t *testing.T, profile map[string]any) map[string]any {
	t.Helper()
	const cloneNewUser = 0x10000000
	var rules []any
	changed := 0
	for _, r := range profile["syscalls"].([]any) {
		rule := r.(map[string]any)
		names := rule["names"].([]any)
		switch {
		case slices.Contains(names, any("unshare")):
			changed++
			continue
		case slices.Contains(names, any("clone")):
			arg := rule["args"].([]any)[0].(map[string]any)
			arg["value"] = arg["value"].(float64) + cloneNewUser
			changed++
		}
		rules = append(rules, rule)
	}
	if changed != 2 {
		t.Fatalf("%s: found %d of the clone and unshare rules, want both", containerProfilePath, changed)
	}
	profile["syscalls"] = rules
	return profile
}

// TestContainerWithoutNamespacesChromiumFails is the negative control of
// TestContainerSandboxedChromium: with the same profile but the calls that
// create namespaces refused, Chromium cannot set up its sandbox and does
// not start, so the clinician gets no browser. That is why the profile
// allows them, and what happens under a container engine's default profile.
func TestContainerWithoutNamespacesChromiumFails(t *testing.T) {
	img := containerReadImage(t)
	containerNeed(t, img)
	bin := containerBuildBroker(t, t.TempDir())
	c := containerStart(t, img, bin, containerOptions{Seccomp: containerJSON(t, containerWithoutNamespaces(t, containerProfile(t)))})
	s := c.login(t)
	err := s.closed(t)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || !strings.Contains(ce.Text, "could not be started") {
		t.Errorf("the stream ended with %v, want close 1013 saying the remote browser could not be started", err)
	}
	for _, m := range s.msgs {
		if m.frame {
			t.Fatal("the viewer got a frame: a browser started without its namespaces")
		}
	}
	// The launch fails as soon as Chromium exits, and the broker's log
	// carries Chromium's own reason: its namespace sandbox's credentials
	// check could not create a user namespace.
	c.stderr.wait(t, c, regexp.MustCompile(`launch browser: start chromium: chrome failed to start:.*credentials\.cc`))
	if procs := c.procs(t); slices.ContainsFunc(procs, func(p containerProc) bool { return slices.Contains(p.cmdline, "--type=renderer") }) {
		t.Errorf("a renderer runs: %v", procs)
	}
}
