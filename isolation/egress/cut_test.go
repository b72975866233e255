package egress

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

// TestCutHost opens tunnels and a WebSocket to two hosts on two listeners
// and cuts one host: its connections end on every listener, the other
// host's stay open.
func TestCutHost(t *testing.T) {
	s := startEcho(t, false)
	o := startOrigin(t, false)
	port := s.addrPort().Port()
	ohp := fmt.Sprintf("www.cut.shoji.test:%d", o.port())
	pol, err := NewStaticPolicy([]string{
		fmt.Sprintf("cut.shoji.test:%d", port), fmt.Sprintf("keep.shoji.test:%d", port),
		fmt.Sprintf("notcut.shoji.test:%d", port), ohp,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, l1, _ := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{s.addrPort(), o.addrPort()},
		Hosts: map[string]netip.Addr{
			"cut.shoji.test": loopback, "keep.shoji.test": loopback,
			"notcut.shoji.test": loopback, "www.cut.shoji.test": loopback,
		},
	})
	l2, err := p.Open("sess-2")
	if err != nil {
		t.Fatal(err)
	}
	tunnel := func(l *Listener, host string) *tunnelConn {
		t.Helper()
		resp, _, c, br := connect(t, l, fmt.Sprintf("%s:%d", host, port))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %s: status %d", host, resp.StatusCode)
		}
		roundTrip(t, c, br, "ping")
		return &tunnelConn{c: c, br: br}
	}
	cut1, cut2 := tunnel(l1, "cut.shoji.test"), tunnel(l2, "cut.shoji.test")
	keep, look := tunnel(l1, "keep.shoji.test"), tunnel(l2, "notcut.shoji.test")
	wc, wbr := wsAbsoluteForm(t, l2, ohp, http.StatusSwitchingProtocols)
	wsWriteText(t, wc, "hi")
	if got := wsReadText(t, wbr); got != "hi" {
		t.Fatalf("echo %q", got)
	}

	for _, tc := range []struct {
		host string
		want int
	}{
		{"", 0},
		{"no such host", 0},
		{"shoji.test.example", 0},
		// "CUT.shoji.test." normalises to cut.shoji.test: both tunnels and
		// the WebSocket to www.cut.shoji.test, not notcut.shoji.test.
		{"CUT.shoji.test.", 3},
		{"cut.shoji.test", 0}, // already cut
	} {
		if got := p.CutHost(tc.host); got != tc.want {
			t.Errorf("CutHost(%q) = %d, want %d", tc.host, got, tc.want)
		}
	}
	expectCut(t, cut1.br)
	expectCut(t, cut2.br)
	expectCut(t, wbr)
	roundTrip(t, keep.c, keep.br, "still here")
	roundTrip(t, look.c, look.br, "still here")
}

// tunnelConn is the client side of an open CONNECT tunnel.
type tunnelConn struct {
	c  net.Conn
	br *bufio.Reader
}
