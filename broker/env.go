package broker

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EnvVar is one SHOJI_* environment variable that sets a config key. The
// table envVars is the only place the variables are named: ApplyEnv reads
// exactly these, and `shoji serve --help` prints them (EnvVars).
type EnvVar struct {
	// Name is the variable, e.g. "SHOJI_LISTEN".
	Name string
	// Key is the config file key it overrides, dotted for nested keys, e.g.
	// "transfer.clamd".
	Key string
	// Kind is the value's form: "string", "bool", "duration", "int" or
	// "number".
	Kind string
	// Help says what the key does, in a few words.
	Help string

	field func(*Config) any
}

// envVars is the table of SHOJI_* variables, in the order --help lists them.
// field returns a pointer to the config field: *string, *bool, **bool,
// *Duration, *int or *float64.
var envVars = []EnvVar{
	{Name: "SHOJI_LISTEN", Key: "listen", Help: "host:port the broker serves on", field: func(c *Config) any { return &c.Listen }},
	{Name: "SHOJI_PUBLIC_URL", Key: "public_url", Help: "URL clinicians open; the viewer's Origin must match it", field: func(c *Config) any { return &c.PublicURL }},
	{Name: "SHOJI_DATA", Key: "data", Help: "data directory (store, keys, audit, profiles)", field: func(c *Config) any { return &c.Data }},
	{Name: "SHOJI_TLS_CERT", Key: "tls_cert", Help: "TLS certificate file (PEM)", field: func(c *Config) any { return &c.TLSCert }},
	{Name: "SHOJI_TLS_KEY", Key: "tls_key", Help: "TLS private key file (PEM)", field: func(c *Config) any { return &c.TLSKey }},
	{Name: "SHOJI_INSECURE_HTTP", Key: "insecure_http", Help: "allow plain HTTP beyond loopback (only behind a TLS proxy)", field: func(c *Config) any { return &c.InsecureHTTP }},
	{Name: "SHOJI_CHROMIUM", Key: "chromium", Help: "Chromium binary (not Debian's /usr/bin wrapper)", field: func(c *Config) any { return &c.Chromium }},
	{Name: "SHOJI_SANDBOX", Key: "sandbox", Help: "Chromium's sandbox; unset: on unless running as root", field: func(c *Config) any { return &c.Sandbox }},
	{Name: "SHOJI_DEMO", Key: "demo", Help: "serve the built-in demo site and a demo clinician login", field: func(c *Config) any { return &c.Demo }},
	{Name: "SHOJI_NETNS", Key: "netns", Help: "a network namespace per browser (Linux, root)", field: func(c *Config) any { return &c.NetNS }},
	{Name: "SHOJI_START_URL", Key: "start_url", Help: "page a new browser opens", field: func(c *Config) any { return &c.StartURL }},
	{Name: "SHOJI_LOGIN_BANNER", Key: "login_banner", Help: "login page banner until an admin sets one", field: func(c *Config) any { return &c.LoginBanner }},
	{Name: "SHOJI_IDLE_TIMEOUT", Key: "idle_timeout", Help: "end a session without input for this long", field: func(c *Config) any { return &c.IdleTimeout }},
	{Name: "SHOJI_MAX_LIFETIME", Key: "max_lifetime", Help: "end a session however busy after this long", field: func(c *Config) any { return &c.MaxLifetime }},
	{Name: "SHOJI_MAX_SESSIONS", Key: "max_sessions", Help: "browsers this node runs at most, pooled ones included", field: func(c *Config) any { return &c.MaxSessions }},
	{Name: "SHOJI_POOL_SIZE", Key: "pool_size", Help: "blank browsers kept started for the next logins", field: func(c *Config) any { return &c.PoolSize }},
	{Name: "SHOJI_POOL_MAX_AGE", Key: "pool_max_age", Help: "replace a pooled browser left unclaimed this long", field: func(c *Config) any { return &c.PoolMaxAge }},
	{Name: "SHOJI_MIN_FREE_MEMORY_MIB", Key: "min_free_memory_mib", Help: "refuse new sessions below this much available memory; 0: off", field: func(c *Config) any { return &c.MinFreeMemoryMiB }},
	{Name: "SHOJI_MAX_LOAD_PER_CORE", Key: "max_load_per_core", Help: "refuse new sessions above this load per CPU; 0: off", field: func(c *Config) any { return &c.MaxLoadPerCore }},
	{Name: "SHOJI_LOCKOUT_THRESHOLD", Key: "lockout_threshold", Help: "failed logins within lockout_window that lock an account", field: func(c *Config) any { return &c.LockoutThreshold }},
	{Name: "SHOJI_LOCKOUT_WINDOW", Key: "lockout_window", Help: "window of lockout_threshold", field: func(c *Config) any { return &c.LockoutWindow }},
	{Name: "SHOJI_CLAMD", Key: "transfer.clamd", Help: "ClamAV daemon: unix:/path or tcp:host:port; empty: no scanning", field: func(c *Config) any { return &c.Transfer.Clamd }},
	{Name: "SHOJI_SCAN_TIMEOUT", Key: "transfer.scan_timeout", Help: "hold a file whose scan takes longer", field: func(c *Config) any { return &c.Transfer.ScanTimeout }},
	{Name: "SHOJI_RETENTION", Key: "transfer.retention", Help: "delete quarantined files after this long", field: func(c *Config) any { return &c.Transfer.Retention }},
	{Name: "SHOJI_AUDIT_SYSLOG", Key: "audit.syslog", Help: "RFC 5424 collector host:port (TCP) for every record", field: func(c *Config) any { return &c.Audit.Syslog }},
	{Name: "SHOJI_AUDIT_CHECKPOINT_KEY", Key: "audit.checkpoint_key", Help: "Ed25519 key file that signs the trail's checkpoints", field: func(c *Config) any { return &c.Audit.CheckpointKey }},
	{Name: "SHOJI_PARTIAL_FRAMES", Key: "stream.partial_frames", Help: "send viewers only the changed rectangles of the screen", field: func(c *Config) any { return &c.Stream.PartialFrames }},
	{Name: "SHOJI_IDLE_FRAME_INTERVAL", Key: "stream.idle_frame_interval", Help: "least time between frames while the screen changes little and nobody acts on it; 0: off", field: func(c *Config) any { return &c.Stream.IdleFrameInterval }},
	{Name: "SHOJI_METRICS_TOKEN_FILE", Key: "metrics.bearer_token_file", Help: "file with the bearer token that opens /metrics beyond metrics.allow", field: func(c *Config) any { return &c.Metrics.BearerTokenFile }},
}

