package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation"
)

// ErrInvalidSession is returned by Open for an empty session ID.
var ErrInvalidSession = errors.New("invalid session ID")

// maxEventTarget bounds the raw target text put in an Event.
const maxEventTarget = 256

// Listener is one session's proxy endpoint on 127.0.0.1. Every connection
// that comes in on it is attributed to the session it was opened for, and
// only the session's browser may use it (see SetOwner).
type Listener struct {
	p       *Proxy
	session string
	ln      net.Listener
	srv     *http.Server
	tr      *http.Transport
	rp      *httputil.ReverseProxy
	dialer  net.Dialer
	addrs   AddressPolicy // nil: only Config.AllowAddrs
	// ctx is the base of every request's context; cancel cuts in-flight
	// forwards and upgraded connections on Close.
	ctx    context.Context
	cancel context.CancelFunc

	// policy is the session's own policy; nil means the proxy's.
	policy atomic.Pointer[policyBox]
	// owner is the process group of the session's browser: 0 while none is
	// set, -1 after SetOwner with a non-positive group (refuse all).
	owner atomic.Int64
	// ancestor is the process whose descendants may connect while no owner
	// is set: this process. Tests change it.
	ancestor int
	// peerHint is the pid that held the last admitted connection, tried
	// first next time. It only orders the search: every connection is
	// checked in full.
	peerHint atomic.Int64
	// isolated: ln is inside the browser's own network namespace.
	isolated bool

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{} // accepted and dialed, until closed
	// wg counts the Serve goroutine and every running handler; tunnels run
	// inside their handler, so Close waits for them too.
	wg sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// ListenerOptions configure one session's Listener. The zero value uses the
// proxy's policy, allows no address beyond Config.AllowAddrs, and has no
// owner yet.
type ListenerOptions struct {
	// Policy decides which hosts and ports this session may reach. Nil means
	// the proxy's policy, following Proxy.SetPolicy. It can be replaced with
	// Listener.SetPolicy; an implementation may also read a live policy at
	// each call, so that changes apply to the next request at once.
	Policy Policy
	// Addrs may allow this session addresses that are not public unicast.
	// Nil allows only Config.AllowAddrs.
	Addrs AddressPolicy
	// OwnerPGID, when positive, is the process group of the session's
	// browser, as SetOwner sets it. Zero means no owner yet.
	OwnerPGID int
	// Isolated, if set, is served instead of a fresh 127.0.0.1 listener: a
	// loopback listener made inside a network namespace that only the
	// session's browser runs in (isolation/netns). See admitIsolated for
	// how its connections are admitted. Close closes it.
	Isolated net.Listener

	// ancestor replaces this process as the one whose descendants may
	// connect before SetOwner. Zero means this process; tests set it.
	ancestor int
}

// Open starts serving on a fresh 127.0.0.1 listener for sessionID with the
// proxy's policy; it is OpenWith with zero options.
func (p *Proxy) Open(sessionID string) (*Listener, error) {
	return p.OpenWith(sessionID, ListenerOptions{})
}

// OpenWith starts serving on a fresh 127.0.0.1 listener for sessionID. Point
// the session's browser at Listener.Addr with --proxy-server, then call
// SetOwner with the browser's process group as soon as it runs.
func (p *Proxy) OpenWith(sessionID string, opts ListenerOptions) (*Listener, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("open: %w", ErrInvalidSession)
	}
	ln, err := listen(opts.Isolated)
	if err != nil {
		return nil, fmt.Errorf("open listener for session %s: %w", sessionID, err)
	}
	cfg := p.cfg
	errLog := slog.NewLogLogger(cfg.Logger.With("session", sessionID).Handler(), slog.LevelWarn)
	l := &Listener{
		p:        p,
		session:  sessionID,
		ln:       ln,
		dialer:   net.Dialer{Timeout: cfg.DialTimeout},
		addrs:    opts.Addrs,
		ancestor: os.Getpid(),
		conns:    make(map[*trackedConn]struct{}),
		isolated: opts.Isolated != nil,
	}
	if opts.ancestor != 0 {
		l.ancestor = opts.ancestor
	}
	if opts.Policy != nil {
		l.policy.Store(&policyBox{opts.Policy})
	}
	if opts.OwnerPGID > 0 {
		l.owner.Store(int64(opts.OwnerPGID))
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.tr = &http.Transport{
		// Every request was checked before the Transport sees it; the dial
		// goes to the address checked, or to the upstream proxy.
		DialContext: l.dialChecked,
		// One dial, and so one check and one Event, per request.
		DisableKeepAlives: true,
		// Pass the browser's Accept-Encoding through untouched.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	// Without Upstream, Proxy stays nil: never chain to HTTP_PROXY from the
	// environment.
	if cfg.Upstream != nil {
		l.tr.Proxy = http.ProxyURL(cfg.Upstream)
	}
	l.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      l.tr,
		FlushInterval:  -1,
		ErrorLog:       errLog,
		ErrorHandler:   l.forwardError,
		ModifyResponse: stripProxyHeaders,
	}
	l.srv = &http.Server{
		Handler:                      http.HandlerFunc(l.serve),
		ReadHeaderTimeout:            cfg.HeaderTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxHeaderBytes:               cfg.MaxHeaderBytes,
		ErrorLog:                     errLog,
		BaseContext:                  func(net.Listener) context.Context { return l.ctx },
		DisableGeneralOptionsHandler: true,
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := l.srv.Serve(trackingListener{ln, l}); !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Warn("egress listener stopped", "session", sessionID, "err", err)
		}
	}()
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.listeners[l] = struct{}{}
	}
	p.mu.Unlock()
	if closed {
		l.Close()
		return nil, fmt.Errorf("open listener for session %s: %w", sessionID, ErrClosed)
	}
	return l, nil
}

