package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestRunRefusesBadInvocations(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
		{"viewport", []string{"--viewport", "10x10"}, `--viewport "10x10"`},
		{"target without user", []string{"--target", "https://shoji.example"}, "--target needs --user and --password-stdin"},
		{"missing shoji", []string{"--shoji", filepath.Join(os.TempDir(), "no-such-shoji")}, "--shoji"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: shoji-bench", "-shoji", "-scenarios", "-frames-in-flight"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"version"}, strings.NewReader(""), &stdout, &stderr); err != nil || stdout.String() != "shoji-bench "+version+"\n" {
		t.Errorf("version: %q, %v", stdout.String(), err)
	}
}

func TestShojiBinary(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "shoji")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho shoji 1.2.3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := shojiBinary(exe)
	if err != nil || got != exe {
		t.Errorf("shojiBinary(%q) = %q, %v", exe, got, err)
	}
	if v := brokerVersion(context.Background(), exe); v != "1.2.3" {
		t.Errorf("brokerVersion = %q, want 1.2.3", v)
	}
	if v := brokerVersion(context.Background(), "/bin/false"); v != version {
		t.Errorf("brokerVersion of a binary that fails = %q, want this program's %q", v, version)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := shojiBinary(""); err == nil || !strings.Contains(err.Error(), "--shoji") {
		t.Errorf("no shoji anywhere: err = %v, want one naming --shoji", err)
	}
}

// TestDocCommands checks every shoji-bench command that README.md and
// docs/benchmarks.md show against shoji-bench's flags, so that the
// commands next to the published figures still run.
func TestDocCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := stderr.String()
	cmdRe := regexp.MustCompile(`shoji-bench((?: +-[^\s` + "`" + `|]+| +[^\s-` + "`" + `|][^\s` + "`" + `|]*)*)`)
	flagRe := regexp.MustCompile(`^--?([a-z][a-z-]*)`)
	found := 0
	for _, doc := range []string{"README.md", "docs/benchmarks.md"} {
		b, err := os.ReadFile(filepath.Join("../..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cmdRe.FindAllStringSubmatch(string(b), -1) {
			for _, w := range strings.Fields(m[1]) {
				f := flagRe.FindStringSubmatch(w)
				if f == nil {
					continue
				}
				found++
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f[1]) + `[\s]`).MatchString(help) {
					t.Errorf("%s shows %q, but shoji-bench has no flag -%s", doc, strings.TrimSpace(m[0]), f[1])
				}
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d flags of shoji-bench commands in the docs; the check checks nothing", found)
	}
}
