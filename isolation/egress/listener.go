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
	"strings"
	"sync"
	"time"
)

// ErrInvalidSession is returned by Open for an empty session ID.
var ErrInvalidSession = errors.New("invalid session ID")

// maxEventTarget bounds the raw target text put in an Event.
const maxEventTarget = 256

// Listener is one session's proxy endpoint on 127.0.0.1. Every connection
// that comes in on it is attributed to the session it was opened for.
type Listener struct {
	p       *Proxy
	session string
	ln      net.Listener
	srv     *http.Server
	tr      *http.Transport
	rp      *httputil.ReverseProxy
	dialer  net.Dialer
	// ctx is the base of every request's context; cancel cuts in-flight
	// forwards and upgraded connections on Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{} // accepted and dialed, until closed
	// wg counts the Serve goroutine and every running handler; tunnels run
	// inside their handler, so Close waits for them too.
	wg sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// methodKey carries the request method to the dial, for its Event.
type methodKey struct{}

// Open starts serving on a fresh 127.0.0.1 listener for sessionID. Point the
// session's browser at Listener.Addr with --proxy-server.
func (p *Proxy) Open(sessionID string) (*Listener, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("open: %w", ErrInvalidSession)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("open listener for session %s: %w", sessionID, err)
	}
	cfg := p.cfg
	errLog := slog.NewLogLogger(cfg.Logger.With("session", sessionID).Handler(), slog.LevelWarn)
	l := &Listener{
		p:       p,
		session: sessionID,
		ln:      ln,
		dialer:  net.Dialer{Timeout: cfg.DialTimeout},
		conns:   make(map[*trackedConn]struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.tr = &http.Transport{
		// Proxy is nil: never chain to HTTP_PROXY from the environment.
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			method, _ := ctx.Value(methodKey{}).(string)
			return l.dial(ctx, method, addr)
		},
		// One dial, and so one check and one Event, per request.
		DisableKeepAlives: true,
		// Pass the browser's Accept-Encoding through untouched.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
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
	host, port, err := Normalize(hostport)
	if err != nil {
		l.refuse(w, r.Method, &deniedError{host: eventTarget(u.Host), reason: "invalid target", status: http.StatusBadRequest})
		return
	}
	out := r.WithContext(context.WithValue(r.Context(), methodKey{}, r.Method))
	cu := *u
	cu.Host, cu.User = urlHost(host, port), nil
	out.URL = &cu
	l.rp.ServeHTTP(w, out)
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
		var de *deniedError
		if errors.As(err, &de) {
			writeDenied(w, de)
			return
		}
		if r.Context().Err() == nil {
			l.p.cfg.Logger.Info("egress upstream failed", "session", l.session, "target", r.URL.Host, "err", err)
		}
		writeText(w, http.StatusBadGateway, "shoji could not reach "+r.URL.Host)
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

// dial is the one checked dial of every request: normalise the target, ask
// the policy, resolve once, pick an address that is public unicast or
// exactly allowed, report the decision, and dial exactly that address.
//
// The Transport runs dials detached from the request's cancellation, so
// dial registers with wg and stops when the listener closes.
func (l *Listener) dial(ctx context.Context, method, hostport string) (net.Conn, error) {
	if !l.enter() {
		return nil, ErrClosed
	}
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, l.p.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	host, port, err := Normalize(hostport)
	if err != nil {
		de := &deniedError{host: eventTarget(hostport), reason: "invalid target", status: http.StatusBadRequest}
		l.p.report(Event{Session: l.session, Method: method, Host: de.host, Rule: RuleBadRequest, Reason: de.reason})
		return nil, de
	}
	ev := Event{Session: l.session, Method: method, Host: host, Port: port}
	d := l.p.decide(host, port)
	ev.Rule, ev.Reason = d.Rule, d.Reason
	if !d.Allow {
		if ev.Reason == "" {
			ev.Reason = "denied by policy"
		}
		l.p.report(ev)
		return nil, &deniedError{host: host, reason: ev.Reason, status: http.StatusForbidden}
	}
	addr, rule, err := l.p.pick(ctx, host, port)
	var de *deniedError
	if errors.As(err, &de) {
		ev.Rule, ev.Reason = rule, de.reason
		l.p.report(ev)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	ev.Allow, ev.Addr = true, addr
	l.p.report(ev)
	target := netip.AddrPortFrom(addr.Unmap().WithZone(""), uint16(port))
	c, err := l.dialer.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", host, target, err)
	}
	return l.track(c, l.p.cfg.IdleTimeout)
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

// eventTarget bounds raw target text for an Event.
func eventTarget(s string) string {
	if len(s) > maxEventTarget {
		s = s[:maxEventTarget]
	}
	return strings.ToValidUTF8(s, "?")
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
	return t.l.track(c, 0)
}

// trackedConn is a connection its Listener can cut. With idle > 0, each
// Read and Write pushes its deadline idle further out, so a connection with
// no traffic either way ends.
type trackedConn struct {
	net.Conn
	l    *Listener
	idle time.Duration

	closeOnce sync.Once
	closeErr  error
}

// Read reads, extending the idle deadline first.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.idle > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(b)
}

// Write writes, extending the idle deadline first.
func (c *trackedConn) Write(b []byte) (int, error) {
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