// Addr returns the listener's host:port.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Session returns the session ID the listener was opened for.
func (l *Listener) Session() string { return l.session }

// SetPolicy replaces this session's policy for every request from now on;
// open tunnels keep the destination they were allowed. Nil returns the
// session to the proxy's policy.
func (l *Listener) SetPolicy(pol Policy) {
	if pol == nil {
		l.policy.Store(nil)
		return
	}
	l.policy.Store(&policyBox{pol})
}

// decide asks the session's policy, or the proxy's.
func (l *Listener) decide(host string, port int) Decision {
	if b := l.policy.Load(); b != nil {
		return b.p.Decide(host, port)
	}
	return l.p.policy.Load().p.Decide(host, port)
}

// SetOwner makes the process group pgid — the session's browser, which runs
// in a group of its own — the only one allowed to use this listener. The
// broker calls it as soon as the browser's process exists.
//
// Each accepted connection is traced, before its first byte is read, to the
// process that holds its other end (Linux only: the socket's inode from the
// kernel, then the processes' open files in /proc); nothing about a peer is
// cached. A connection from any other process is closed and reported with
// rule RuleNotOwner. Until SetOwner is called, connections from this process
// and its descendants (the browsers it started) are accepted, so that a
// browser can start; every other process is refused. SetOwner also closes
// connections accepted earlier from processes outside pgid. A pgid that is
// not positive refuses every connection from then on. On other systems no
// peer can be traced and every connection is refused.
func (l *Listener) SetOwner(pgid int) {
	if pgid <= 0 {
		pgid = -1
	}
	l.owner.Store(int64(pgid))
	var stale []*trackedConn
	l.mu.Lock()
	for c := range l.conns {
		if c.client && c.peerGroup != 0 && c.peerGroup != pgid {
			stale = append(stale, c)
		}
	}
	l.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// admit checks that the process at the other end of the accepted
// connection c may use the listener. A refused connection is reported,
// logged and closed.
func (l *Listener) admit(c *trackedConn) error {
	if l.isolated {
		return l.admitIsolated(c)
	}
	owner := int(l.owner.Load())
	pr, err := lookupPeer(addrPortOf(c.LocalAddr()), addrPortOf(c.RemoteAddr()), owner, l.ancestor, int(l.peerHint.Load()))
	if err == nil {
		l.mu.Lock()
		c.peerGroup = pr.pgid
		l.mu.Unlock()
		// SetOwner may have run since owner was read, and swept before
		// peerGroup was set.
		if now := int(l.owner.Load()); now != owner && pr.pgid != now {
			err = fmt.Errorf("process %d in group %d: %w", pr.pid, pr.pgid, errOtherGroup)
		}
	}
	if err != nil {
		l.p.report(Event{Session: l.session, Rule: RuleNotOwner, Reason: ReasonNotOwner})
		l.p.cfg.Logger.Warn("egress refused a connection", "session", l.session, "peer", c.RemoteAddr().String(), "err", err)
		c.Close()
		return fmt.Errorf("%w: %w", ErrNotOwner, err)
	}
	l.peerHint.Store(int64(pr.pid))
	return nil
}

// addrPortOf returns the address and port of a TCP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Close stops the listener and closes every connection it accepted or
// dialed, open tunnels and WebSockets included: a session that ends loses
// its network at once. It waits for the listener's handlers to return.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		conns := make([]*trackedConn, 0, len(l.conns))
		for c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
		l.cancel()
		l.closeErr = l.srv.Close()
		for _, c := range conns {
			c.Close()
		}
		l.tr.CloseIdleConnections()
		l.wg.Wait()
		l.p.forget(l)
	})
	return l.closeErr
}

