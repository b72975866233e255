// Package egress is the forward proxy that is each isolated browser's only
// way out (docs/security.md). Each session gets its own loopback listener; Chromium
// is started with --proxy-server pointing at it, so every request — HTTP in
// absolute form, CONNECT for https and wss, ws:// upgrades — comes here.
//
// For each request the proxy normalises the target (Normalize), asks the
// session's Policy, resolves the host exactly once, refuses any address that
// is not public unicast (IsPublicUnicast) unless an admin allowed that exact
// address and port (Config.AllowAddrs) or the session's AddressPolicy allows
// it, and dials the address it checked, so DNS rebinding cannot redirect it.
// With Config.Upstream, allowed traffic leaves through the hospital's proxy
// instead. Origin-form requests are refused: it is never a web server.
//
// It is never an open proxy either (NET-3): on Linux, each accepted
// connection is traced to the process that holds its other end, and only the
// session's own browser may use its listener (see Listener.SetOwner). Every
// allow and every deny is reported through Config.OnDecision.
package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultMaxHeaderBytes = 32 << 10
)

// Errors returned by the package.
var (
	// ErrInvalidConfig is wrapped by Config.CheckAndSetDefaults errors.
	ErrInvalidConfig = errors.New("invalid egress config")
	// ErrClosed is returned by Open after the Proxy is closed.
	ErrClosed = errors.New("egress proxy closed")
	// ErrDenied is wrapped by the error of a dial the proxy refused.
	ErrDenied = errors.New("egress denied")
	// ErrNotOwner is wrapped by the read error of a connection refused
	// because it did not come from the session's browser.
	ErrNotOwner = errors.New("connection not from the session's browser")
	// ErrUpstream is wrapped when the upstream proxy refused or failed a
	// request the egress proxy allowed.
	ErrUpstream = errors.New("upstream proxy failed")
)

// Resolver looks up the addresses of a host. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Event reports one decision of the proxy: a request target allowed (with
// the address it will dial) or denied (with the rule and reason).
type Event struct {
	// Session is the session ID the listener was opened for.
	Session string
	// Method is the request method: CONNECT, GET, POST, ….
	Method string
	// Host is the normalised host, or the raw target (at most 256 bytes)
	// when it could not be normalised, or "" for a request without one.
	Host string
	// Port is the target port, 0 when unknown.
	Port int
	// Addr is the address dialed (or, through an upstream proxy, the address
	// checked); invalid for a deny.
	Addr netip.Addr
	// AddrRule names the AddressPolicy rule that allowed Addr although it is
	// not public unicast; empty when Addr is public or in Config.AllowAddrs.
	AddrRule string
	// Allow says whether the request may leave.
	Allow bool
	// Rule names the policy rule or proxy check (Rule* constants) that decided.
	Rule string
	// Reason says why a request was denied; may be empty for an allow.
	Reason string
	// Background marks a deny of a request addressed to
	// isolation.BackgroundDomain, where shoji points the browser's own
	// background services (rule RuleBackground): no page asked for it, so
	// it is not a refusal of anything a page or a clinician tried.
	Background bool
	// Time is when the decision was made, from Config.Now.
	Time time.Time
}

