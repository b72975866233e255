package broker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFile(t *testing.T) {
	p := writeFile(t, `
listen: 127.0.0.1:9000
idle_timeout: 5m
max_sessions: 3
egress:
  allow: ["example.jp", "*.pmda.go.jp"]
  allow_addrs: ["10.1.2.3:443"]
  hosts: {guidelines.local: 10.1.2.3}
`)
	cfg := DefaultConfig()
	if err := cfg.LoadConfigFile(p); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9000" || time.Duration(cfg.IdleTimeout) != 5*time.Minute || cfg.MaxSessions != 3 {
		t.Errorf("config not applied: %+v", cfg)
	}
	if time.Duration(cfg.MaxLifetime) != 12*time.Hour {
		t.Errorf("default max_lifetime lost: %v", time.Duration(cfg.MaxLifetime))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "http://127.0.0.1:9000" {
		t.Errorf("derived public URL %q", cfg.PublicURL)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "listen: 127.0.0.1:1\nlisten_adress: x\n", "listen_adress"},
		{"unknown nested key", "egress:\n  allowed: [a]\n", "allowed"},
		{"bad duration", "idle_timeout: 15 minutes\n", "bad duration"},
		{"wrong type", "max_sessions: many\n", "max_sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			err := cfg.LoadConfigFile(writeFile(t, tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"public without TLS", func(c *Config) { c.Listen = "0.0.0.0:8080" }, "plain HTTP"},
		{"all interfaces without TLS", func(c *Config) { c.Listen = ":8080" }, "plain HTTP"},
		{"public with insecure-http", func(c *Config) { c.Listen = "0.0.0.0:8080"; c.InsecureHTTP = true }, ""},
		{"public with TLS", func(c *Config) { c.Listen = ":8443"; c.TLSCert, c.TLSKey = "c", "k" }, ""},
		{"cert without key", func(c *Config) { c.TLSCert = "c" }, "tls_cert and tls_key"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, "listen"},
		{"zero idle", func(c *Config) { c.IdleTimeout = 0 }, "idle_timeout"},
		{"zero sessions", func(c *Config) { c.MaxSessions = 0 }, "max_sessions"},
		{"allow addr range", func(c *Config) { c.Egress.AllowAddrs = []string{"10.0.0.0/8"} }, "egress.allow_addrs[0]"},
		{"hosts not ip", func(c *Config) { c.Egress.Hosts = map[string]string{"a": "b.c"} }, `egress.hosts["a"]`},
		{"start url scheme", func(c *Config) { c.StartURL = "file:///etc/passwd" }, "start_url"},
		{"public url path", func(c *Config) { c.PublicURL = "https://shoji.local/x" }, "public_url"},
		{"no data", func(c *Config) { c.Data = "" }, "data"},
		{"pool", func(c *Config) { c.PoolSize = 1 }, ""},
		{"pool over max sessions", func(c *Config) { c.PoolSize = 21 }, "pool_size"},
		{"negative pool", func(c *Config) { c.PoolSize = -1 }, "pool_size"},
		{"short pool age", func(c *Config) { c.PoolMaxAge = Duration(time.Second) }, "pool_max_age"},
		{"negative free memory", func(c *Config) { c.MinFreeMemoryMiB = -1 }, "min_free_memory_mib"},
		{"zero jpeg quality", func(c *Config) { c.Stream.JPEGQuality = 0 }, "stream.jpeg_quality"},
		{"jpeg quality over 100", func(c *Config) { c.Stream.JPEGQuality = 101 }, "stream.jpeg_quality"},
		{"sharp quality 0", func(c *Config) { c.Stream.SharpQuality = 0 }, "stream.sharp_quality"},
		{"sharp quality -2", func(c *Config) { c.Stream.SharpQuality = -2 }, "stream.sharp_quality"},
		{"no frames in flight", func(c *Config) { c.Stream.MaxFramesInFlight = 0 }, "stream.max_frames_in_flight"},
		{"settle delay too short", func(c *Config) { c.Stream.SettleDelay = Duration(time.Millisecond) }, "stream.settle_delay"},
		{"idle frame interval too short", func(c *Config) { c.Stream.IdleFrameInterval = Duration(time.Millisecond) }, "stream.idle_frame_interval"},
		{"idle frame interval too long", func(c *Config) { c.Stream.IdleFrameInterval = Duration(time.Minute) }, "stream.idle_frame_interval"},
		{"negative idle frame interval", func(c *Config) { c.Stream.IdleFrameInterval = Duration(-time.Second) }, "stream.idle_frame_interval"},
		{"negative load", func(c *Config) { c.MaxLoadPerCore = -0.5 }, "max_load_per_core"},
		{"no checkpoint cadence", func(c *Config) { c.Audit.CheckpointEvery = 0 }, "audit.checkpoint_every"},
		{"checkpoint interval too short", func(c *Config) { c.Audit.CheckpointInterval = Duration(time.Millisecond) }, "audit.checkpoint_interval"},
		{"checkpoint key outside", func(c *Config) { c.Data = "/var/lib/shoji"; c.Audit.CheckpointKey = "/etc/shoji/audit-checkpoint.key" }, ""},
		{"checkpoint key beside the data", func(c *Config) { c.Data = "/var/lib/shoji"; c.Audit.CheckpointKey = "/var/lib/shoji.checkpoint.key" }, ""},
		{"checkpoint key in the data", func(c *Config) { c.Data = "/var/lib/shoji"; c.Audit.CheckpointKey = "/var/lib/shoji/keys/a.key" }, "audit.checkpoint_key"},
		{"checkpoint key relative in the data", func(c *Config) { c.Data = "data"; c.Audit.CheckpointKey = "data/../data/a.key" }, "audit.checkpoint_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestApplyEnv sets each variable of the table alone, to a value unlike the
// default, and checks that the config key the table names (read back from
// the config as YAML, the file's own form) took exactly that value, so the
// table cannot claim a key the variable does not set.
func TestApplyEnv(t *testing.T) {
	values := map[string]struct{ env, yaml string }{
		"string":   {"env-test-value", "env-test-value"},
		"duration": {"7m13s", "7m13s"},
		"int":      {"4242", "4242"},
		"number":   {"3.25", "3.25"},
	}
	for _, e := range EnvVars() {
		t.Run(e.Name, func(t *testing.T) {
			def := configKey(t, DefaultConfig(), e.Key)
			want, ok := values[e.Kind]
			if e.Kind == "bool" {
				want = struct{ env, yaml string }{"true", "true"}
				if def == "true" {
					want = struct{ env, yaml string }{"false", "false"}
				}
			} else if !ok {
				t.Fatalf("kind %q has no test value", e.Kind)
			}
			var read []string
			cfg := DefaultConfig()
			err := cfg.ApplyEnv(func(k string) string {
				read = append(read, k)
				if k == e.Name {
					return want.env
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := configKey(t, cfg, e.Key); got != want.yaml {
				t.Errorf("%s=%s: config key %s = %q, want %q", e.Name, want.env, e.Key, got, want.yaml)
			}
			// Nothing else changed: every other key keeps its default.
			cfg2 := DefaultConfig()
			if err := cfg2.ApplyEnv(func(k string) string {
				if k == e.Name {
					return want.env
				}
				return ""
			}); err != nil {
				t.Fatal(err)
			}
			for _, other := range EnvVars() {
				if other.Key != e.Key && configKey(t, cfg2, other.Key) != configKey(t, DefaultConfig(), other.Key) {
					t.Errorf("%s also changed %s", e.Name, other.Key)
				}
			}
			if !slices.Contains(read, e.Name) {
				t.Errorf("ApplyEnv did not read %s", e.Name)
			}
		})
	}
}

// TestApplyEnvReadsOnlyTheTable checks that ApplyEnv asks for no variable
// the table (and so --help) does not list.
func TestApplyEnvReadsOnlyTheTable(t *testing.T) {
	listed := map[string]bool{}
	for _, e := range EnvVars() {
		if listed[e.Name] {
			t.Errorf("%s is in the table twice", e.Name)
		}
		listed[e.Name] = true
	}
	cfg := DefaultConfig()
	if err := cfg.ApplyEnv(func(k string) string {
		if !listed[k] {
			t.Errorf("ApplyEnv read %s, which EnvVars does not list", k)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
}

// TestApplyEnvMalformed checks that a value that does not parse is refused
// with an error naming the variable, its value and its config key.
func TestApplyEnvMalformed(t *testing.T) {
	bad := map[string]string{"bool": "yes please", "duration": "soon", "int": "x", "number": "high"}
	for _, e := range EnvVars() {
		v, ok := bad[e.Kind]
		if !ok {
			continue // every string is a string
		}
		t.Run(e.Name, func(t *testing.T) {
			cfg := DefaultConfig()
			err := cfg.ApplyEnv(func(k string) string {
				if k == e.Name {
					return v
				}
				return ""
			})
			if err == nil || !strings.Contains(err.Error(), e.Name) || !strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), e.Key) {
				t.Errorf("%s=%q: err = %v, want one naming the variable, the value and %s", e.Name, v, err, e.Key)
			}
		})
	}
}

// configKey returns the scalar at the dotted key of cfg written as YAML.
func configKey(t *testing.T, cfg Config, key string) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	n := root.Content[0]
	for part := range strings.SplitSeq(key, ".") {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			t.Fatalf("config has no key %s (at %s)", key, part)
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		t.Fatalf("config key %s is not a scalar", key)
	}
	return n.Value
}

// TestExampleConfig keeps deploy/config.example.yaml loadable and valid.
func TestExampleConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.LoadConfigFile(filepath.Join("..", "deploy", "config.example.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example config does not validate: %v", err)
	}
}

// TestPartialFramesSwitch proves that stream.partial_frames is on by
// default and that turning it off leaves the viewer stream without a
// partial-frame engine, so that every frame goes whole.
func TestPartialFramesSwitch(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := DefaultConfig()
		if !cfg.Stream.PartialFrames {
			t.Fatal("stream.partial_frames is off by default")
		}
		cfg.Stream.PartialFrames = on
		s := &Server{cfg: cfg}
		if got := s.deltaEncoder() != nil; got != on {
			t.Errorf("stream.partial_frames %v: the stream has a partial-frame engine: %v", on, got)
		}
	}
}

// TestFramePacingSwitch proves that stream.idle_frame_interval paces the
// viewer stream by default, with the tile engine's change measure shared
// with the partial frames (one parse a frame), and that 0 turns pacing off
// whether or not partial frames are on.
func TestFramePacingSwitch(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		partial  bool
	}{
		{DefaultIdleFrameInterval, true},
		{DefaultIdleFrameInterval, false},
		{0, true},
	} {
		cfg := DefaultConfig()
		if time.Duration(cfg.Stream.IdleFrameInterval) != DefaultIdleFrameInterval {
			t.Fatalf("stream.idle_frame_interval defaults to %v", time.Duration(cfg.Stream.IdleFrameInterval))
		}
		cfg.Stream.IdleFrameInterval = Duration(tc.interval)
		cfg.Stream.PartialFrames = tc.partial
		if err := cfg.Validate(); err != nil {
			t.Fatalf("interval %v: %v", tc.interval, err)
		}
		s := &Server{cfg: cfg}
		h := s.streamHandler()
		if h.IdleFrameInterval != tc.interval || (h.Changes != nil) != (tc.interval > 0) {
			t.Errorf("interval %v, partial %v: the stream paces at %v with a change measure %v", tc.interval, tc.partial, h.IdleFrameInterval, h.Changes != nil)
		}
		if tc.partial && tc.interval > 0 && any(h.Changes) != any(h.Delta) {
			t.Errorf("interval %v: the pace measures changes with another engine than the partial frames'", tc.interval)
		}
	}
}