// enter registers a handler with wg, unless the listener is closed.
func (l *Listener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// serve handles one request: CONNECT, or an absolute-form http:// request.
func (l *Listener) serve(w http.ResponseWriter, r *http.Request) {
	if !l.enter() {
		http.Error(w, "shoji egress: session closed", http.StatusServiceUnavailable)
		return
	}
	defer l.wg.Done()
	if r.Method == http.MethodConnect {
		l.serveConnect(w, r)
		return
	}
	l.serveForward(w, r)
}

// serveForward forwards an absolute-form http:// request (WebSocket
// upgrades included) through the checked dial.
func (l *Listener) serveForward(w http.ResponseWriter, r *http.Request) {
	u := r.URL
	if !u.IsAbs() || u.Scheme != "http" || u.Host == "" || u.Opaque != "" {
		l.refuse(w, r.Method, &deniedError{host: "", reason: "not a proxy request", status: http.StatusBadRequest})
		return
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	if _, _, err := Normalize(hostport); err != nil {
		l.refuse(w, r.Method, &deniedError{host: eventTarget(u.Host), reason: "invalid target", status: http.StatusBadRequest})
		return
	}
	tg, err := l.check(r.Context(), r.Method, hostport)
	if err != nil {
		l.answerDialError(w, r, u.Hostname(), err)
		return
	}
	out := r.WithContext(context.WithValue(r.Context(), checkedKey{}, tg))
	cu := *u
	cu.Host, cu.User = urlHost(tg.host, tg.port), nil
	out.URL = &cu
	l.rp.ServeHTTP(w, out)
}

// checkedKey carries a request's checked target to the Transport's dial.
type checkedKey struct{}

// dialChecked is the Transport's dial: to the upstream proxy when there is
// one (the Transport's only proxy, so addr is its address), or else to the
// address the request's check allowed. A request that was not checked is
// never dialed.
func (l *Listener) dialChecked(ctx context.Context, _, _ string) (net.Conn, error) {
	tg, ok := ctx.Value(checkedKey{}).(target)
	if !ok {
		return nil, errors.New("egress: dial without a checked target")
	}
	if !l.enter() {
		return nil, ErrClosed
	}
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, l.p.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	if up := l.p.cfg.Upstream; up != nil {
		c, err := l.dialer.DialContext(ctx, "tcp", up.Host)
		if err != nil {
			return nil, fmt.Errorf("dial upstream proxy %s: %w: %w", up.Redacted(), err, ErrUpstream)
		}
		return l.trackTarget(c, tg)
	}
	return l.dialTarget(ctx, tg)
}

// answerDialError answers a request whose check or dial failed.
func (l *Listener) answerDialError(w http.ResponseWriter, r *http.Request, target string, err error) {
	var de *deniedError
	if errors.As(err, &de) {
		writeDenied(w, de)
		return
	}
	if r.Context().Err() == nil {
		l.p.cfg.Logger.Info("egress upstream failed", "session", l.session, "target", target, "err", err)
	}
	writeText(w, http.StatusBadGateway, "shoji could not reach "+target)
}

// refuse reports a request refused before any dial and answers it.
func (l *Listener) refuse(w http.ResponseWriter, method string, de *deniedError) {
	l.p.report(Event{Session: l.session, Method: method, Host: de.host, Rule: RuleBadRequest, Reason: de.reason})
	writeDenied(w, de)
}

// rewrite prepares the outbound request: the Host header follows the
// checked URL, and Proxy-* headers stay here. ReverseProxy has already
// removed hop-by-hop headers and, with Rewrite, adds no X-Forwarded-*.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.Host = ""
	deleteProxyHeaders(pr.Out.Header)
}

// stripProxyHeaders removes Proxy-* headers from a response.
func stripProxyHeaders(resp *http.Response) error {
	deleteProxyHeaders(resp.Header)
	return nil
}

// deleteProxyHeaders deletes every header whose name starts with "Proxy-".
func deleteProxyHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Proxy-") {
			delete(h, k)
		}
	}
}

