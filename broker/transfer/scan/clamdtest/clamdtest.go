// Package clamdtest runs a real clamd for tests, with a signature database
// the test writes: ClamAV cannot download its official signatures on a
// machine without Internet, and tests want signatures they control anyway.
//
// Tests put TestMarker into a file to make it "malware"; the default
// database detects it as TestSignatureName.
package clamdtest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ClamdPath is where Start looks for clamd.
const ClamdPath = "/usr/sbin/clamd"

// TestMarker is an EICAR-like string that shoji's tests embed in "malware"
// test files. It is harmless; only the test signature database knows it.
const TestMarker = "SHOJI-TEST-MALWARE-7f3a9c1e-NOT-A-VIRUS"

// TestSignatureName is what clamd reports when it finds TestMarker with
// TestSignature. ClamAV appends ".UNOFFICIAL" to signatures that are not
// from its official databases.
const TestSignatureName = "Shoji.Test.Malware.UNOFFICIAL"

// TestSignature detects TestMarker anywhere in any file.
var TestSignature = NDB("Shoji.Test.Malware", []byte(TestMarker))

// startTimeout bounds how long clamd may take to load its database and
// answer PING; generous for a loaded machine.
const startTimeout = 2 * time.Minute

// stopTimeout bounds how long clamd may take to exit after SIGTERM before
// it is killed.
const stopTimeout = 30 * time.Second

// Signature is one line of a ClamAV signature database.
type Signature struct {
	// Ext is the database type, which is the file extension ClamAV reads
	// it from: "ndb" (body signatures), "hdb" (MD5 hashes), "hsb" (SHA
	// hashes), "ldb" (logical signatures).
	Ext string
	// Line is the signature in that format.
	Line string
}

// NDB returns a body signature named name that matches content at any
// offset of any file type. clamd reports it as name + ".UNOFFICIAL".
func NDB(name string, content []byte) Signature {
	return Signature{Ext: "ndb", Line: fmt.Sprintf("%s:0:*:%s", name, hex.EncodeToString(content))}
}

// HDB returns a hash signature named name that matches a file whose whole
// content is content.
func HDB(name string, content []byte) Signature {
	sum := md5.Sum(content)
	return Signature{Ext: "hdb", Line: fmt.Sprintf("%s:%d:%s", hex.EncodeToString(sum[:]), len(content), name)}
}

// Options tune Start. Zero values mean the defaults.
type Options struct {
	// StreamMaxLength is clamd's INSTREAM size limit in bytes. Zero means
	// 8 MiB.
	StreamMaxLength int64
}

// Daemon is a clamd started by a test.
type Daemon struct {
	// Addr is the address to give scan.NewClamd, "unix:<dir>/clamd.sock".
	Addr string
	// Socket is the Unix socket path.
	Socket string
	// Dir holds the configuration, the database, the socket and the log.
	Dir string
	// LogPath is clamd's log file.
	LogPath string

	t    testing.TB
	conf string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
}

// Start runs a real clamd with a signature database written into
// t.TempDir() — sigs, or TestSignature when none are given — listening on a
// Unix socket, and stops it at t.Cleanup. It skips the test when clamd is
// missing, unless SHOJI_REQUIRE_DEPS=1, when it fails it.
func Start(t testing.TB, sigs ...Signature) *Daemon {
	t.Helper()
	return StartWith(t, Options{}, sigs...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options, sigs ...Signature) *Daemon {
	t.Helper()
	Require(t)
	if opts.StreamMaxLength == 0 {
		opts.StreamMaxLength = 8 << 20
	}
	if len(sigs) == 0 {
		sigs = []Signature{TestSignature}
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "clamd")
	if err != nil {
		t.Fatalf("clamdtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Daemon{
		Socket:  filepath.Join(dir, "clamd.sock"),
		Dir:     dir,
		LogPath: filepath.Join(dir, "clamd.log"),
		conf:    filepath.Join(dir, "clamd.conf"),
		t:       t,
	}
	d.Addr = "unix:" + d.Socket
	if err := writeDatabase(filepath.Join(dir, "db"), sigs); err != nil {
		t.Fatalf("clamdtest: %v", err)
	}
	conf := strings.Join([]string{
		"Foreground yes",
		"LocalSocket " + d.Socket,
		"LocalSocketMode 600",
		"DatabaseDirectory " + filepath.Join(dir, "db"),
		"TemporaryDirectory " + dir,
		"LogFile " + d.LogPath,
		"LogVerbose yes",
		"LogTime yes",
		fmt.Sprintf("StreamMaxLength %d", opts.StreamMaxLength),
		"MaxThreads 8",
		"SelfCheck 3600",
		"",
	}, "\n")
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("clamdtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clamd log %s:\n%s", d.LogPath, d.Log())
		}
		d.Stop()
	})
	d.Restart()
	return d
}

// Require skips the test when clamd is not installed, or fails it when
// SHOJI_REQUIRE_DEPS=1.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ClamdPath); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("clamd is required (SHOJI_REQUIRE_DEPS=1): %v", err)
		}
		t.Skipf("clamd not installed: %v", err)
	}
}

// writeDatabase writes sigs into dir, one file per database type.
func writeDatabase(dir string, sigs []Signature) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	byExt := map[string][]string{}
	for _, s := range sigs {
		if s.Ext == "" || strings.ContainsAny(s.Ext, `/\.`) || strings.ContainsAny(s.Line, "\r\n") {
			return fmt.Errorf("bad signature %+v", s)
		}
		byExt[s.Ext] = append(byExt[s.Ext], s.Line)
	}
	for ext, lines := range byExt {
		path := filepath.Join(dir, "shoji-test."+ext)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Restart starts clamd if it is not running and waits until it answers
// PING. A test that stopped clamd to simulate an outage calls it to end the
// outage.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.mu.Lock()
	running := d.cmd != nil
	d.mu.Unlock()
	if running {
		return
	}
	cmd := exec.Command(ClamdPath, "--config-file="+d.conf)
	out, err := os.OpenFile(filepath.Join(d.Dir, "clamd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatalf("clamdtest: %v", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("clamdtest: start %s: %v", ClamdPath, err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(d.Socket)
		if err == nil {
			return
		}
		select {
		case <-exited:
			d.mu.Lock()
			werr := d.waitErr
			d.cmd = nil
			d.mu.Unlock()
			d.t.Fatalf("clamdtest: clamd exited while starting (%v); log:\n%s", werr, d.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.Stop()
			d.t.Fatalf("clamdtest: clamd did not answer PING on %s within %v: %v; log:\n%s", d.Socket, startTimeout, err, d.Log())
		}
	}
}

// Stop stops clamd and waits for it to exit. It does nothing when clamd is
// not running, so a test may stop it to simulate an outage and Cleanup
// stops it again.
func (d *Daemon) Stop() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
	// clamd removes its socket on a clean exit; make sure of it so that
	// clients see "no such file" rather than a stale socket.
	_ = os.Remove(d.Socket)
}

// Running reports whether the daemon was started and not stopped.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

// Log returns clamd's log and console output so far.
func (d *Daemon) Log() string {
	var b strings.Builder
	for _, p := range []string{d.LogPath, filepath.Join(d.Dir, "clamd.out")} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
		b.Write(data)
	}
	return b.String()
}

// ping sends PING to the socket and expects PONG.
func ping(socket string) error {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if n > 0 && strings.TrimRight(string(buf[:n]), "\x00\n") == "PONG" {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("PING answered %q", buf[:n])
}
