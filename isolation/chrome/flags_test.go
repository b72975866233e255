package chrome

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/isolation"
)

func TestFlags(t *testing.T) {
	off, on := false, true
	opts := isolation.LaunchOptions{
		ProxyAddr: "10.0.0.5:3128",
		Viewport:  isolation.Viewport{Width: 800, Height: 600, DPR: 1.5},
	}
	for _, tc := range []struct {
		name     string
		cfg      Config
		want     []string
		wantNot  []string
		features []string
	}{
		{
			name: "sandbox off",
			cfg:  Config{Sandbox: &off},
			want: []string{
				"--headless=new",
				"--user-data-dir=/p/s-1",
				"--proxy-server=http://10.0.0.5:3128",
				"--proxy-bypass-list=<-loopback>",
				"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 10.0.0.5",
				"--disable-quic",
				"--webrtc-ip-handling-policy=disable_non_proxied_udp",
				"--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
				"--disable-background-networking",
				"--disable-component-update",
				"--disable-sync",
				"--no-first-run",
				"--disable-extensions",
				"--gaia-url=http://accounts.background.shoji.invalid",
				"--component-updater=url-source=http://update.background.shoji.invalid/service/update2/json",
				"--force-device-scale-factor=1.5",
				"--disable-smooth-scrolling",
				"--no-sandbox",
			},
			features: []string{"AutofillServerCommunication", "OptimizationHints", "MediaRouter", "ServiceWorkerAutoPreload", "Translate"},
		},
		{
			name:    "sandbox on",
			cfg:     Config{Sandbox: &on, DeviceScaleFactor: 2},
			want:    []string{"--force-device-scale-factor=2"},
			wantNot: []string{"--no-sandbox"},
		},
		{
			name:     "extra flags",
			cfg:      Config{Sandbox: &off, ExtraFlags: []string{"--lang=ja", "--disable-features=Foo,Translate"}},
			want:     []string{"--lang=ja"},
			features: []string{"Foo", "Translate", "MediaRouter"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := Flags(tc.cfg, opts, "/p/s-1")
			for _, w := range tc.want {
				if !slices.Contains(flags, w) {
					t.Errorf("missing %s in %q", w, flags)
				}
			}
			for _, w := range tc.wantNot {
				if slices.Contains(flags, w) {
					t.Errorf("unexpected %s", w)
				}
			}
			var disabled []string
			for _, f := range flags {
				name, value, _ := strings.Cut(f, "=")
				switch name {
				case "--disable-features":
					disabled = append(disabled, value)
				case "--disable-popup-blocking", "--disable-site-isolation-trials", "--disable-web-security",
					"--remote-debugging-port", "--remote-allow-origins", "--enable-automation", "--single-process":
					t.Errorf("flag %s weakens isolation", f)
				}
			}
			if len(disabled) != 1 {
				t.Fatalf("%d --disable-features flags; Chromium honours only the last", len(disabled))
			}
			features := strings.Split(disabled[0], ",")
			for _, f := range features {
				if lf := strings.ToLower(f); strings.Contains(lf, "siteperprocess") || strings.Contains(lf, "site-per-process") || strings.Contains(lf, "isolateorigins") {
					t.Errorf("site isolation disabled: %s", f)
				}
			}
			for _, f := range tc.features {
				if !slices.Contains(features, f) {
					t.Errorf("feature %s not disabled in %s", f, disabled[0])
				}
			}
		})
	}
}

func TestCheckAndSetDefaults(t *testing.T) {
	root := os.Geteuid() == 0
	on := true
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{ProfileRoot: "/tmp/x"}, ""},
		{"no profile root", Config{}, "ProfileRoot"},
		{"relative profile root", Config{ProfileRoot: "x"}, "ProfileRoot"},
		{"quality", Config{ProfileRoot: "/tmp/x", JPEGQuality: 101}, "JPEGQuality"},
		{"frames in flight", Config{ProfileRoot: "/tmp/x", MaxFramesInFlight: -1}, "MaxFramesInFlight"},
		{"scale", Config{ProfileRoot: "/tmp/x", DeviceScaleFactor: 9}, "DeviceScaleFactor"},
		{"timeout", Config{ProfileRoot: "/tmp/x", DialogTimeout: -1}, "DialogTimeout"},
		{"not a flag", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"http://x"}}, "ExtraFlags[0]"},
		{"owned flag", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--lang=ja", "--proxy-server=direct://"}}, "ExtraFlags[1]"},
		{"background services' URL", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--gaia-url=https://accounts.google.com"}}, "set by this package"},
		{"component updater's URL", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--component-updater=url-source=https://x"}}, "set by this package"},
		{"unsafe flag", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--disable-web-security"}}, "weakens isolation"},
		{"popups", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--disable-popup-blocking"}}, "weakens isolation"},
		{"site isolation", Config{ProfileRoot: "/tmp/x", ExtraFlags: []string{"--disable-features=Foo,IsolateOrigins"}}, "site isolation"},
		{"sandbox as root", Config{ProfileRoot: "/tmp/x", Sandbox: &on}, map[bool]string{true: "Sandbox", false: ""}[root]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.CheckAndSetDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.cfg.ExecPath != DefaultExecPath || tc.cfg.JPEGQuality != DefaultJPEGQuality ||
					tc.cfg.DialogTimeout != DefaultDialogTimeout || tc.cfg.Sandbox == nil || tc.cfg.Logger == nil {
					t.Errorf("defaults not set: %+v", tc.cfg)
				}
				if tc.name == "defaults" && *tc.cfg.Sandbox == root {
					t.Errorf("default sandbox %v when root is %v", *tc.cfg.Sandbox, root)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestCheckLaunchOptions(t *testing.T) {
	v := isolation.Viewport{Width: 800, Height: 600, DPR: 1}
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts isolation.LaunchOptions
		ok   bool
	}{
		{"ok", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v}, true},
		{"no proxy", isolation.LaunchOptions{Viewport: v}, false},
		{"proxy without port", isolation.LaunchOptions{ProxyAddr: "127.0.0.1", Viewport: v}, false},
		{"tiny viewport", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: isolation.Viewport{Width: 10, Height: 600, DPR: 1}}, false},
		{"no dpr", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: isolation.Viewport{Width: 800, Height: 600}}, false},
		{"downloads", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v, DownloadDir: dir, MaxDownloadBytes: 1 << 20}, true},
		{"relative download dir", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v, DownloadDir: "downloads"}, false},
		{"missing download dir", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v, DownloadDir: filepath.Join(dir, "missing")}, false},
		{"download dir is a file", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v, DownloadDir: file}, false},
		{"negative cap", isolation.LaunchOptions{ProxyAddr: "127.0.0.1:3128", Viewport: v, MaxDownloadBytes: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLaunchOptions(tc.opts)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrLaunchOptions) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