// forwardError answers a forward that failed: the proxy's deny, or an
// upstream that could not be reached.
func (l *Listener) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	var de *deniedError
	if errors.As(err, &de) {
		writeDenied(w, de)
		return
	}
	var ue *url.Error // never log a URL: its query may carry tokens
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if r.Context().Err() == nil {
		l.p.cfg.Logger.Info("egress upstream failed", "session", l.session, "host", r.URL.Hostname(), "err", err)
	}
	writeText(w, http.StatusBadGateway, "shoji could not reach "+r.URL.Hostname())
}

// serveConnect checks and dials a CONNECT target and splices the tunnel.
func (l *Listener) serveConnect(w http.ResponseWriter, r *http.Request) {
	if r.URL.Host == "" || r.RequestURI != r.URL.Host {
		l.refuse(w, r.Method, &deniedError{host: eventTarget(r.RequestURI), reason: "not a host:port CONNECT target", status: http.StatusBadRequest})
		return
	}
	up, err := l.dial(r.Context(), r.Method, r.URL.Host)
	if err != nil {
		l.answerDialError(w, r, r.URL.Host, err)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeText(w, http.StatusInternalServerError, "shoji egress: cannot tunnel")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		l.p.cfg.Logger.Warn("egress hijack failed", "session", l.session, "err", err)
		return
	}
	defer conn.Close()
	idle := l.p.cfg.IdleTimeout
	conn.SetDeadline(time.Now().Add(idle))
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	// The client may have sent its first bytes (a TLS ClientHello) already.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	splice(conn, up, idle)
}

// target is a request target the proxy checked and allowed: the
// normalised host and port and the address picked for it.
type target struct {
	host string
	port int
	addr netip.Addr
}

// check is the one check of every request: normalise the target, ask the
// policy, resolve once, pick an address that is public unicast or allowed,
// and report the decision. A deny returns a *deniedError.
func (l *Listener) check(ctx context.Context, method, hostport string) (target, error) {
	if !l.enter() {
		return target{}, ErrClosed
	}
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, l.p.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	host, port, err := Normalize(hostport)
	if err != nil {
		de := &deniedError{host: eventTarget(hostport), reason: "invalid target", status: http.StatusBadRequest}
		l.p.report(Event{Session: l.session, Method: method, Host: de.host, Rule: RuleBadRequest, Reason: de.reason})
		return target{}, de
	}
	ev := Event{Session: l.session, Method: method, Host: host, Port: port}
	if isolation.IsBackgroundHost(host) {
		// Before the policy: a permissive profile must not let it through to
		// a resolver either.
		ev.Rule, ev.Reason, ev.Background = RuleBackground, ReasonBackground, true
		l.p.report(ev)
		return target{}, &deniedError{host: host, reason: ev.Reason, status: http.StatusForbidden}
	}
	d := l.decide(host, port)
	ev.Rule, ev.Reason = d.Rule, d.Reason
	if !d.Allow {
		if ev.Reason == "" {
			ev.Reason = "denied by policy"
		}
		l.p.report(ev)
		return target{}, &deniedError{host: host, reason: ev.Reason, status: http.StatusForbidden}
	}
	addr, addrRule, rule, err := l.p.pick(ctx, host, port, l.addrs)
	var de *deniedError
	if errors.As(err, &de) {
		ev.Rule, ev.Reason = rule, de.reason
		l.p.report(ev)
		return target{}, err
	}
	if err != nil {
		return target{}, err
	}
	ev.Allow, ev.Addr, ev.AddrRule = true, addr, addrRule
	l.p.report(ev)
	return target{host: host, port: port, addr: addr}, nil
}

// dial checks a CONNECT target and connects to it: directly to the address
// checked, or through the upstream proxy. Like every dial (the Transport
// runs its dials detached from the request's cancellation), it registers
// with wg and stops when the listener closes.
func (l *Listener) dial(ctx context.Context, method, hostport string) (net.Conn, error) {
	tg, err := l.check(ctx, method, hostport)
	if err != nil {
		return nil, err
	}
	if !l.enter() {
		return nil, ErrClosed
	}
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, l.p.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	if l.p.cfg.Upstream != nil {
		c, err := l.dialUpstream(ctx, tg)
		if err != nil {
			return nil, err
		}
		return l.trackTarget(c, tg)
	}
	return l.dialTarget(ctx, tg)
}

// dialTarget connects to exactly the address tg was checked with.
func (l *Listener) dialTarget(ctx context.Context, tg target) (net.Conn, error) {
	ap := netip.AddrPortFrom(tg.addr.Unmap().WithZone(""), uint16(tg.port))
	c, err := l.dialer.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", tg.host, ap, err)
	}
	return l.trackTarget(c, tg)
}

