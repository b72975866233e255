package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunAllowStaticRules checks `shoji allow` with the broker's config
// file: list shows its egress.allow as read-only rules of every profile,
// rm refuses them, add and import keep them and never store them, export
// writes them, and an import that alters them is refused naming the rule.
func TestRunAllowStaticRules(t *testing.T) {
	t.Setenv("USER", "tester")
	t.Setenv("SHOJI_CONFIG", "")
	tmp := t.TempDir()
	data := "--data=" + filepath.Join(tmp, "data")
	cfgFile := filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("egress:\n  allow: [guide.example.jp, \"*.intranet.example.jp:8443\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := "--config=" + cfgFile
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := runAllow(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
		return stdout.String(), err
	}

	if _, err := run("", "add", "www.pmda.go.jp", data, config); err != nil {
		t.Fatalf("add: %v", err)
	}
	out, err := run("", "list", data, config)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, want := range []string{
		"default  www.pmda.go.jp",
		"*        guide.example.jp            read-only  never    config file egress.allow",
		"*        *.intranet.example.jp:8443  read-only  never    config file egress.allow",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list:\n%s\nlacks %q", out, want)
		}
	}
	if out, _ := run("", "list", data); strings.Contains(out, "read-only") {
		t.Errorf("list without --config shows static rules:\n%s", out)
	}
	if _, err := run("", "rm", "guide.example.jp", data, config); err == nil || !strings.Contains(err.Error(), `pattern "guide.example.jp" is a static rule, read-only here (config file egress.allow)`) {
		t.Errorf("rm of a static rule: %v; want refused as read-only", err)
	}

	exported, err := run("", "export", data, config)
	if err != nil || !strings.Contains(exported, "pattern: guide.example.jp") || !strings.Contains(exported, "read_only: true") {
		t.Fatalf("export: %v\n%s\nwant the static rules", err, exported)
	}
	if out, err := run(exported, "import", "-", data, config); err != nil || !strings.Contains(out, "policy version 2") {
		t.Errorf("import of the export: %v %s", err, out)
	}
	altered := strings.Replace(exported, "pattern: guide.example.jp", "pattern: evil.example", 1)
	if _, err := run(altered, "import", "-", data, config); err == nil || !strings.Contains(err.Error(), `static rule "guide.example.jp" is read-only (config file egress.allow) and cannot be changed`) {
		t.Errorf("import altering a static rule: %v; want refused naming it", err)
	}
	doc, v := storedPolicy(t, filepath.Join(tmp, "data"))
	if v != 2 || doc.Static != nil || len(doc.Profiles) != 1 || len(doc.Profiles[0].Rules) != 1 {
		t.Errorf("stored policy version %d %+v; want version 2 with the one profile rule and no static rules", v, doc)
	}
	if _, err := run("", "list", data, "--config="+filepath.Join(tmp, "nope.yaml")); err == nil {
		t.Error("list with a missing config file succeeded")
	}
}
