package chrome

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/isolation"
)

func TestPrepareProfile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "p")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ProfileRoot: root}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	v := isolation.Viewport{Width: 1280, Height: 720, DPR: 1}
	opts := isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v}
	got, err := cfg.PrepareProfile(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Flags(cfg, opts, dir), got.Flags); diff != "" {
		t.Errorf("flags differ from Flags (-want +got):\n%s", diff)
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
}

func TestPrepareProfileRefusesBadOptions(t *testing.T) {
	cfg := Config{ProfileRoot: t.TempDir()}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	good := isolation.Viewport{Width: 1280, Height: 720, DPR: 1}
	for _, tc := range []struct {
		name string
		opts isolation.LaunchOptions
	}{
		{"tiny viewport", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: isolation.Viewport{Width: 10, Height: 10, DPR: 1}}},
		{"no proxy", isolation.LaunchOptions{Viewport: good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := cfg.PrepareProfile(dir, tc.opts)
			if !errors.Is(err, ErrLaunchOptions) {
				t.Errorf("err = %v, want ErrLaunchOptions", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("refused options left %d entries in the profile", len(entries))
			}
		})
	}
}

func TestScreencastParams(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name          string
		cfg           Config
		v             isolation.Viewport
		q             int
		width, height int64
		inFlight      int64
		last          bool
	}{
		{"defaults", Config{}, isolation.Viewport{Width: 1280, Height: 720, DPR: 1.5}, DefaultJPEGQuality, 1920, 1080, DefaultMaxFramesInFlight, true},
		{"set", Config{MaxFramesInFlight: 3, SendLastFrame: &off}, isolation.Viewport{Width: 400, Height: 300, DPR: 1}, 40, 400, 300, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ProfileRoot = t.TempDir()
			if err := tc.cfg.CheckAndSetDefaults(); err != nil {
				t.Fatal(err)
			}
			p := tc.cfg.ScreencastParams(tc.v, tc.q)
			if p.Format != "jpeg" || p.Quality == nil || *p.Quality != int64(tc.q) || p.EveryNthFrame != 1 ||
				p.MaxWidth != tc.width || p.MaxHeight != tc.height || p.MaxFramesInFlight != tc.inFlight ||
				p.SendLastFrame == nil || *p.SendLastFrame != tc.last {
				t.Errorf("ScreencastParams = %+v", p)
			}
		})
	}
}
