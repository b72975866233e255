package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/isolation"
)

// protoConn is one viewer of a shoji broker, speaking the viewer protocol
// (docs/protocol.md) as the viewer page does: it logs in with POST
// /api/login, opens /api/stream with the session cookie and the public
// origin, says hello with its viewport, and receives JPEG frames as binary
// messages. It implements frameDriver.
//
// Goroutines: one reader per connection, which timestamps frames as they
// arrive and hands them to q; it ends when the connection does.
type protoConn struct {
	base   *url.URL // the broker's public URL
	user   string
	pw     string
	vp     isolation.Viewport
	hc     *http.Client
	dialer *websocket.Dialer
	q      *frameQueue

	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time

	mu     sync.Mutex
	ready  bool
	errors []string // "error" messages of the broker
	status string   // the last "status" state
	closed chan struct{}
}

// newProtoConn prepares a viewer of the broker at base as user. local, if
// set, is the source address of its connections: the broker limits logins
// per terminal address, so the bench spreads its many logins over
// loopback addresses.
func newProtoConn(base, user, pw string, local net.IP, vp isolation.Viewport) (*protoConn, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("broker URL %q: want scheme://host:port", base)
	}
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	tr := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 2}
	return &protoConn{
		base:   u,
		user:   user,
		pw:     pw,
		vp:     vp,
		hc:     &http.Client{Jar: jar, Transport: tr, Timeout: 60 * time.Second},
		dialer: &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 30 * time.Second},
		q:      newFrameQueue(),
		closed: make(chan struct{}),
	}, nil
}

// origin is the broker's public origin, which the stream's Origin must be.
func (c *protoConn) origin() string { return c.base.Scheme + "://" + c.base.Host }

