package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/shoji-rbi/shoji/broker"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// readDoc reads a file of the repository.
func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docCode returns the text of the fenced code blocks and inline code spans
// of a Markdown document, one string each. Blocks marked ```text are a
// program's output, not commands, and are left out.
func docCode(doc string) []string {
	var out []string
	inFence, output := false, false
	var block strings.Builder
	for line := range strings.SplitSeq(doc, "\n") {
		if fence, ok := strings.CutPrefix(strings.TrimSpace(line), "```"); ok {
			if inFence && !output {
				out = append(out, block.String())
			}
			block.Reset()
			inFence, output = !inFence, fence == "text"
			continue
		}
		if inFence {
			block.WriteString(line + "\n")
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// shojiCommand is one `shoji …` invocation shown in a document.
type shojiCommand struct {
	text  string
	path  []string // e.g. ["user", "add"]
	flags []string // e.g. ["role", "password-stdin", "data"]
}

// hasSubcommands are the commands whose second word is a subcommand.
var hasSubcommands = map[string]bool{"user": true, "allow": true, "audit": true}

// shojiCommands finds every `shoji …` command in code, expanding
// alternatives written a|b|c into one command each.
func shojiCommands(code []string) []shojiCommand {
	var out []shojiCommand
	re := regexp.MustCompile(`(?:^|[\s(])shoji ([a-z|]+)((?: +[^\s#;]+)*)`)
	for _, c := range code {
		c = strings.ReplaceAll(c, "\\\n", " ")
		for line := range strings.SplitSeq(c, "\n") {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				words := strings.Fields(m[2])
				var flags []string
				for _, w := range words {
					w = strings.Trim(w, "[]()…,.")
					if strings.HasPrefix(w, "--") && len(w) > 2 {
						name, _, _ := strings.Cut(strings.TrimPrefix(w, "--"), "=")
						flags = append(flags, name)
					}
				}
				for cmd := range strings.SplitSeq(m[1], "|") {
					if !hasSubcommands[cmd] || len(words) == 0 || strings.HasPrefix(words[0], "-") {
						out = append(out, shojiCommand{text: strings.TrimSpace(m[0]), path: []string{cmd}, flags: flags})
						continue
					}
					for sub := range strings.SplitSeq(strings.Trim(words[0], "[]"), "|") {
						out = append(out, shojiCommand{text: strings.TrimSpace(m[0]), path: []string{cmd, sub}, flags: flags})
					}
				}
			}
		}
	}
	return out
}

// TestReadmeCommands runs `shoji … --help` for every shoji command README
// shows, and checks that the command exists and takes every flag shown.
func TestReadmeCommands(t *testing.T) {
	cmds := shojiCommands(docCode(readDoc(t, "README.md")))
	if len(cmds) < 10 {
		t.Fatalf("found only %d shoji commands in README: %+v", len(cmds), cmds)
	}
	for _, c := range cmds {
		t.Run(strings.Join(c.path, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(slices.Clone(c.path), "--help")
			err := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("README shows %q, but shoji %s: %v\n%s", c.text, strings.Join(args, " "), err, stderr.String())
			}
			help := stdout.String() + stderr.String()
			for _, f := range c.flags {
				if f == "help" {
					continue
				}
				if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
					t.Errorf("README shows %q, but shoji %s has no flag --%s:\n%s", c.text, strings.Join(c.path, " "), f, help)
				}
			}
		})
	}
}

