package chrome

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/shoji-rbi/shoji/isolation"
)

// ErrUnsafeFlag is wrapped by Config.CheckAndSetDefaults when ExtraFlags
// would weaken the browser's isolation or take over a flag that this package
// owns.
var ErrUnsafeFlag = errors.New("unsafe Chromium flag")

// disabledFeatures are the Chromium features that are turned off in every
// browser. Chromium honours only the last --disable-features flag, so Flags
// merges the ones from Config.ExtraFlags into this list.
var disabledFeatures = []string{
	// No form data goes to Google's autofill servers.
	"AutofillServerCommunication",
	// No page hints are fetched from Google.
	"OptimizationHints",
	// No Cast discovery on the network.
	"MediaRouter",
	"DialMediaRouteProvider",
	// A speculative navigation request that cold-starts a service worker and
	// that no DevTools session sees.
	"ServiceWorkerAutoPreload",
	// No page text goes to a translation service.
	"Translate",
	// No time queries to Google.
	"NetworkTimeServiceQuerying",
	// No background calls for privacy sandbox and interest groups.
	"InterestFeedContentSuggestions",
	"PrivacySandboxSettings4",
}

// ownedFlags are the flags that Flags sets and that ExtraFlags must not
// override, because they decide where the browser's traffic goes, where its
// state lives, or how it is reached.
var ownedFlags = []string{
	"headless",
	"user-data-dir",
	"proxy-server",
	"proxy-pac-url",
	"proxy-auto-detect",
	"no-proxy-server",
	"proxy-bypass-list",
	"host-resolver-rules",
	"remote-debugging-port",
	"remote-debugging-address",
	"remote-debugging-pipe",
	"remote-allow-origins",
	"no-sandbox",
	"force-device-scale-factor",
	"disable-quic",
	"webrtc-ip-handling-policy",
	"force-webrtc-ip-handling-policy",
	"gaia-url",
	"component-updater",
}

// unsafeFlags weaken isolation and are refused in ExtraFlags.
var unsafeFlags = []string{
	"disable-web-security",
	"disable-site-isolation-trials",
	"disable-site-isolation-for-policy",
	"disable-popup-blocking",
	"ignore-certificate-errors",
	"ignore-certificate-errors-spki-list",
	"allow-running-insecure-content",
	"enable-quic",
	"load-extension",
	"enable-remote-extensions",
	"single-process",
	"in-process-gpu",
	"disable-setuid-sandbox",
	"disable-gpu-sandbox",
	"no-zygote",
}

// unsafeFeatures must never appear in --disable-features: they are site
// isolation.
var unsafeFeatures = []string{"site-per-process", "siteperprocess", "isolateorigins", "isolate-origins"}

// Flags returns the command line flags of one browser, without the program
// path, in the order Chromium gets them. profileDir is the browser's fresh
// profile directory. cfg must have passed CheckAndSetDefaults and opts must
// have a valid ProxyAddr.
//
// The list is built here rather than taken from chromedp, whose defaults turn
// off site isolation and popup blocking. chromedp adds --remote-debugging-pipe
// and the first tab's about:blank after these.
func Flags(cfg Config, opts isolation.LaunchOptions, profileDir string) []string {
	proxyHost, _, _ := net.SplitHostPort(opts.ProxyAddr)
	flags := []string{
		"--headless=new",
		"--user-data-dir=" + profileDir,
		// The egress proxy is the only way out. Loopback goes through it too,
		// so a page cannot reach services on the broker's host.
		"--proxy-server=http://" + opts.ProxyAddr,
		"--proxy-bypass-list=<-loopback>",
		// Chromium resolves no name itself: the proxy does. Only the proxy's
		// own name, if it has one, may be resolved.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE " + proxyHost,
		// QUIC is UDP, which an HTTP proxy does not carry.
		"--disable-quic",
		// WebRTC may not send UDP around the proxy. Full Chromium reads the
		// first flag, headless builds the second.
		"--webrtc-ip-handling-policy=disable_non_proxied_udp",
		"--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
	}
	flags = append(flags, QuietFlags()...)
	flags = append(flags,
		// Nobody can answer a permission prompt in a headless browser.
		"--deny-permission-prompts",
		"--mute-audio",
		"--hide-scrollbars",
		// Scrolls jump rather than animate: a keyboard scroll (PageDown,
		// arrows, space) otherwise passes through frames at fractional
		// offsets, none of which the broker can send as a copy of the
		// viewer's canvas (wheel.go); the picture after it is the same.
		// Wheel scrolling by DevTools input does not animate either way
		// (Chromium 156, TestWheelScrollSteps).
		"--disable-smooth-scrolling",
		// Software compositing: there is no GPU, and SwiftShader's JIT is not
		// turned on.
		"--disable-gpu",
		"--window-size="+strconv.Itoa(opts.Viewport.Width)+","+strconv.Itoa(opts.Viewport.Height),
		// Frames have the pixels of the real device scale factor; the
		// emulated one only changes how the page renders. See
		// Config.DeviceScaleFactor.
		"--force-device-scale-factor="+strconv.FormatFloat(deviceScaleFactor(cfg, opts), 'f', -1, 64),
	)
	if !*cfg.Sandbox {
		flags = append(flags, "--no-sandbox")
	}

	features := slices.Clone(disabledFeatures)
	for _, f := range cfg.ExtraFlags {
		name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if name == "disable-features" {
			for v := range strings.SplitSeq(value, ",") {
				if v = strings.TrimSpace(v); v != "" && !slices.Contains(features, v) {
					features = append(features, v)
				}
			}
			continue
		}
		flags = append(flags, f)
	}
	return append(flags, "--disable-features="+strings.Join(features, ","))
}