// post sends a JSON POST as the viewer page would.
func (c *protoConn) post(ctx context.Context, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", c.origin())
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// login logs in with the user's password and, as the viewer page does,
// accepts the pledge in force when the user has not yet: the broker refuses
// the stream until then.
func (c *protoConn) login(ctx context.Context) error {
	if err := c.post(ctx, "/api/login", map[string]string{"username": c.user, "password": c.pw}); err != nil {
		return fmt.Errorf("log in as %s: %w", c.user, err)
	}
	var s struct {
		PledgeAccepted bool   `json:"pledgeAccepted"`
		PledgeVersion  string `json:"pledgeVersion"`
	}
	if err := c.get(ctx, "/api/session", &s); err != nil {
		return fmt.Errorf("log in as %s: %w", c.user, err)
	}
	if !s.PledgeAccepted {
		if err := c.post(ctx, "/api/pledge", map[string]string{"version": s.PledgeVersion}); err != nil {
			return fmt.Errorf("accept the pledge as %s: %w", c.user, err)
		}
	}
	return nil
}

// get reads a JSON answer into v.
func (c *protoConn) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath(path).String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// logout logs out, which ends the user's session.
func (c *protoConn) logout(ctx context.Context) error {
	return c.post(ctx, "/api/logout", nil)
}

// connect opens the stream and says hello; frames then arrive in q. The
// broker starts (or reattaches) the user's browser on hello.
func (c *protoConn) connect(ctx context.Context) error {
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[c.base.Scheme]
	u.Path = "/api/stream"
	h := http.Header{"Origin": {c.origin()}}
	var cookies []string
	for _, ck := range c.hc.Jar.Cookies(c.base) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	ws, resp, err := c.dialer.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("open the stream: %w (%s)", err, resp.Status)
		}
		return fmt.Errorf("open the stream: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	c.ws = ws
	go c.read()
	return c.send(ctx, map[string]any{"type": "hello", "version": 1, "width": c.vp.Width, "height": c.vp.Height, "dpr": c.vp.DPR})
}

// read receives messages until the connection ends.
func (c *protoConn) read() {
	defer close(c.closed)
	for {
		typ, data, err := c.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				err = fmt.Errorf("the broker closed the stream: %d %s", ce.Code, ce.Text)
			}
			c.q.end(err)
			return
		}
		if typ == websocket.BinaryMessage {
			c.q.push(frame{at: now, data: data})
			continue
		}
		var m struct {
			Type    string `json:"type"`
			State   string `json:"state"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		c.mu.Lock()
		switch m.Type {
		case "ready":
			c.ready = true
		case "status":
			c.status = m.State
		case "error":
			c.errors = append(c.errors, m.Message)
		}
		c.mu.Unlock()
	}
}

// send writes one JSON message.
func (c *protoConn) send(ctx context.Context, msg any) error {
	if c.ws == nil {
		return errors.New("not connected")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.ws.SetWriteDeadline(deadline)
	if err := c.ws.WriteJSON(msg); err != nil {
		return fmt.Errorf("send to the broker: %w", err)
	}
	return nil
}

// brokerErrors returns the "error" messages received so far.
func (c *protoConn) brokerErrors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errors...)
}

// close closes the connection (the session stays) and waits for the
// reader.
func (c *protoConn) close() {
	if c.ws == nil {
		return
	}
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
	<-c.closed
	c.hc.CloseIdleConnections()
}

func (c *protoConn) press(ctx context.Context, in gesture) error {
	switch in.kind {
	case inClick:
		return c.send(ctx, map[string]any{"type": "mouse", "action": "down", "x": in.x, "y": in.y, "button": "left", "buttons": 1, "clicks": 1, "mods": 0})
	case inKey:
		return c.send(ctx, map[string]any{"type": "key", "action": "down", "key": in.key.key, "code": in.key.code, "keyCode": in.key.keyCode, "mods": 0, "repeat": false, "location": 0})
	case inIME:
		return c.send(ctx, map[string]any{"type": "ime", "action": "commit", "text": in.commit, "selStart": 0, "selEnd": 0})
	}
	return fmt.Errorf("unknown input kind %d", in.kind)
}

func (c *protoConn) release(ctx context.Context, in gesture) error {
	switch in.kind {
	case inClick:
		return c.send(ctx, map[string]any{"type": "mouse", "action": "up", "x": in.x, "y": in.y, "button": "left", "buttons": 0, "clicks": 1, "mods": 0})
	case inKey:
		return c.send(ctx, map[string]any{"type": "key", "action": "up", "key": in.key.key, "code": in.key.code, "keyCode": in.key.keyCode, "mods": 0, "repeat": false, "location": 0})
	}
	return nil
}

func (c *protoConn) compose(ctx context.Context, text string) error {
	n := len([]rune(text)) // the compositions used here are all in the BMP
	return c.send(ctx, map[string]any{"type": "ime", "action": "update", "text": text, "selStart": n, "selEnd": n})
}

func (c *protoConn) wheel(ctx context.Context, x, y, dy float64) error {
	return c.send(ctx, map[string]any{"type": "wheel", "x": x, "y": y, "dx": 0, "dy": dy, "mode": 0, "mods": 0})
}

func (c *protoConn) navigate(ctx context.Context, u string) error {
	before := len(c.brokerErrors())
	if err := c.send(ctx, map[string]any{"type": "nav", "action": "go", "url": u}); err != nil {
		return err
	}
	// A refused navigation is answered with an error message at once.
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if errs := c.brokerErrors(); len(errs) > before {
		return fmt.Errorf("the broker refused: %s", errs[len(errs)-1])
	}
	return nil
}

// firstFrame waits for the first frame and returns when it arrived.
func (c *protoConn) firstFrame(ctx context.Context) (time.Time, error) {
	f, err := c.q.take(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("waiting for the first frame: %w", err)
	}
	return f.at, nil
}

// dialProto logs in as user, connects and waits for the first frame.
func dialProto(ctx context.Context, base, user, pw string, local net.IP, vp isolation.Viewport) (*protoConn, error) {
	c, err := newProtoConn(base, user, pw, local, vp)
	if err != nil {
		return nil, err
	}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	if _, err := c.firstFrame(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}
