//go:build !crashpoints

package crashpoint

import (
	"os"
	"os/exec"
	"testing"
)

// TestHitWithoutTagDoesNothing: a binary built without the tag ignores the
// environment variable.
func TestHitWithoutTagDoesNothing(t *testing.T) {
	t.Setenv(EnvVar, "a")
	if Enabled {
		t.Fatal("Enabled without the crashpoints tag")
	}
	Hit("a") // returns
}

// TestTaggedBuild runs this package's tests built with the crashpoints tag,
// so that the killing version is tested by every test run.
func TestTaggedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package again")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("the go tool is needed to build with -tags crashpoints: %v", err)
		}
		t.Skipf("no go tool: %v", err)
	}
	cmd := exec.Command(goTool, "test", "-count=1", "-tags", "crashpoints", "-run", "^TestHit", ".")
	cmd.Env = append(os.Environ(), EnvVar+"=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -tags crashpoints: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
