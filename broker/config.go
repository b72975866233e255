package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// Duration is a time.Duration written as "15m" or "12h" in the config file.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"15m\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q: use a form like \"15m\" or \"12h\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// EgressConfig is the egress proxy's configuration, with the static allows
// that form the site policy's read-only layer.
type EgressConfig struct {
	// Allow lists the hosts the remote browsers may reach in every
	// profile, whatever the admins' site policy says, unless a host is
	// blocked everywhere: "example.jp", "example.jp:8443" or
	// "*.example.jp". The site policy shows them as its read-only layer
	// (rule "config file egress.allow: ENTRY"); the admin pages and
	// `shoji allow` cannot change them. Empty means none (in demo mode,
	// the demo site is allowed the same way).
	Allow []string `yaml:"allow"`
	// AllowAddrs lists exact non-public "ip:port" addresses that may be
	// reached, e.g. an intranet guideline server. Never a range.
	AllowAddrs []string `yaml:"allow_addrs"`
	// Hosts maps names to addresses without DNS, e.g. for a site on this
	// host: {"guidelines.hospital.local": "10.1.2.3"}.
	Hosts map[string]string `yaml:"hosts"`
	// DNS is the "ip:port" of the DNS server the egress proxy asks. Empty
	// means the system's resolver.
	DNS string `yaml:"dns"`
	// Upstream is the hospital's (or a gateway centre's) forward proxy,
	// "http://host:port", that all allowed traffic goes through. Empty
	// means direct.
	Upstream string `yaml:"upstream"`
}

// TransferConfig configures the file-transfer channel (docs/transfer.md).
type TransferConfig struct {
	// Clamd is the ClamAV daemon that scans every file:
	// "unix:/run/clamav/clamd.ctl" or "tcp:host:port". Empty means
	// scanning is not configured (the ledger says so). When it is
	// configured and the daemon is down or slow, files are held.
	Clamd string `yaml:"clamd"`
	// ScanTimeout bounds one scan; a file whose scan takes longer is held.
	ScanTimeout Duration `yaml:"scan_timeout"`
	// Retention is how long quarantined files are kept before they are
	// deleted; their ledger and audit records stay (XFER-10).
	Retention Duration `yaml:"retention"`
}

// DefaultIdleFrameInterval is stream.idle_frame_interval's default: a
// spinner on a still page runs at 10 frames a second (docs/benchmarks.md,
// "Frame pacing").
const DefaultIdleFrameInterval = 100 * time.Millisecond

// StreamConfig sets the picture the viewer gets (docs/benchmarks.md
// measures the trade-offs).
type StreamConfig struct {
	// JPEGQuality is the screencast's JPEG quality while the page moves,
	// 1–100.
	JPEGQuality int `yaml:"jpeg_quality"`
	// SharpQuality is the JPEG quality of the one refresh sent when the
	// page has settled, so text is sharp; 1–100, or -1 for no refresh.
	SharpQuality int `yaml:"sharp_quality"`
	// SettleDelay is how long a page shows no change before it gets its
	// refresh.
	SettleDelay Duration `yaml:"settle_delay"`
	// MaxFramesInFlight is how many frames Chromium sends before the
	// broker acknowledges them, 1–16.
	MaxFramesInFlight int `yaml:"max_frames_in_flight"`
	// SendLastFrame has Chromium send the newest frame it held back while
	// frames were in flight, so the last change of a page is not lost.
	SendLastFrame bool `yaml:"send_last_frame"`
	// PartialFrames sends a viewer only the rectangles of the screen that
	// changed, as lossless crops of the screencast's JPEG, when that is
	// smaller than the whole frame (docs/protocol.md, "Partial frames");
	// false sends every frame whole.
	PartialFrames bool `yaml:"partial_frames"`
	// IdleFrameInterval paces the browser to at most one frame an
	// interval while only a small part of the screen changes (a spinner)
	// and the clinician does nothing to the page; input or a large change
	// lifts it at once (broker/stream/pace.go). 0 turns pacing off;
	// otherwise 20ms–2s.
	IdleFrameInterval Duration `yaml:"idle_frame_interval"`
}