// TestReadmeShojiCommandsParsed keeps the command finder honest on the
// forms README uses.
func TestReadmeShojiCommandsParsed(t *testing.T) {
	got := shojiCommands([]string{
		"shoji user add|list --data /x",
		"shoji serve --listen :8443 \\\n  --tls-cert /a --tls-key=/b   # comment --not-a-flag",
		"shoji audit verify --key PUB [--require-sealed]",
	})
	want := []shojiCommand{
		{path: []string{"user", "add"}, flags: []string{"data"}},
		{path: []string{"user", "list"}, flags: []string{"data"}},
		{path: []string{"serve"}, flags: []string{"listen", "tls-cert", "tls-key"}},
		{path: []string{"audit", "verify"}, flags: []string{"key", "require-sealed"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if !slices.Equal(got[i].path, want[i].path) || !slices.Equal(got[i].flags, want[i].flags) {
			t.Errorf("command %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestDocLinks checks that every relative link in README and docs/*.md
// names a file that exists and, with #anchor, a heading in it.
func TestDocLinks(t *testing.T) {
	docs := []string{"README.md"}
	matches, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		docs = append(docs, filepath.ToSlash(strings.TrimPrefix(m, repoRoot+"/")))
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "deploy", "seccomp", "README.md")); err == nil {
		docs = append(docs, "deploy/seccomp/README.md")
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, doc := range docs {
		text := readDoc(t, doc)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			rel := doc
			if file != "" {
				rel = filepath.ToSlash(filepath.Join(filepath.Dir(doc), file))
			}
			checked++
			body, err := os.ReadFile(filepath.Join(repoRoot, rel))
			if err != nil {
				t.Errorf("%s links to %s: %v", doc, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(rel, ".md") && !slices.Contains(headingAnchors(string(body)), anchor) {
				t.Errorf("%s links to %s: %s has no heading with anchor #%s", doc, target, rel, anchor)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d links checked", checked)
	}
}

// headingAnchors returns the anchors GitHub makes for a Markdown document's
// headings: lowercased, punctuation and symbols but '-' and '_' dropped
// (an arrow too; letters of any script stay), spaces to '-'.
func headingAnchors(doc string) []string {
	var out []string
	inFence := false
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' ||
				r > 127 && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// TestReadmeTLSPaths checks that README's TLS paths are the ones the
// example config uses.
func TestReadmeTLSPaths(t *testing.T) {
	cfg := broker.DefaultConfig()
	if err := cfg.LoadConfigFile(filepath.Join(repoRoot, "deploy", "config.example.yaml")); err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" || filepath.Dir(cfg.TLSCert) != filepath.Dir(cfg.TLSKey) {
		t.Fatalf("the example config's tls_cert %q and tls_key %q are not a pair in one directory", cfg.TLSCert, cfg.TLSKey)
	}
	readme := readDoc(t, "README.md")
	for _, want := range []string{"--tls-cert " + cfg.TLSCert, "--tls-key " + cfg.TLSKey} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not show %q", want)
		}
	}
	for _, m := range regexp.MustCompile(`--tls-(cert|key)[ =](\S+)`).FindAllStringSubmatch(readme, -1) {
		if want := map[string]string{"cert": cfg.TLSCert, "key": cfg.TLSKey}[m[1]]; m[2] != want {
			t.Errorf("README shows --tls-%s %s, the example config %s", m[1], m[2], want)
		}
	}
	for _, p := range regexp.MustCompile(`/etc/shoji/[\w./-]*tls[\w./-]*`).FindAllString(readme, -1) {
		p = strings.TrimRight(p, "./")
		if p != cfg.TLSCert && p != cfg.TLSKey && p != filepath.Dir(cfg.TLSCert) {
			t.Errorf("README names the TLS path %s; the example config uses %s and %s", p, cfg.TLSCert, cfg.TLSKey)
		}
	}
}

// TestReadmePackages checks that README names the Debian packages each
// make target installs, as the Makefile lists them.
func TestReadmePackages(t *testing.T) {
	makefile := readDoc(t, "Makefile")
	readme := readDoc(t, "README.md")
	for _, v := range []string{"DEMO_PACKAGES", "BENCH_PACKAGES", "TEST_PACKAGES"} {
		m := regexp.MustCompile(`(?m)^`+v+`\s*[:+]?=(.*)$`).FindAllStringSubmatch(makefile, -1)
		if len(m) == 0 {
			t.Errorf("Makefile has no %s", v)
			continue
		}
		for _, line := range m {
			for _, pkg := range strings.Fields(line[1]) {
				if !strings.Contains(readme, "`"+pkg+"`") {
					t.Errorf("README does not name %s's package %s", v, pkg)
				}
			}
		}
	}
	if !regexp.MustCompile(`(?m)^demo: demo-deps build$`).MatchString(makefile) {
		t.Error("make demo does not depend on demo-deps (the demo's packages only)")
	}
}