// QuietFlags are the flags that keep Chromium from any traffic of its own
// (updates, sync, reporting, pings) and from the host's keyring. Every
// browser shoji starts has them, and so should any Chromium that stands
// beside one, such as the benchmark's peer. Each call returns a new slice.
//
// Two of Chromium's own services go on whatever flag is set (Chromium 156,
// observed through the egress proxy in TestBackgroundRequests): the account
// check (POST accounts.google.com/ListAccounts, retried with backoff, from
// the sign-in code even with --allow-browser-signin=false) and an on-demand
// update check of the optimization guide's model manifest (POST
// update.googleapis.com/service/update2/json, even with
// --disable-component-update). --gaia-url and --component-updater's
// url-source point them at isolation.BackgroundDomain instead, a name that
// is no host, which the egress proxy refuses as the browser's own request;
// a page that asks for accounts.google.com is still refused and recorded
// as usual.
func QuietFlags() []string {
	return []string{
		"--gaia-url=http://accounts." + isolation.BackgroundDomain,
		"--component-updater=url-source=http://update." + isolation.BackgroundDomain + "/service/update2/json",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-default-apps",
		"--disable-extensions",
		"--disable-breakpad",
		"--disable-domain-reliability",
		"--disable-client-side-phishing-detection",
		"--metrics-recording-only",
		"--no-pings",
		"--no-first-run",
		"--no-default-browser-check",
		"--password-store=basic",
		"--use-mock-keychain",
	}
}

// deviceScaleFactor is the real device scale factor of a browser.
func deviceScaleFactor(cfg Config, opts isolation.LaunchOptions) float64 {
	if cfg.DeviceScaleFactor != 0 {
		return cfg.DeviceScaleFactor
	}
	return opts.Viewport.DPR
}

// checkExtraFlags refuses extra flags that are malformed, that override a
// flag this package owns, or that weaken isolation.
func checkExtraFlags(extra []string) error {
	for i, f := range extra {
		if !strings.HasPrefix(f, "--") || len(f) < 3 {
			return fmt.Errorf("ExtraFlags[%d] %q: not a --flag", i, f)
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		name = strings.ToLower(name)
		switch {
		case slices.Contains(ownedFlags, name):
			return fmt.Errorf("ExtraFlags[%d] %q: %w: set by this package", i, f, ErrUnsafeFlag)
		case slices.Contains(unsafeFlags, name):
			return fmt.Errorf("ExtraFlags[%d] %q: %w: weakens isolation", i, f, ErrUnsafeFlag)
		case name == "disable-features":
			for v := range strings.SplitSeq(value, ",") {
				if slices.Contains(unsafeFeatures, strings.ToLower(strings.TrimSpace(v))) {
					return fmt.Errorf("ExtraFlags[%d] %q: %w: turns off site isolation", i, f, ErrUnsafeFlag)
				}
			}
		}
	}
	return nil
}

// flagArgs splits one "--name=value" or "--name" flag for chromedp.Flag.
func flagArgs(f string) (name string, value any) {
	name, v, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
	if !ok {
		return name, true
	}
	return name, v
}