// AuditConfig configures the audit trail (docs/audit.md).
type AuditConfig struct {
	// Syslog forwards every record to a SIEM: "host:port" of an RFC 5424
	// collector over TCP. Empty means no forwarding.
	Syslog string `yaml:"syslog"`
	// MaxFileSize rotates the audit file past this many MiB.
	MaxFileSize int `yaml:"max_file_mib"`
	// CheckpointKey is the path of the Ed25519 private key (PEM, PKCS #8,
	// from `shoji audit keygen`) that signs the trail's checkpoints. It
	// must be outside the data directory and readable by the broker's
	// account only. Empty means no checkpoints: the end of the trail is
	// then protected only by the syslog copy (a warning at start). In
	// demo mode, empty means DATA.checkpoint.key beside the data
	// directory, made on first start.
	CheckpointKey string `yaml:"checkpoint_key"`
	// CheckpointEvery is the most records between two checkpoints.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval is the longest a record waits for a checkpoint.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// MetricsConfig says who may read /metrics (docs/health.md). A request is
// served when the client's address is in Allow, or when it carries the
// bearer token of BearerTokenFile; any other gets 403 (no token file) or
// 401. The client's address is the TCP peer: X-Forwarded-For and the like
// are not believed.
type MetricsConfig struct {
	// Allow lists the client addresses that may read /metrics without a
	// token: CIDR ranges ("10.30.0.0/16") or single addresses
	// ("192.0.2.7"). The default is loopback only; an empty list allows no
	// address (then only the token, if any, opens /metrics).
	Allow []string `yaml:"allow"`
	// BearerTokenFile is a file holding the token a scraper sends as
	// "Authorization: Bearer <token>", read at start: one line of at least
	// 16 visible characters. Other users (mode & 0007) may not have any
	// access to it. Empty means no token opens /metrics.
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// Config is the broker's configuration. Zero values are filled in by
// DefaultConfig; the file, SHOJI_* environment variables and flags override
// it in that order.
type Config struct {
	// Listen is the address the broker serves on.
	Listen string `yaml:"listen"`
	// PublicURL is the URL clinicians open; the viewer WebSocket's Origin
	// must match it. Empty means derived from Listen.
	PublicURL string `yaml:"public_url"`
	// Data is the directory for the store, keys and profiles.
	Data string `yaml:"data"`
	// ConfigFile is the file LoadConfigFile read, if any; no departmental
	// destination may be in its directory.
	ConfigFile string `yaml:"-"`
	// TLSCert and TLSKey enable HTTPS. Required unless Listen is loopback
	// or InsecureHTTP is set.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// InsecureHTTP allows plain HTTP on a non-loopback address. Never in
	// production.
	InsecureHTTP bool `yaml:"insecure_http"`
	// Chromium is the browser binary, not Debian's /usr/bin wrapper.
	Chromium string `yaml:"chromium"`
	// Sandbox keeps Chromium's sandbox on. Nil means on unless running as
	// root (where Chromium refuses to start with it).
	Sandbox *bool `yaml:"sandbox"`
	// IdleTimeout ends a session without clinician input.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxLifetime ends a session however busy.
	MaxLifetime Duration `yaml:"max_lifetime"`
	// MaxSessions is the number of browsers this node runs at most,
	// pooled browsers included.
	MaxSessions int `yaml:"max_sessions"`
	// PoolSize is the number of blank browsers kept started for the next
	// users who log in, so that login does not wait for Chromium. A
	// pooled browser belongs to nobody and reaches nothing until a user
	// claims it; it is never shared and never returns to the pool. Zero
	// turns the pool off.
	PoolSize int `yaml:"pool_size"`
	// PoolMaxAge closes and replaces a pooled browser left unclaimed that
	// long.
	PoolMaxAge Duration `yaml:"pool_max_age"`
	// MinFreeMemoryMiB refuses new sessions (and pooled browsers) while
	// the node has less memory available: MemAvailable in /proc/meminfo,
	// or the room under the broker's cgroup memory limit when that is
	// less (session.ProcStats). Zero turns the check off.
	MinFreeMemoryMiB int `yaml:"min_free_memory_mib"`
	// MaxLoadPerCore refuses new sessions (and pooled browsers) while the
	// load average over the last minute divided by the CPUs (fewer under
	// a cgroup CPU quota) is above it.
	// Zero (the default) turns the check off: the load average counts
	// every runnable process on the machine, so it is only a fair measure
	// of headroom on a node that runs nothing but shoji.
	MaxLoadPerCore float64 `yaml:"max_load_per_core"`
	// LoginBanner is shown on the login page until an admin sets one in
	// the admin page.
	LoginBanner string `yaml:"login_banner"`
	// LockoutThreshold failed logins within LockoutWindow lock an account.
	LockoutThreshold int      `yaml:"lockout_threshold"`
	LockoutWindow    Duration `yaml:"lockout_window"`
	// StartURL is the page a new browser opens. Empty means the demo site
	// in demo mode, else about:blank.
	StartURL string `yaml:"start_url"`
	// Egress is the static allowlist.
	Egress EgressConfig `yaml:"egress"`
	// Demo serves the built-in demo site on a loopback port and allows it.
	Demo bool `yaml:"demo"`
	// NetNS puts each browser in a network namespace of its own whose only
	// way out is its egress listener (isolation/netns). Linux and root
	// only; the broker refuses to start without them. False (the default)
	// runs browsers in the broker's namespace.
	NetNS bool `yaml:"netns"`
	// TrustedCAs are PEM files of certificate authorities the remote
	// browsers trust besides the system's roots: the hospital's own CA
	// for an intranet site an admin allowed. Needs certutil
	// (libnss3-tools).
	TrustedCAs []string `yaml:"trusted_cas"`
	// Transfer configures downloads, uploads, scanning and retention.
	Transfer TransferConfig `yaml:"transfer"`
	// Audit configures the audit trail.
	Audit AuditConfig `yaml:"audit"`
	// Stream sets the screencast's quality.
	Stream StreamConfig `yaml:"stream"`
	// Metrics says who may read /metrics.
	Metrics MetricsConfig `yaml:"metrics"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		Data:             "data",
		Chromium:         "/usr/lib/chromium/chromium",
		IdleTimeout:      Duration(15 * time.Minute),
		MaxLifetime:      Duration(12 * time.Hour),
		MaxSessions:      20,
		PoolMaxAge:       Duration(30 * time.Minute),
		MinFreeMemoryMiB: 512,
		LockoutThreshold: 5,
		LockoutWindow:    Duration(15 * time.Minute),
		Transfer: TransferConfig{
			ScanTimeout: Duration(2 * time.Minute),
			Retention:   Duration(24 * time.Hour),
		},
		Audit: AuditConfig{MaxFileSize: 64, CheckpointEvery: 1000, CheckpointInterval: Duration(time.Minute)},
		Stream: StreamConfig{
			JPEGQuality:  chrome.DefaultJPEGQuality,
			SharpQuality: chrome.DefaultSharpQuality,
			SettleDelay:  Duration(chrome.DefaultSettleDelay),

			MaxFramesInFlight: chrome.DefaultMaxFramesInFlight,
			SendLastFrame:     true,
			PartialFrames:     true,
			IdleFrameInterval: Duration(DefaultIdleFrameInterval),
		},
		Metrics: MetricsConfig{Allow: []string{"127.0.0.0/8", "::1/128"}},
		LoginBanner: "This system is for authorised hospital staff. Browsing runs in an isolated " +
			"remote browser; navigation, blocked requests and file transfers are recorded.",
	}
}

// LoadConfigFile reads a YAML config file on top of c. Unknown keys are an
// error naming the key and its line.
func (c *Config) LoadConfigFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			c.ConfigFile = path
			return nil // an empty file sets nothing else
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %s", path, nameKeys(err, &root))
	}
	c.ConfigFile = path
	return nil
}

// nameKeys rewrites yaml's "line N: ..." errors to name the key on that line.
func nameKeys(err error, root *yaml.Node) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &line); scanErr == nil {
			if key := keyAtLine(root, line, ""); key != "" {
				m = "key " + key + ": " + m
			}
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// keyAtLine returns the dotted path of the mapping key on line, or "".
func keyAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, prefix); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			if k.Line == line {
				return path
			}
			if sub := keyAtLine(v, line, path); sub != "" {
				return sub
			}
		}
	}
	return ""
}

// TLS reports whether the broker serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" || c.TLSKey != "" }

// Validate checks the configuration and fills in PublicURL. Errors name the
// field. An unsafe configuration (plain HTTP beyond loopback) is refused
// unless InsecureHTTP says it is deliberate.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("config: listen is empty")
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("config: listen %q: want host:port", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("config: listen %q: bad port", c.Listen)
	}
	if c.Data == "" {
		return errors.New("config: data is empty")
	}
	abs, err := filepath.Abs(c.Data)
	if err != nil {
		return fmt.Errorf("config: data %q: %w", c.Data, err)
	}
	c.Data = abs
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: tls_cert and tls_key must be given together")
	}
	if !c.TLS() && !isLoopbackHost(host) && !c.InsecureHTTP {
		return fmt.Errorf("config: listen %q is not loopback and no tls_cert/tls_key is set; "+
			"refusing to serve clinicians over plain HTTP (use insecure_http only behind a TLS proxy)", c.Listen)
	}
	if c.Chromium == "" {
		return errors.New("config: chromium is empty")
	}
	if c.IdleTimeout <= 0 {
		return errors.New("config: idle_timeout must be positive")
	}
	if c.MaxLifetime <= 0 {
		return errors.New("config: max_lifetime must be positive")
	}
	if c.MaxSessions <= 0 {
		return errors.New("config: max_sessions must be positive")
	}
	if c.PoolSize < 0 || c.PoolSize > c.MaxSessions {
		return fmt.Errorf("config: pool_size %d: must be between 0 and max_sessions (%d)", c.PoolSize, c.MaxSessions)
	}
	if c.PoolMaxAge < Duration(time.Minute) {
		return fmt.Errorf("config: pool_max_age %s: must be at least 1m", time.Duration(c.PoolMaxAge))
	}
	if q := c.Stream.JPEGQuality; q < 1 || q > 100 {
		return fmt.Errorf("config: stream.jpeg_quality %d: must be between 1 and 100", q)
	}
	if q := c.Stream.SharpQuality; q != -1 && (q < 1 || q > 100) {
		return fmt.Errorf("config: stream.sharp_quality %d: must be between 1 and 100, or -1 for no refresh", q)
	}
	if d := time.Duration(c.Stream.SettleDelay); d < 50*time.Millisecond || d > time.Minute {
		return fmt.Errorf("config: stream.settle_delay %s: must be between 50ms and 1m", d)
	}
	if n := c.Stream.MaxFramesInFlight; n < 1 || n > 16 {
		return fmt.Errorf("config: stream.max_frames_in_flight %d: must be between 1 and 16", n)
	}
	if d := time.Duration(c.Stream.IdleFrameInterval); d != 0 && (d < 20*time.Millisecond || d > 2*time.Second) {
		return fmt.Errorf("config: stream.idle_frame_interval %s: must be 0 (no pacing) or between 20ms and 2s", d)
	}
	if c.MinFreeMemoryMiB < 0 {
		return fmt.Errorf("config: min_free_memory_mib %d: must not be negative (0 turns the check off)", c.MinFreeMemoryMiB)
	}
	if c.MaxLoadPerCore < 0 || math.IsNaN(c.MaxLoadPerCore) || math.IsInf(c.MaxLoadPerCore, 0) {
		return fmt.Errorf("config: max_load_per_core %v: must be a number not below 0 (0 turns the check off)", c.MaxLoadPerCore)
	}
	if c.LockoutThreshold <= 0 {
		return errors.New("config: lockout_threshold must be positive")
	}
	if c.LockoutWindow <= 0 {
		return errors.New("config: lockout_window must be positive")
	}
	for i, a := range c.Egress.AllowAddrs {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("config: egress.allow_addrs[%d] %q: want ip:port", i, a)
		}
	}
	if c.Egress.DNS != "" {
		if _, err := netip.ParseAddrPort(c.Egress.DNS); err != nil {
			return fmt.Errorf("config: egress.dns %q: want ip:port", c.Egress.DNS)
		}
	}
	if c.Egress.Upstream != "" {
		u, err := url.Parse(c.Egress.Upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("config: egress.upstream %q: want http://host:port", c.Egress.Upstream)
		}
	}
	for name, a := range c.Egress.Hosts {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("config: egress.hosts[%q] = %q: want an IP address", name, a)
		}
	}
	if cl := c.Transfer.Clamd; cl != "" && !strings.HasPrefix(cl, "unix:/") && !strings.HasPrefix(cl, "tcp:") {
		return fmt.Errorf("config: transfer.clamd %q: want unix:/path/to/clamd.sock or tcp:host:port", cl)
	}
	if c.Transfer.ScanTimeout <= 0 {
		return fmt.Errorf("config: transfer.scan_timeout %s: must be positive", time.Duration(c.Transfer.ScanTimeout))
	}
	if c.Transfer.Retention < Duration(time.Minute) {
		return fmt.Errorf("config: transfer.retention %s: must be at least 1m", time.Duration(c.Transfer.Retention))
	}
	if c.Audit.Syslog != "" {
		if _, _, err := net.SplitHostPort(c.Audit.Syslog); err != nil {
			return fmt.Errorf("config: audit.syslog %q: want host:port", c.Audit.Syslog)
		}
	}
	if c.Audit.MaxFileSize < 1 {
		return fmt.Errorf("config: audit.max_file_mib %d: must be at least 1", c.Audit.MaxFileSize)
	}
	if n := c.Audit.CheckpointEvery; n < 1 || n > 1_000_000 {
		return fmt.Errorf("config: audit.checkpoint_every %d: must be between 1 and 1000000", n)
	}
	if d := time.Duration(c.Audit.CheckpointInterval); d < time.Second || d > 24*time.Hour {
		return fmt.Errorf("config: audit.checkpoint_interval %s: must be between 1s and 24h", d)
	}
	if c.Audit.CheckpointKey != "" {
		abs, err := filepath.Abs(c.Audit.CheckpointKey)
		if err != nil {
			return fmt.Errorf("config: audit.checkpoint_key %q: %w", c.Audit.CheckpointKey, err)
		}
		c.Audit.CheckpointKey = abs
		if auditKeyWithin(abs, c.Data) {
			return fmt.Errorf("config: audit.checkpoint_key %s is inside the data directory %s: keep the key where "+
				"whoever can write the data directory cannot read it (for example /etc/shoji/audit-checkpoint.key)", abs, c.Data)
		}
	}
	for i, a := range c.Metrics.Allow {
		if _, err := parseAllowPrefix(a); err != nil {
			return fmt.Errorf("config: metrics.allow[%d] %q: %w", i, a, err)
		}
	}
	if c.Metrics.BearerTokenFile != "" {
		abs, err := filepath.Abs(c.Metrics.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("config: metrics.bearer_token_file %q: %w", c.Metrics.BearerTokenFile, err)
		}
		c.Metrics.BearerTokenFile = abs
	}
	if c.StartURL != "" {
		u, err := url.Parse(c.StartURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: start_url %q: want an http or https URL", c.StartURL)
		}
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLS() {
			scheme = "https"
		}
		h := host
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "localhost"
		}
		c.PublicURL = scheme + "://" + net.JoinHostPort(h, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("config: public_url %q: want scheme://host[:port] with no path", c.PublicURL)
	}
	return nil
}

// Origin is the public URL's origin, which the viewer's WebSocket must send.
func (c *Config) Origin() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
