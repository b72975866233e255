package broker

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportFences keeps the dependency direction cmd → broker → isolation:
// isolation never imports broker, the viewer stream never imports
// chromedp (it talks to browsers only through the isolation interface),
// and internal packages, which both sides use, import neither.
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
