package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
)

func TestRunUser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	data := "--data=" + dir
	steps := []struct {
		name       string
		args       []string
		stdin      string
		wantErr    string // substring; "" means success
		wantStdout []string
	}{
		{"help", []string{"--help"}, "", "", []string{"Usage: shoji user", "passwd NAME --password-stdin"}},
		{"add help", []string{"add", "--help"}, "", "", []string{"add NAME --role ROLE", "-password-stdin", "-role ROLE"}},
		{"no command", nil, "", "missing command", nil},
		{"unknown command", []string{"remove", "bob"}, "", `unknown command "remove"`, nil},
		{"add", []string{"add", "Bob", "--role", "clinician", "--password-stdin", data}, "bob's long password\n", "", []string{"added user bob (clinician)"}},
		{"add, flags first", []string{"add", data, "--role=admin", "--password-stdin", "alice"}, "alice's long password\r\nignored\n", "", []string{"added user alice (admin)"}},
		{"add existing", []string{"add", "bob", "--role", "clinician", "--password-stdin", data}, "bob's long password\n", "user already exists", nil},
		{"add unknown role", []string{"add", "carol", "--role", "doctor", "--password-stdin", data}, "x", `unknown role "doctor"`, nil},
		{"add without role", []string{"add", "carol", "--password-stdin", data}, "x", "--role is required", nil},
		{"add weak password", []string{"add", "carol", "--role", "auditor", "--password-stdin", data}, "short\n", "at least 12 characters", nil},
		{"add empty password", []string{"add", "carol", "--role", "auditor", "--password-stdin", data}, "", "no password on standard input", nil},
		{"add without --password-stdin", []string{"add", "carol", "--role", "auditor", data}, "", "use --password-stdin", nil},
		{"add bad name", []string{"add", "carol smith", "--role", "auditor", "--password-stdin", data}, "carol's long password\n", "invalid user name", nil},
		{"add two names", []string{"add", "carol", "dave", "--role", "auditor", "--password-stdin", data}, "", "want 1 NAME", nil},
		{"unknown flag", []string{"list", "--verbose", data}, "", "flag provided but not defined: -verbose", nil},
		{"disable", []string{"disable", "bob", data}, "", "", []string{"disabled user bob"}},
		{"disable last admin", []string{"disable", "alice", data}, "", "last enabled admin", nil},
		{"disable unknown", []string{"disable", "nobody", data}, "", `no such user "nobody"`, nil},
		{"list", []string{"list", data}, "", "", []string{"NAME   ROLE       STATUS    CREATED", "alice  admin      enabled", "bob    clinician  disabled"}},
		{"enable", []string{"enable", "bob", data}, "", "", []string{"enabled user bob"}},
		{"passwd", []string{"passwd", "bob", "--password-stdin", data}, "bob's new password\n", "", []string{"password set for user bob"}},
		{"passwd unknown", []string{"passwd", "nobody", "--password-stdin", data}, "nobody's password\n", "no such user", nil},
		{"role", []string{"role", "bob", "--role", "approver", data}, "", "", []string{"user bob is now approver"}},
		{"list again", []string{"list", data}, "", "", []string{"bob    approver  enabled"}},
	}
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		err := runUser(context.Background(), s.args, strings.NewReader(s.stdin), &stdout, &stderr)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: runUser(%q) = %v", s.name, s.args, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("%s: runUser(%q) = %v, want error containing %q", s.name, s.args, err, s.wantErr)
		}
		for _, want := range s.wantStdout {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout %q lacks %q", s.name, stdout.String(), want)
			}
		}
		for _, secret := range []string{"long password", "new password"} {
			if strings.Contains(stdout.String()+stderr.String(), secret) {
				t.Errorf("%s: output shows the password", s.name)
			}
		}
	}

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}

	// The accounts work for logging in, with the passwords set above.
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := auth.New(auth.Config{DataDir: dir}, st)
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range map[string]string{"alice": "alice's long password", "bob": "bob's new password"} {
		if _, _, err := svc.Login(context.Background(), user, pw, "127.0.0.1"); err != nil {
			t.Errorf("login %s: %v", user, err)
		}
	}

	// While another process (here: this store handle) holds the data
	// directory, the command says so.
	err = runUser(context.Background(), []string{"list", data}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "in use by another shoji process") {
		t.Errorf("list while the store is held = %v, want ErrInUse", err)
	}
}

func TestRunUserDataFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SHOJI_DATA", dir)
	err := runUser(context.Background(), []string{"add", "eve", "--role", "auditor", "--password-stdin"},
		strings.NewReader("eve's long password\n"), &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		t.Errorf("store not created in $SHOJI_DATA: %v", err)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantRole string
	}{
		{[]string{"bob", "--role", "x"}, []string{"bob"}, "x"},
		{[]string{"--role", "x", "bob"}, []string{"bob"}, "x"},
		{[]string{"a", "--role=x", "b"}, []string{"a", "b"}, "x"},
		{[]string{"--", "--role", "x"}, []string{"--role", "x"}, ""},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		fs := newTestFlagSet()
		role := fs.String("role", "", "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Fatalf("parseInterspersed(%q): %v", tt.args, err)
		}
		if strings.Join(pos, "|") != strings.Join(tt.wantPos, "|") || *role != tt.wantRole {
			t.Errorf("parseInterspersed(%q) = %q role %q; want %q role %q", tt.args, pos, *role, tt.wantPos, tt.wantRole)
		}
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
