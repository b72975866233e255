package chrome

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/isolation"
)

func TestBenchmarkLaunch(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "p")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	v := isolation.Viewport{Width: 1280, Height: 720, DPR: 1}
	got, err := BenchmarkLaunch(dir, "127.0.0.1:3128", v)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ProfileRoot: root}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	want := Flags(cfg, isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v}, dir)
	if diff := cmp.Diff(want, got.Flags); diff != "" {
		t.Errorf("flags differ from a default Launcher's (-want +got):\n%s", diff)
	}
	for _, f := range []string{"--proxy-server=http://127.0.0.1:3128", "--window-size=1280,720", "--user-data-dir=" + dir} {
		if !slices.Contains(got.Flags, f) {
			t.Errorf("flags lack %s", f)
		}
	}
	if got.Sandbox != *cfg.Sandbox {
		t.Errorf("Sandbox = %v, want %v", got.Sandbox, *cfg.Sandbox)
	}
	if !slices.Contains(got.Env, "HOME="+dir) {
		t.Errorf("env %v: HOME is not the profile", got.Env)
	}
	if _, err := os.Stat(filepath.Join(dir, "Default", "Preferences")); err != nil {
		t.Errorf("profile preferences: %v", err)
	}
	if _, err := BenchmarkLaunch(dir, "127.0.0.1:3128", isolation.Viewport{Width: 10, Height: 10, DPR: 1}); err == nil {
		t.Error("a 10×10 viewport was accepted")
	}
}

func TestBenchmarkScreencast(t *testing.T) {
	p := BenchmarkScreencast(isolation.Viewport{Width: 1280, Height: 720, DPR: 1.5}, DefaultScreencast())
	if p.Format != "jpeg" || p.Quality == nil || *p.Quality != DefaultJPEGQuality || p.EveryNthFrame != 1 ||
		p.MaxWidth != 1920 || p.MaxHeight != 1080 || p.MaxFramesInFlight != DefaultMaxFramesInFlight ||
		p.SendLastFrame == nil || !*p.SendLastFrame {
		t.Errorf("BenchmarkScreencast = %+v", p)
	}
	p = BenchmarkScreencast(isolation.Viewport{Width: 400, Height: 300, DPR: 1}, Screencast{Quality: 40, MaxFramesInFlight: 3})
	if *p.Quality != 40 || p.MaxFramesInFlight != 3 || *p.SendLastFrame {
		t.Errorf("BenchmarkScreencast with settings = %+v", p)
	}
}