func init() {
	var c Config
	for i := range envVars {
		envVars[i].Kind = envKind(envVars[i].field(&c))
	}
}

// envKind names the form of the value a field pointer takes.
func envKind(p any) string {
	switch p.(type) {
	case *string:
		return "string"
	case *bool, **bool:
		return "bool"
	case *Duration:
		return "duration"
	case *int:
		return "int"
	case *float64:
		return "number"
	default:
		panic(fmt.Sprintf("broker: env table: field of type %T has no kind", p))
	}
}

// EnvVars returns the SHOJI_* variables ApplyEnv reads, in table order.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(envVars))
	copy(out, envVars)
	for i := range out {
		out[i].field = nil
	}
	return out
}

// ApplyEnv applies the SHOJI_* environment variables of EnvVars, read with
// getenv; an empty or unset variable changes nothing. A malformed value is an
// error naming the variable and the value.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, e := range envVars {
		v := getenv(e.Name)
		if v == "" {
			continue
		}
		if err := setEnvField(e.field(c), v); err != nil {
			return fmt.Errorf("%s=%q (config key %s): %w", e.Name, v, e.Key, err)
		}
	}
	return nil
}

// setEnvField parses v into the field p points to.
func setEnvField(p any, v string) error {
	switch dst := p.(type) {
	case *string:
		*dst = v
	case *bool:
		x, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*dst = x
	case **bool:
		x, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*dst = &x
	case *Duration:
		x, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 15m or 12h")
		}
		*dst = Duration(x)
	case *int:
		x, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want a whole number")
		}
		*dst = x
	case *float64:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("want a number")
		}
		*dst = x
	default:
		return fmt.Errorf("field of type %T cannot be set from the environment", p)
	}
	return nil
}