// track registers c so Close can cut it; a listener already closed closes
// c at once.
func (l *Listener) track(c net.Conn, idle time.Duration) (*trackedConn, error) {
	tc := &trackedConn{Conn: c, l: l, idle: idle}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.conns[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		c.Close()
		return nil, ErrClosed
	}
	return tc, nil
}

// untrack forgets a closed connection.
func (l *Listener) untrack(c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// writeDenied answers a refused request with a short plain-text page.
func writeDenied(w http.ResponseWriter, de *deniedError) {
	if de.status == http.StatusBadGateway {
		writeText(w, de.status, fmt.Sprintf("shoji could not reach %s — %s", de.host, de.reason))
		return
	}
	host := de.host
	if host == "" {
		host = "(no host)"
	}
	writeText(w, de.status, fmt.Sprintf("shoji blocked this request: %s — %s", host, de.reason))
}

// writeText writes a plain-text response that is never sniffed or cached.
func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// urlHost is the URL host for a normalised host and port, without the
// default port 80.
func urlHost(host string, port int) string {
	if port == 80 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return joinHostPort(host, port)
}

// eventTarget bounds raw target text for an Event: valid UTF-8 (invalid
// bytes become U+FFFD), cut between characters.
func eventTarget(s string) string {
	return truncate.Bytes(s, maxEventTarget)
}

// trackingListener registers every accepted connection with its Listener.
type trackingListener struct {
	net.Listener
	l *Listener
}

// Accept accepts and registers a connection.
func (t trackingListener) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, err := t.l.track(c, 0)
	if err != nil {
		return nil, err
	}
	t.l.mu.Lock() // SetOwner reads client under mu: tc is registered already
	tc.client = true
	t.l.mu.Unlock()
	return tc, nil
}

// trackedConn is a connection its Listener can cut. With idle > 0, each
// Read and Write pushes its deadline idle further out, so a connection with
// no traffic either way ends. A client connection (accepted from a browser)
// is admitted by Listener.admit before its first byte is read or written.
type trackedConn struct {
	net.Conn
	l      *Listener
	idle   time.Duration
	client bool // set before the connection is handed to the server
	// host is the normalised target host of a dialed connection, "" for
	// an accepted one; set under l.mu, read by Proxy.CutHost.
	host string

	admitOnce sync.Once
	admitErr  error
	// peerGroup is the process group of the admitted peer, 0 before
	// admission; guarded by l.mu.
	peerGroup int

	closeOnce sync.Once
	closeErr  error
}

// admitted runs the owner check once, for a client connection.
func (c *trackedConn) admitted() error {
	if !c.client {
		return nil
	}
	c.admitOnce.Do(func() { c.admitErr = c.l.admit(c) })
	return c.admitErr
}

// Read reads, extending the idle deadline first.
func (c *trackedConn) Read(b []byte) (int, error) {
	if err := c.admitted(); err != nil {
		return 0, err
	}
	if c.idle > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(b)
}

// Write writes, extending the idle deadline first.
func (c *trackedConn) Write(b []byte) (int, error) {
	if err := c.admitted(); err != nil {
		return 0, err
	}
	if c.idle > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Write(b)
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() {
		c.l.untrack(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// CloseWrite half-closes a TCP connection.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// splice copies both ways between client and upstream until both sides are
// done, an error occurs, or neither side sends anything for idle.
func splice(client, upstream net.Conn, idle time.Duration) {
	touch := func() {
		d := time.Now().Add(idle)
		client.SetDeadline(d)
		upstream.SetDeadline(d)
	}
	touch()
	// done gets one result per direction; its capacity of two means a
	// copier never blocks on it.
	done := make(chan error, 2)
	go pipe(upstream, client, touch, done)
	go pipe(client, upstream, touch, done)
	if err := <-done; err != nil {
		client.Close()
		upstream.Close()
	}
	<-done
}

// errNoHalfClose ends a tunnel whose destination cannot be half-closed.
var errNoHalfClose = errors.New("cannot half-close")

// pipe copies src to dst, calling touch on traffic. At EOF it half-closes
// dst so the other direction can finish.
func pipe(dst, src net.Conn, touch func(), done chan<- error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			touch()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				done <- werr
				return
			}
		}
		if errors.Is(err, io.EOF) {
			cw, ok := dst.(interface{ CloseWrite() error })
			if !ok || cw.CloseWrite() != nil {
				done <- errNoHalfClose
				return
			}
			done <- nil
			return
		}
		if err != nil {
			done <- err
			return
		}
	}
}
