package egress

import (
	"net"
	"strings"
)

// trackTarget registers c, dialed for the checked target tg, so that Close
// and CutHost can cut it.
func (l *Listener) trackTarget(c net.Conn, tg target) (*trackedConn, error) {
	tc, err := l.track(c, l.p.cfg.IdleTimeout)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	tc.host = tg.host
	l.mu.Unlock()
	return tc, nil
}

// CutHost closes every open connection, on every listener, that the proxy
// dialed for host or a name under it (host "example.jp" cuts
// "example.jp" and "www.example.jp", not "badexample.jp"): open tunnels,
// WebSockets and kept-alive forwards. Closing the dialed side ends the
// browser's side of a tunnel or upgraded connection too. It returns how
// many connections it cut. host is normalised like a request target; an
// invalid host cuts nothing. New connections are the policy's business:
// block the host first, then cut.
func (p *Proxy) CutHost(host string) int {
	h, _, err := Normalize(strings.TrimSpace(host) + ":443")
	if err != nil || h == "" {
		return 0
	}
	p.mu.Lock()
	ls := make([]*Listener, 0, len(p.listeners))
	for l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	var cut []*trackedConn
	for _, l := range ls {
		l.mu.Lock()
		for c := range l.conns {
			if c.host != "" && (c.host == h || strings.HasSuffix(c.host, "."+h)) {
				cut = append(cut, c)
			}
		}
		l.mu.Unlock()
	}
	for _, c := range cut {
		c.Close()
	}
	return len(cut)
}