// Config configures a Proxy. The zero value of each optional field means the
// documented default.
type Config struct {
	// Policy decides which hosts and ports may be reached. Required; it can
	// be replaced later with Proxy.SetPolicy.
	Policy Policy
	// AllowAddrs are exact address and port pairs an admin allowed although
	// they are not public unicast, such as the demo site at 127.0.0.1:PORT.
	// Matching is exact: ::ffff:127.0.0.1 does not match 127.0.0.1. Nil
	// allows none. Unspecified, multicast and broadcast addresses, zones and
	// port 0 are rejected.
	AllowAddrs []netip.AddrPort
	// Hosts resolves names statically before DNS, so a loopback site can
	// have a name such as demo.shoji.test. Keys are normalised as by
	// Normalize and must be names, not IP literals. Nil means DNS only.
	Hosts map[string]netip.Addr
	// Resolver resolves names not in Hosts. Nil means net.DefaultResolver,
	// with IPv4 results unmapped from the 16-byte form it returns.
	Resolver Resolver
	// DialTimeout bounds resolving and connecting. Zero means 10s.
	DialTimeout time.Duration
	// IdleTimeout closes a tunnel or upstream connection with no traffic
	// either way for this long, and idle keep-alive client connections.
	// Zero means 2m.
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request's headers. Zero means 10s.
	HeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (net/http adds 4 KiB of
	// slack). Zero means 32 KiB.
	MaxHeaderBytes int
	// OnDecision is called synchronously for every allow and deny; it is
	// where audit plugs in. It must not block and must not call
	// Listener.Close or Proxy.Close. Nil means no reports.
	OnDecision func(Event)
	// Logger receives operational logs (hosts, never paths, queries or
	// headers). Nil discards them.
	Logger *slog.Logger
	// Now is the clock for events. Nil means time.Now.
	Now func() time.Time

	// Upstream is the hospital's (or a gateway centre's) HTTP proxy,
	// "http://host:port" with optional "user:password@", through which all
	// allowed traffic leaves: tunnels as CONNECT, plain HTTP in absolute
	// form. Every check above still runs first, on the egress proxy's own
	// resolution of the target, and denied requests never reach it. A tunnel
	// asks the upstream for the address that was checked (CONNECT
	// 203.0.113.7:443), so DNS rebinding cannot send it elsewhere, unless
	// UpstreamByName. Plain HTTP is always asked by name, because a proxy
	// rebuilds the Host header from the URL: the upstream resolves the name
	// again, so the local check covers only the local answer and the
	// upstream must itself refuse private addresses. The upstream's own
	// address is not checked. Nil means direct connections.
	Upstream *url.URL
	// UpstreamByName asks the upstream for tunnels by host name (CONNECT
	// example.jp:443), for an upstream that filters by name or resolves
	// names the broker cannot. The caveat about plain HTTP above then holds
	// for tunnels too. False means by address.
	UpstreamByName bool
}

// CheckAndSetDefaults validates c, naming the bad field, and fills in
// defaults. It replaces Hosts and AllowAddrs with normalised copies and never
// modifies the caller's map or slice.
func (c *Config) CheckAndSetDefaults() error {
	if c.Policy == nil {
		return fmt.Errorf("field Policy is required: %w", ErrInvalidConfig)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"IdleTimeout", c.IdleTimeout}, {"HeaderTimeout", c.HeaderTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("field %s is negative (%v): %w", d.name, d.v, ErrInvalidConfig)
		}
	}
	if c.MaxHeaderBytes < 0 {
		return fmt.Errorf("field MaxHeaderBytes is negative (%d): %w", c.MaxHeaderBytes, ErrInvalidConfig)
	}
	allow := make([]netip.AddrPort, 0, len(c.AllowAddrs))
	for i, ap := range c.AllowAddrs {
		a := ap.Addr()
		switch {
		case !a.IsValid() || ap.Port() == 0:
			return fmt.Errorf("field AllowAddrs[%d] %q needs an address and a port: %w", i, ap, ErrInvalidConfig)
		case a.Zone() != "":
			return fmt.Errorf("field AllowAddrs[%d] %q: zone not allowed: %w", i, ap, ErrInvalidConfig)
		case a.Unmap().IsUnspecified() || a.Unmap().IsMulticast() || a.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Errorf("field AllowAddrs[%d] %q is not a unicast address: %w", i, ap, ErrInvalidConfig)
		}
		allow = append(allow, ap)
	}
	c.AllowAddrs = allow
	if c.Upstream != nil {
		u, err := checkUpstream(c.Upstream)
		if err != nil {
			return fmt.Errorf("field Upstream: %w: %w", err, ErrInvalidConfig)
		}
		c.Upstream = u
	}
	hosts := make(map[string]netip.Addr, len(c.Hosts))
	for name, a := range c.Hosts {
		n, err := normalizeHost(name, false)
		if err != nil {
			return fmt.Errorf("field Hosts: key %q: %w: %w", name, err, ErrInvalidConfig)
		}
		if _, err := netip.ParseAddr(n); err == nil {
			return fmt.Errorf("field Hosts: key %q is an IP address, not a name: %w", name, ErrInvalidConfig)
		}
		if !a.IsValid() || a.Zone() != "" {
			return fmt.Errorf("field Hosts[%q]: %q is not an address without zone: %w", name, a, ErrInvalidConfig)
		}
		hosts[n] = a
	}
	c.Hosts = hosts
	if c.Resolver == nil {
		c.Resolver = unmappingResolver{net.DefaultResolver}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.OnDecision == nil {
		c.OnDecision = func(Event) {}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// unmappingResolver undoes net.Resolver's habit of returning IPv4 results in
// their 16-byte (IPv4-mapped) form, so they compare equal to AllowAddrs.
type unmappingResolver struct{ r *net.Resolver }

// LookupNetIP resolves host and unmaps IPv4-mapped results.
func (u unmappingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, err := u.r.LookupNetIP(ctx, network, host)
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, err
}

// policyBox holds a Policy for atomic.Pointer.
type policyBox struct{ p Policy }

// Proxy is the egress proxy: one Listener per session, sharing a policy.
type Proxy struct {
	cfg    Config
	allow  map[netip.AddrPort]bool
	policy atomic.Pointer[policyBox]

	mu        sync.Mutex
	closed    bool
	listeners map[*Listener]struct{}
}

// New validates cfg and returns a Proxy with no listeners.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("egress config: %w", err)
	}
	p := &Proxy{
		cfg:       cfg,
		allow:     make(map[netip.AddrPort]bool, len(cfg.AllowAddrs)),
		listeners: make(map[*Listener]struct{}),
	}
	for _, ap := range cfg.AllowAddrs {
		p.allow[ap] = true
	}
	p.SetPolicy(cfg.Policy)
	return p, nil
}

// SetPolicy replaces the policy for every session at once, including
// requests already connected on running listeners (open tunnels keep the
// destination they were allowed). A nil policy denies everything with rule
// RuleNoPolicy.
func (p *Proxy) SetPolicy(pol Policy) {
	if pol == nil {
		pol = denyAll{}
	}
	p.policy.Store(&policyBox{pol})
}

// Close closes every listener and every connection they accepted or dialed.
// Open fails afterwards.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	ls := make([]*Listener, 0, len(p.listeners))
	for l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// forget removes a closed listener.
func (p *Proxy) forget(l *Listener) {
	p.mu.Lock()
	delete(p.listeners, l)
	p.mu.Unlock()
}

// report sends an event to OnDecision and the debug log.
func (p *Proxy) report(ev Event) {
	ev.Time = p.cfg.Now()
	p.cfg.OnDecision(ev)
	p.cfg.Logger.Debug("egress decision", "session", ev.Session, "method", ev.Method,
		"host", ev.Host, "port", ev.Port, "allow", ev.Allow, "rule", ev.Rule, "reason", ev.Reason)
}

// deniedError is the error of a refused dial; it wraps ErrDenied.
type deniedError struct {
	host, reason string
	status       int // HTTP status to answer with
}

func (e *deniedError) Error() string { return fmt.Sprintf("%s: %s", e.host, e.reason) }
func (e *deniedError) Unwrap() error { return ErrDenied }

// pick resolves host (an IP literal is not resolved) and returns the first
// address that is public unicast, exactly allowed with port, or allowed by
// addrs (which may be nil), with the AddressPolicy rule that allowed it. A
// deny returns a *deniedError with the rule to report; a lookup cut short by
// ctx (the listener closing, or the dial timeout) returns ctx's error.
func (p *Proxy) pick(ctx context.Context, host string, port int, addrs AddressPolicy) (addr netip.Addr, addrRule, rule string, err error) {
	var found []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		found = []netip.Addr{a}
	} else if a, ok := p.cfg.Hosts[host]; ok {
		found = []netip.Addr{a}
	} else {
		found, err = p.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		if ctx.Err() != nil {
			return netip.Addr{}, "", "", fmt.Errorf("resolve %s: %w", host, context.Cause(ctx))
		}
		if err != nil || len(found) == 0 {
			p.cfg.Logger.Info("egress resolve failed", "host", host, "err", err)
			return netip.Addr{}, "", RuleResolve, &deniedError{host: host, reason: "cannot resolve host", status: 502}
		}
	}
	for _, a := range found {
		if p.allow[netip.AddrPortFrom(a, uint16(port))] || IsPublicUnicast(a) {
			return a, "", "", nil
		}
	}
	if addrs != nil {
		for _, a := range found {
			if !dialable(a) {
				continue
			}
			if ok, r := addrs.AllowAddr(host, a, port); ok {
				return a, r, "", nil
			}
		}
	}
	reason := fmt.Sprintf("address %s is %s", found[0], addrClass(found[0]))
	if len(found) > 1 {
		reason += fmt.Sprintf(" (and %d more, none public)", len(found)-1)
	}
	return netip.Addr{}, "", RuleAddress, &deniedError{host: host, reason: reason, status: 403}
}

// dialable reports whether an AddressPolicy may allow a: a unicast address
// without zone. Unspecified, multicast and broadcast addresses are never
// dialed, whatever a policy says.
func dialable(a netip.Addr) bool {
	u := a.Unmap()
	return a.IsValid() && a.Zone() == "" && !u.IsUnspecified() && !u.IsMulticast() &&
		u != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
