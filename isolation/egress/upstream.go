package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxUpstreamHeaderBytes bounds the upstream's answer to a CONNECT.
const maxUpstreamHeaderBytes = 64 << 10

// checkUpstream validates Config.Upstream and returns a copy of it.
func checkUpstream(u *url.URL) (*url.URL, error) {
	c := *u
	if c.User != nil {
		user := *c.User
		c.User = &user
	}
	switch {
	case c.Scheme != "http":
		return nil, fmt.Errorf("scheme %q is not http", c.Scheme)
	case c.Opaque != "" || c.Host == "":
		return nil, errors.New("want http://host:port")
	case c.Path != "" && c.Path != "/" || c.RawQuery != "" || c.Fragment != "":
		return nil, errors.New("path, query and fragment not allowed, want http://host:port")
	case c.Port() == "":
		return nil, errors.New("port missing, want http://host:port")
	}
	if _, err := parsePort(c.Port()); err != nil {
		return nil, fmt.Errorf("port %q: %w", c.Port(), err)
	}
	if c.Hostname() == "" {
		return nil, errors.New("host missing, want http://host:port")
	}
	c.Path = ""
	return &c, nil
}

// proxyAuth is the Proxy-Authorization value for u's user info, or "".
func proxyAuth(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	pass, _ := u.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
}

// upstreamTarget is the authority to ask the upstream for: the checked
// address, or the name with UpstreamByName.
func (p *Proxy) upstreamTarget(tg target) string {
	if p.cfg.UpstreamByName {
		return joinHostPort(tg.host, tg.port)
	}
	return netip.AddrPortFrom(tg.addr.Unmap().WithZone(""), uint16(tg.port)).String()
}

// dialUpstream opens a tunnel to tg through the upstream proxy with CONNECT
// and returns it once the upstream answered 200. ctx bounds the whole
// exchange.
func (l *Listener) dialUpstream(ctx context.Context, tg target) (net.Conn, error) {
	up := l.p.cfg.Upstream
	c, err := l.dialer.DialContext(ctx, "tcp", up.Host)
	if err != nil {
		return nil, fmt.Errorf("dial upstream proxy %s: %w: %w", up.Redacted(), err, ErrUpstream)
	}
	authority := l.p.upstreamTarget(tg)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", authority, authority)
	if a := proxyAuth(up); a != "" {
		fmt.Fprintf(&sb, "Proxy-Authorization: %s\r\n", a)
	}
	sb.WriteString("\r\n")
	if _, err := io.WriteString(c, sb.String()); err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s via upstream: %w: %w", authority, err, ErrUpstream)
	}
	// The answer's size is capped; bytes of the tunnel read with it are
	// handed on in front of the connection.
	br := bufio.NewReader(&capReader{r: c, n: maxUpstreamHeaderBytes})
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s via upstream: read answer: %w: %w", authority, err, ErrUpstream)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s via upstream: status %d: %w", authority, resp.StatusCode, ErrUpstream)
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s via upstream: %w", authority, context.Cause(ctx))
	}
	c.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		return &prefixConn{Conn: c, prefix: append([]byte(nil), early...)}, nil
	}
	return c, nil
}

// capReader reads at most n bytes from r, then fails.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(b []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("upstream answer too large")
	}
	if int64(len(b)) > c.n {
		b = b[:c.n]
	}
	n, err := c.r.Read(b)
	c.n -= int64(n)
	return n, err
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// Read returns the prefix first, then reads from the connection.
func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite half-closes the connection.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
