package broker

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportFences keeps the dependency direction cmd → broker → isolation:
// isolation never imports broker, the viewer stream never imports
// chromedp (it talks to browsers only through the isolation interface),
// internal packages, which both sides use, import neither, and no domain
// package depends on the bbolt store (they declare the storage they use).
func TestImportFences(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}: {{join .Deps \" \"}}", "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/shoji-rbi/shoji/"
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, ": ")
		deps[pkg] = strings.Fields(list)
	}
	checked := 0
	for pkg, ds := range deps {
		if !strings.HasPrefix(pkg, mod) {
			continue
		}
		for _, d := range ds {
			if strings.HasPrefix(pkg, mod+"isolation") && strings.HasPrefix(d, mod+"broker") {
				t.Errorf("%s imports %s: isolation must not depend on the broker", pkg, d)
			}
			if strings.HasPrefix(pkg, mod+"internal/") && (strings.HasPrefix(d, mod+"broker") || strings.HasPrefix(d, mod+"isolation")) {
				t.Errorf("%s imports %s: internal packages serve both sides and depend on neither", pkg, d)
			}
			if pkg == mod+"broker/stream" && strings.HasPrefix(d, "github.com/chromedp/") {
				t.Errorf("broker/stream imports %s: the stream must not know Chromium", d)
			}
		}
		checked++
	}
	if checked < 8 || deps[mod+"broker/stream"] == nil || deps[mod+"isolation/chrome"] == nil {
		t.Fatalf("go list found only %d of our packages; the fence checks nothing", checked)
	}
}

// TestStoreImporters: no domain package's code imports the bbolt store; each
// declares the storage interface it uses, and broker/store implements them.
// Only what chooses the backend imports it: the wiring, the CLI, the
// benchmark (which seeds a data directory) and the contract suite.
func TestStoreImporters(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/shoji-rbi/shoji/"
	allowed := map[string]bool{
		mod + "broker": true, mod + "cmd/shoji": true, mod + "broker/bench": true,
		mod + "broker/store/storetest": true,
	}
	importers := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, ": ")
		for _, d := range strings.Fields(list) {
			if d != mod+"broker/store" || pkg == mod+"broker/store" {
				continue
			}
			importers++
			if !allowed[pkg] {
				t.Errorf("%s imports broker/store: a domain package declares the storage it uses, and the backend implements it", pkg)
			}
		}
	}
	if importers == 0 {
		t.Fatal("go list found no importer of broker/store; the check checks nothing")
	}
}
