package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// t0 is the tests' clock: testdata/policy.yaml is written against it.
var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// loadDoc parses testdata/policy.yaml.
func loadDoc(t testing.TB) *Document {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseYAML(data)
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	return d
}

// testSet compiles testdata/policy.yaml with the clock at at.
func testSet(t testing.TB, at time.Time) *Set {
	t.Helper()
	s, err := Compile(loadDoc(t))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s.WithClock(func() time.Time { return at })
}

func TestCheckURL(t *testing.T) {
	s := testSet(t, t0)
	deny := func(rule, host string, port int) Result { return Result{Rule: rule, Host: host, Port: port} }
	allow := func(rule, host string, port int) Result {
		return Result{Allow: true, Rule: rule, Host: host, Port: port}
	}
	trusted := func(r Result) Result { r.Trusted = true; return r }
	const dd, addr, da = egress.RuleDefaultDeny, egress.RuleAddress, RuleDefaultAllow
	tests := []struct {
		profile, url string
		want         Result // Reason is checked only for being set on a deny
	}{
		// Host, wildcard, port.
		{"ward", "https://www.pmda.go.jp/safety/info", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", "http://www.pmda.go.jp/", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 80))},
		{"ward", "wss://www.pmda.go.jp/socket", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", "https://WWW.PMDA.GO.JP./", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", "https://www.%70mda.go.jp/", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", `https:\\www.pmda.go.jp\safety`, trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", " \thttps://www.pmda\n.go.jp/ \x00", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", "https://www.pmda.go.jp:0443/", trusted(allow("www.pmda.go.jp", "www.pmda.go.jp", 443))},
		{"ward", "https://info.pmda.go.jp/", allow("*.pmda.go.jp", "info.pmda.go.jp", 443)},
		{"ward", "https://a.b.pmda.go.jp/", allow("*.pmda.go.jp", "a.b.pmda.go.jp", 443)},
		{"ward", "https://pmda.go.jp/", deny(dd, "pmda.go.jp", 443)},
		{"ward", "https://www.pmda.go.jp:8443/", deny(dd, "www.pmda.go.jp", 8443)},
		{"ward", "https://forms.example.jp:8443/submit", Result{Allow: true, Rule: "forms.example.jp:8443", Host: "forms.example.jp", Port: 8443, Uploads: true}},
		{"ward", "https://forms.example.jp/", deny(dd, "forms.example.jp", 443)},
		{"ward", "https://病院.jp/", allow("xn--0rys90e.jp", "xn--0rys90e.jp", 443)},
		{"ward", "https://XN--0RYS90E.JP/", allow("xn--0rys90e.jp", "xn--0rys90e.jp", 443)},
		// Tricky hosts.
		{"ward", "https://www.pmda.go.jp@evil.test/", deny(dd, "evil.test", 443)},
		{"ward", "https://user:pw@www.pmda.go.jp@evil.test/", deny(dd, "evil.test", 443)},
		{"ward", "https://evil.test\\@www.pmda.go.jp/", deny(dd, "evil.test", 443)},
		{"ward", "https://www.pmda.go.jp.evil.test/", deny(dd, "www.pmda.go.jp.evil.test", 443)},
		{"ward", "https://www.pmda.go.jp%2eevil.test/", deny(dd, "www.pmda.go.jp.evil.test", 443)},
		{"ward", "https://evilpmda.go.jp/", deny(dd, "evilpmda.go.jp", 443)},
		// Paths.
		{"ward", "https://guidelines.example.jp/guidelines/", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		{"ward", "https://guidelines.example.jp/guidelines", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		{"ward", "https://guidelines.example.jp/guidelines/a/b?q=1#x", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		{"ward", "https://guidelines.example.jp/%67uidelines/a", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		{"ward", "https://guidelines.example.jp/x/../guidelines/a", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		{"ward", "https://guidelines.example.jp/guidelinesx", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/admin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines/../admin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines/%2e%2e/admin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines/%2E./admin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines%2F..%2Fadmin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines/%252e%252e/admin", deny(dd, "guidelines.example.jp", 443)},
		{"ward", `https://guidelines.example.jp/guidelines\..\admin`, deny(dd, "guidelines.example.jp", 443)},
		{"ward", "https://guidelines.example.jp/guidelines?/../admin", trusted(allow("guidelines.example.jp/guidelines/", "guidelines.example.jp", 443))},
		// Expiry.
		{"ward", "https://expired.example.jp/", deny(dd, "expired.example.jp", 443)},
		{"ward", "https://later.example.jp/", allow("later.example.jp", "later.example.jp", 443)},
		// CIDR rules: exactly their range and port.
		{"ward", "http://10.1.2.3/", allow("10.1.2.0/24", "10.1.2.3", 80)},
		{"ward", "https://10.1.2.254/", allow("10.1.2.0/24", "10.1.2.254", 443)},
		{"ward", "http://[::ffff:10.1.2.3]/", allow("10.1.2.0/24", "::ffff:10.1.2.3", 80)},
		{"ward", "http://10.1.2.3:8080/", deny(addr, "10.1.2.3", 8080)},
		{"ward", "http://10.1.1.255/", deny(addr, "10.1.1.255", 80)},
		{"ward", "https://10.1.3.4:8443/", allow("10.1.3.4/32:8443", "10.1.3.4", 8443)},
		{"ward", "https://10.1.3.4/", deny(addr, "10.1.3.4", 443)},
		{"ward", "https://10.1.3.5:8443/", deny(addr, "10.1.3.5", 8443)},
		{"ward", "https://[fd00:1::5]:8443/", allow("[fd00:1::/64]:8443", "fd00:1::5", 8443)},
		{"ward", "https://[fd00:2::5]:8443/", deny(addr, "fd00:2::5", 8443)},
		{"ward", "http://10.1.4.1/", deny(addr, "10.1.4.1", 80)}, // expired CIDR rule
		{"ward", "https://8.8.8.8/", deny(dd, "8.8.8.8", 443)},
		// IP literals in every spelling are addresses, never names.
		{"ward", "http://127.0.0.1/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://2130706433/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://0x7f.1/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://017700000001/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://127.1/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://[::1]/", deny(addr, "::1", 80)},
		{"ward", "http://[::ffff:127.0.0.1]/", deny(addr, "::ffff:127.0.0.1", 80)},
		{"ward", "http://[::ffff:7f00:1]/", deny(addr, "::ffff:127.0.0.1", 80)},
		{"ward", "http://0.0.0.0/", deny(addr, "0.0.0.0", 80)},
		{"ward", "http://169.254.169.254/latest/meta-data/", deny(addr, "169.254.169.254", 80)},
		{"ward", "http://[fc00::1]/", deny(addr, "fc00::1", 80)},
		{"ward", "http://192.168.0.1/", deny(addr, "192.168.0.1", 80)},
		{"ward", "http://172.16.0.1/", deny(addr, "172.16.0.1", 80)},
		{"ward", "http://%31%32%37.0.0.1/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://１２７。０。０。１/", deny(addr, "127.0.0.1", 80)},
		{"ward", "http://www.pmda.go.jp@127.0.0.1/", deny(addr, "127.0.0.1", 80)},
		// Blocked hosts beat every allow, in every profile.
		{"ward", "https://ok.blockme.jp/", allow("*.blockme.jp", "ok.blockme.jp", 443)},
		{"ward", "https://bad.blockme.jp/", deny("blocked: bad.blockme.jp", "bad.blockme.jp", 443)},
		{"ward", "https://x.BAD.blockme.jp./", deny("blocked: bad.blockme.jp", "x.bad.blockme.jp", 443)},
		{"search", "https://bad.blockme.jp/", deny("blocked: bad.blockme.jp", "bad.blockme.jp", 443)},
		// Denylist mode.
		{"search", "https://anything.example/", allow(da, "anything.example", 443)},
		{"search", "http://anything.example/", allow(da, "anything.example", 80)},
		{"search", "https://anything.example:8443/", deny(dd, "anything.example", 8443)},
		{"search", "https://evil-search.example/", deny("evil-search.example", "evil-search.example", 443)},
		{"search", "https://evil-search.example:8443/", deny("evil-search.example", "evil-search.example", 8443)},
		{"search", "https://www.evil-search.example/", allow(da, "www.evil-search.example", 443)},
		{"search", "https://social.example/private/x", deny("social.example/private/", "social.example", 443)},
		{"search", "https://social.example/public/../private/x", deny("social.example/private/", "social.example", 443)},
		{"search", "https://social.example/public/", allow(da, "social.example", 443)},
		{"search", "http://games.example:8080/", deny("games.example:8080", "games.example", 8080)},
		{"search", "https://games.example/", allow(da, "games.example", 443)},
		{"search", "https://8.8.8.8/", allow(da, "8.8.8.8", 443)},
		{"search", "http://10.1.2.3/", deny(addr, "10.1.2.3", 80)},
		{"search", "http://127.0.0.1/", deny(addr, "127.0.0.1", 80)},
		{"search", "http://0x7f.1/", deny(addr, "127.0.0.1", 80)},
		{"search", "http://[::ffff:192.168.1.1]/", deny(addr, "::ffff:192.168.1.1", 80)},
		{"search", "http://[64:ff9b::a01:203]/", deny(addr, "64:ff9b::a01:203", 80)},
		{"search", "http://[2002:c0a8:101::]/", deny(addr, "2002:c0a8:101::", 80)},
		// No profile, unknown profile, schemes, junk.
		{"", "https://www.pmda.go.jp/", deny(RuleNoInternet, "www.pmda.go.jp", 443)},
		{"none", "https://www.pmda.go.jp/", deny(dd, "www.pmda.go.jp", 443)},
		{"gone", "https://www.pmda.go.jp/", deny(RuleUnknownProfile, "www.pmda.go.jp", 443)},
		{"ward", "ftp://www.pmda.go.jp/", deny(RuleScheme, "", 0)},
		{"ward", "javascript:alert(1)", deny(RuleScheme, "", 0)},
		{"ward", "file:///etc/passwd", deny(RuleScheme, "", 0)},
		{"ward", "www.pmda.go.jp", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://exa mple.jp/", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://[::1/", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://www.pmda.go.jp:99999/", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://%zz.jp/", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "https://1.2.3.256/", deny(egress.RuleBadRequest, "", 0)},
		{"ward", "", deny(egress.RuleBadRequest, "", 0)},
	}
	for _, tt := range tests {
		t.Run(tt.profile+" "+tt.url, func(t *testing.T) {
			got := s.CheckURL(tt.profile, tt.url)
			if !got.Allow && got.Reason == "" {
				t.Errorf("deny without a reason: %+v", got)
			}
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckURL(%q, %q) mismatch (-want +got):\n%s", tt.profile, tt.url, diff)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	s := testSet(t, t0)
	tests := []struct {
		profile, host string
		port          int
		want          egress.Decision // Reason checked only for being set on a deny
	}{
		{"ward", "www.pmda.go.jp", 443, egress.Decision{Allow: true, Rule: "www.pmda.go.jp"}},
		{"ward", "WWW.PMDA.GO.JP.", 80, egress.Decision{Allow: true, Rule: "www.pmda.go.jp"}},
		{"ward", "www.pmda.go.jp", 8443, egress.Decision{Rule: egress.RuleDefaultDeny}},
		// The proxy sees no path: a path rule allows its host.
		{"ward", "guidelines.example.jp", 443, egress.Decision{Allow: true, Rule: "guidelines.example.jp/guidelines/"}},
		{"ward", "guidelines.example.jp", 8443, egress.Decision{Rule: egress.RuleDefaultDeny}},
		{"ward", "10.1.2.3", 443, egress.Decision{Allow: true, Rule: "10.1.2.0/24"}},
		{"ward", "127.0.0.1", 443, egress.Decision{Rule: egress.RuleAddress}},
		{"ward", "::ffff:127.0.0.1", 443, egress.Decision{Rule: egress.RuleAddress}},
		{"ward", "2130706433", 80, egress.Decision{Rule: egress.RuleAddress}},
		{"ward", "bad.blockme.jp", 443, egress.Decision{Rule: "blocked: bad.blockme.jp"}},
		{"ward", "[::1]", 443, egress.Decision{Rule: egress.RuleBadRequest}},
		{"ward", "www.pmda.go.jp", 0, egress.Decision{Rule: egress.RuleBadRequest}},
		// A denylist path rule does not deny its host at the proxy.
		{"search", "social.example", 443, egress.Decision{Allow: true, Rule: RuleDefaultAllow}},
		{"search", "evil-search.example", 443, egress.Decision{Rule: "evil-search.example"}},
		{"search", "10.1.2.3", 443, egress.Decision{Rule: egress.RuleAddress}},
		{"", "www.pmda.go.jp", 443, egress.Decision{Rule: RuleNoInternet}},
	}
	for _, tt := range tests {
		got := s.Decide(tt.profile, tt.host, tt.port)
		if !got.Allow && got.Reason == "" {
			t.Errorf("Decide(%q, %q, %d): deny without a reason: %+v", tt.profile, tt.host, tt.port, got)
		}
		got.Reason = ""
		if got != tt.want {
			t.Errorf("Decide(%q, %q, %d) = %+v, want %+v", tt.profile, tt.host, tt.port, got, tt.want)
		}
		// The adapter agrees.
		pd := s.ForProfile(tt.profile).Decide(tt.host, tt.port)
		pd.Reason = ""
		if pd != got {
			t.Errorf("ForProfile(%q).Decide(%q, %d) = %+v, want %+v", tt.profile, tt.host, tt.port, pd, got)
		}
	}
}

func TestAllowAddr(t *testing.T) {
	s := testSet(t, t0)
	ap := netip.MustParseAddr
	tests := []struct {
		profile, host string
		addr          netip.Addr
		port          int
		ok            bool
		rule          string
	}{
		{"ward", "intranet.hospital.local", ap("10.1.2.3"), 443, true, "10.1.2.0/24"},
		{"ward", "intranet.hospital.local", ap("10.1.2.3"), 80, true, "10.1.2.0/24"},
		{"ward", "", ap("10.1.2.3"), 443, true, "10.1.2.0/24"},
		{"ward", "intranet.hospital.local", ap("::ffff:10.1.2.3"), 443, true, "10.1.2.0/24"},
		{"ward", "intranet.hospital.local", ap("10.1.2.3"), 8080, false, egress.RuleAddress},
		{"ward", "intranet.hospital.local", ap("10.1.3.0"), 443, false, egress.RuleAddress},
		{"ward", "x", ap("10.1.3.4"), 8443, true, "10.1.3.4/32:8443"},
		{"ward", "x", ap("10.1.3.4"), 443, false, egress.RuleAddress},
		{"ward", "x", ap("10.1.3.5"), 8443, false, egress.RuleAddress},
		{"ward", "x", ap("fd00:1::1"), 8443, true, "[fd00:1::/64]:8443"},
		{"ward", "x", ap("fd00:1::1%eth0"), 8443, false, egress.RuleAddress},
		{"ward", "x", ap("10.1.4.1"), 443, false, egress.RuleAddress}, // expired
		{"ward", "x", ap("127.0.0.1"), 443, false, egress.RuleAddress},
		{"ward", "x", netip.Addr{}, 443, false, egress.RuleAddress},
		{"ward", "x.bad.blockme.jp", ap("10.1.2.3"), 443, false, "blocked: bad.blockme.jp"},
		{"search", "x", ap("10.1.2.3"), 443, false, egress.RuleAddress},
		{"", "x", ap("10.1.2.3"), 443, false, egress.RuleAddress},
		{"gone", "x", ap("10.1.2.3"), 443, false, egress.RuleAddress},
	}
	for _, tt := range tests {
		ok, rule := s.AllowAddr(tt.profile, tt.host, tt.addr, tt.port)
		if ok != tt.ok || rule != tt.rule {
			t.Errorf("AllowAddr(%q, %q, %s, %d) = %v, %q; want %v, %q", tt.profile, tt.host, tt.addr, tt.port, ok, rule, tt.ok, tt.rule)
		}
		pp := s.ForProfile(tt.profile).(*ProfilePolicy)
		if ok2, rule2 := pp.AllowAddr(tt.host, tt.addr, tt.port); ok2 != ok || rule2 != rule {
			t.Errorf("ProfilePolicy.AllowAddr disagrees: %v %q", ok2, rule2)
		}
	}
}

func TestProfileFor(t *testing.T) {
	ap := netip.MustParseAddr
	tests := []struct {
		name     string
		at       time.Time
		role     string
		terminal netip.Addr
		want     string
	}{
		{"group", t0, "clinician", ap("10.10.3.4"), "ward"},
		{"group, IPv4-mapped terminal", t0, "clinician", ap("::ffff:10.10.3.4"), "ward"},
		{"role when the group has no profile", t0, "clinician", ap("10.30.0.5"), "search"},
		{"role when no group", t0, "clinician", ap("192.168.1.9"), "search"},
		{"role, invalid terminal", t0, "clinician", netip.Addr{}, "search"},
		{"default", t0, "approver", ap("192.168.1.9"), "none"},
		{"emergency beats the group's profile", t0, "approver", ap("10.20.1.1"), "search"},
		{"emergency, IPv6 terminal", t0, "approver", ap("2001:db8:20::7"), "search"},
		{"expired emergency", t0.Add(3 * time.Hour), "approver", ap("10.20.1.1"), "wide"},
	}
	for _, tt := range tests {
		s := testSet(t, tt.at)
		if got := s.ProfileFor("alice", tt.role, tt.terminal); got != tt.want {
			t.Errorf("%s: ProfileFor(%q, %s) = %q, want %q", tt.name, tt.role, tt.terminal, got, tt.want)
		}
	}

	s, err := Compile(&Document{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ProfileFor("alice", "clinician", ap("10.10.3.4")); got != "" {
		t.Errorf("empty policy: ProfileFor = %q, want \"\" (no Internet)", got)
	}
	if d := s.Decide("", "www.pmda.go.jp", 443); d.Allow || d.Rule != RuleNoInternet {
		t.Errorf("empty policy: Decide = %+v, want deny by %s", d, RuleNoInternet)
	}
}

// TestExpiry moves the clock past a rule's expiry: the rule stops matching
// at that instant, without a new Set.
func TestExpiry(t *testing.T) {
	expires := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{expires.Add(-time.Nanosecond), true},
		{expires, false},
		{expires.Add(time.Hour), false},
	} {
		s := testSet(t, tt.at)
		if got := s.CheckURL("ward", "https://later.example.jp/").Allow; got != tt.want {
			t.Errorf("at %v: allow = %v, want %v", tt.at, got, tt.want)
		}
	}
}

// TestProfilesNeverAllowNonPublicWithoutCIDR checks every non-public
// address class in both modes, by CheckURL, Decide and AllowAddr.
func TestProfilesNeverAllowNonPublicWithoutCIDR(t *testing.T) {
	s := testSet(t, t0)
	addrs := []string{
		"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "169.254.1.1",
		"100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255", "240.0.0.1",
		"::1", "::", "fc00::1", "fd12::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:10.1.2.3", "64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "2001:db8::1",
	}
	for _, profile := range []string{"search", "none", "wide", ""} {
		for _, a := range addrs {
			addr := netip.MustParseAddr(a)
			host := addr.String()
			u := "https://" + host + "/"
			if addr.Is6() {
				u = "https://[" + host + "]/"
			}
			if r := s.CheckURL(profile, u); r.Allow {
				t.Errorf("profile %q allows %s by %s", profile, u, r.Rule)
			}
			if d := s.Decide(profile, host, 443); d.Allow {
				t.Errorf("profile %q: Decide allows %s by %s", profile, host, d.Rule)
			}
			if ok, rule := s.AllowAddr(profile, "name.example", addr, 443); ok {
				t.Errorf("profile %q: AllowAddr allows %s by %s", profile, addr, rule)
			}
		}
	}
}
