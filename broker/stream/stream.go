// Package stream serves the viewer WebSocket (docs/protocol.md): frames of
// the clinician's remote browser out, validated input in. It knows nothing of
// Chromium: it talks to an isolation.Browser through the session.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation"
)

// Principal is the authenticated user of a viewer connection.
type Principal struct {
	User string
	Role string
}

// Authenticator checks a request's session cookie. An error answers the
// upgrade with 401, or as the error says when it is a Refusal.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// Refusal is an Authenticator error that writes its own answer (status and
// body), e.g. a 403 telling the viewer to accept the usage pledge first.
type Refusal interface {
	error
	Refuse(w http.ResponseWriter)
}

// Metrics counts what the stream does. Every field is optional.
type Metrics struct {
	// FramesSent counts every frame sent, full or partial.
	FramesSent    func(n int)
	FramesDropped func(n int)
	// BytesSent counts the bytes of the frames sent.
	BytesSent func(n int)
	Viewers   func(delta int)
	// FramesPartial counts the frames of FramesSent sent as partial
	// frames, and BytesSaved how many bytes fewer than their full JPEGs
	// those took.
	FramesPartial func(n int)
	BytesSaved    func(n int)
	// FramesCopied counts the partial frames that carry a copy (a
	// scroll).
	FramesCopied func(n int)
}

// Handler serves GET /api/stream.
type Handler struct {
	// Sessions runs the browsers. Required.
	Sessions *session.Manager
	// Auth checks the session cookie. Required.
	Auth Authenticator
	// Origin is the configured public origin (scheme://host[:port]); the
	// upgrade's Origin header must equal it. Required.
	Origin string
	// Logger receives connection logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, optional.
	Metrics Metrics
	// PingInterval is how often the server pings. Zero means 20 seconds;
	// a viewer silent for three intervals is dropped.
	PingInterval time.Duration
	// CallTimeout bounds one call into the browser. Zero means 10 seconds.
	CallTimeout time.Duration
	// Notice is shown to the clinician in the ready message.
	Notice string
	// Transfers decides copy, paste and print. Nil refuses all three.
	Transfers Transfers
	// Delta finds what changed between frames, so that only that is sent
	// (frames.go). Nil sends every frame whole.
	Delta DeltaEncoder
	// IdleFrameInterval paces the browser's frames to at most one an
	// interval while the screen changes little and the viewer does
	// nothing to the page (pace.go). Zero, or a nil Changes, does not
	// pace.
	IdleFrameInterval time.Duration
	// Changes measures the change between frames for the pace.
	Changes ChangeMeter
}

// errLoginEnded refuses a new browser to a viewer whose login ended
// after it connected.
var errLoginEnded = errors.New("the login ended: log in again")

const (
	writeWait    = 10 * time.Second
	helloWait    = 10 * time.Second
	inputBacklog = 256 // queued input operations per viewer before it is dropped
	// maxCloseReason bounds a close frame's reason: a control frame carries
	// at most 125 bytes (RFC 6455 §5.5), two of them the close code, and the
	// reason must be valid UTF-8 (§5.5.1), so a longer one is cut between
	// characters.
	maxCloseReason = 123
)

var upgrader = websocket.Upgrader{
	ReadBufferSize: 4096,
	// A frame's header and first 64 KiB go through this buffer, and one
	// writev hands it and the rest of the JPEG to the kernel. A 4 KiB
	// buffer copies less, but BenchmarkRelayFrame measured the whole relay
	// a quarter slower with it.
	WriteBufferSize: 64 << 10,
	// The Origin is checked before Upgrade is called; see ServeHTTP.
	CheckOrigin:       func(*http.Request) bool { return true },
	EnableCompression: false, // JPEG does not compress
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// ServeHTTP authenticates, upgrades and runs one viewer connection.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin == "" || origin != h.Origin {
		h.logger().Warn("stream refused: foreign origin", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	p, err := h.Auth.Authenticate(r)
	if err != nil {
		if rf, ok := errors.AsType[Refusal](err); ok {
			rf.Refuse(w)
			return
		}
		http.Error(w, "unauthorized: log in first", http.StatusUnauthorized)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "bad request: WebSocket upgrade expected", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &conn_{h: h, ws: conn, p: p, log: h.logger().With("user", p.User, "remote", r.RemoteAddr)}
	// A new browser only for a login that is still valid when it starts:
	// the login may end while the viewer connects (a logout elsewhere, the
	// idle timeout).
	c.checkLogin = func() error {
		if _, err := h.Auth.Authenticate(r); err != nil {
			return fmt.Errorf("%w: %w", errLoginEnded, err)
		}
		return nil
	}
	if err := tuneConn(conn.NetConn()); err != nil {
		c.log.Warn("stream: tune TCP connection", "err", err)
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		c.terminal = ap.Addr().Unmap()
	}
	c.run(r.Context())
}

// conn_ is one viewer connection: this goroutine reads, one writer goroutine
// writes, one input goroutine calls the browser in order, and one control
// goroutine asks it for key frames and quality. The handler returns only
// after all of them ended.
type conn_ struct {
	h   *Handler
	ws  *websocket.Conn
	p   Principal
	log *slog.Logger

	// terminal is the clinician terminal's address, which decides its
	// terminal group.
	terminal netip.Addr
	// checkLogin reports whether the viewer's login is still valid.
	checkLogin func() error
	// version is the protocol version the viewer named in hello.
	version int
	sess    *session.Session
	viewer  *session.Viewer
	vp      atomic.Pointer[isolation.Viewport]

	closeOnce sync.Once
	// wg owns every goroutine the connection starts (writer, input,
	// screencast control, restarts): run returns only after they ended.
	wg sync.WaitGroup
	// input carries browser calls in arrival order to the input
	// goroutine, the one owner of the viewer's order (queue.go). Capacity
	// inputBacklog; when full the viewer is dropped (it reconnects), so the
	// reader never blocks behind a stalled page and dialog answers still
	// get through.
	input chan func(context.Context, isolation.Browser) error

	// meter decides the screencast quality this viewer's link can take
	// (adapt.go); only the writer uses it. quality is its decision.
	meter   *linkMeter
	quality atomic.Int64

	// The screencast control goroutine (controlLoop) applies quality and
	// asks for key frames. Requests coalesce: wantKeyFrame and wantQuality
	// say what is asked, control (capacity 1) wakes the goroutine.
	control      chan struct{}
	wantKeyFrame atomic.Bool
	wantQuality  atomic.Bool

	// has is the frame the viewer shows, the last one written (frames.go),
	// and refs the reference frames partial frames are computed against;
	// only the writer uses them. needFull says the next frame goes whole;
	// resend (capacity 1, a pending wake-up covers any number of
	// requests) wakes the writer to send has again.
	has      *isolation.Frame
	refs     frameRefs
	needFull atomic.Bool
	resend   chan struct{}

	// pacer chooses the browser's frame pace (pace.go); nil does not
	// pace.
	pacer *framePacer
}

func (h *Handler) pingInterval() time.Duration {
	if h.PingInterval > 0 {
		return h.PingInterval
	}
	return 20 * time.Second
}

func (h *Handler) callTimeout() time.Duration {
	if h.CallTimeout > 0 {
		return h.CallTimeout
	}
	return 10 * time.Second
}

func (c *conn_) run(reqCtx context.Context) {
	defer c.ws.Close()
	// The frame-level limit bounds memory; readMessage enforces the
	// protocol's limit with a clear close reason.
	c.ws.SetReadLimit(4 * maxMessageBytes)
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	defer cancel()

	vp, err := c.readHello()
	if err != nil {
		c.closeWith(err)
		return
	}
	c.vp.Store(&vp)
	sess, err := c.h.Sessions.Attach(ctx, session.Owner{User: c.p.User, Role: c.p.Role, Terminal: c.terminal, Check: c.checkLogin}, vp)
	if err != nil {
		c.log.Warn("stream: attach session", "err", err)
		msg := "the remote browser could not be started"
		switch {
		case errors.Is(err, errLoginEnded):
			// The viewer's reconnect finds the login gone and shows the
			// login form.
			msg = errLoginEnded.Error()
		case errors.Is(err, session.ErrFull):
			msg = "the server is full; try again in a few minutes"
			if fe, ok := errors.AsType[*session.FullError](err); ok && fe.Detail != "" {
				// closeWith cuts a long detail to fit a close frame.
				msg = "the server is full (" + fe.Detail + "); try again in a few minutes"
			}
		}
		c.closeWith(&protocolError{Code: websocket.CloseTryAgainLater, Reason: msg})
		return
	}
	c.sess = sess
	if err := sess.SetViewport(ctx, vp); err != nil {
		c.log.Warn("stream: set viewport", "err", err)
	}
	v, err := sess.AddViewer()
	if err != nil {
		c.closeWith(&protocolError{Code: websocket.CloseNormalClosure, Reason: "session ended"})
		return
	}
	c.viewer = v
	defer sess.RemoveViewer(v)
	if c.h.IdleFrameInterval > 0 && c.h.Changes != nil {
		c.pacer = newFramePacer(c.h.IdleFrameInterval, c.h.Changes, c.log, time.Now)
		// After the connection's goroutines ended (deferred below).
		defer func() { c.pacer.stop(c.browserPace()) }()
	}
	if m := c.h.Metrics.Viewers; m != nil {
		m(1)
		defer m(-1)
	}

	_, life := sess.Deadlines()
	ready := protocol.Ready{
		Version: protocol.Version, User: c.p.User, Role: c.p.Role,
		SessionID:      sess.ID,
		Profile:        sess.Info().Profile,
		IdleTimeoutSec: int(c.h.Sessions.Config().IdleTimeout / time.Second),
		MaxLifetimeSec: int(time.Until(life) / time.Second),
		Notice:         c.h.Notice,
	}
	if err := c.writeMessage(ready); err != nil {
		return
	}

	c.input = make(chan func(context.Context, isolation.Browser) error, inputBacklog)
	c.control = make(chan struct{}, 1)
	c.resend = make(chan struct{}, 1)
	c.meter = newLinkMeter(time.Now())
	defer c.wg.Wait()
	defer cancel()
	c.wg.Go(func() { c.writeLoop(ctx, cancel) })
	c.wg.Go(func() { c.inputLoop(ctx) })
	c.wg.Go(func() { c.controlLoop(ctx) })
	c.requestKeyFrame()

	c.readLoop(ctx)
}

func (c *conn_) readHello() (isolation.Viewport, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(helloWait))
	typ, data, err := c.readMessage()
	if err != nil {
		return isolation.Viewport{}, err
	}
	if typ != websocket.TextMessage {
		return isolation.Viewport{}, &protocolError{Code: websocket.CloseUnsupportedData, Reason: "expected a text hello message"}
	}
	kind, msg, err := decode(data)
	if err != nil {
		return isolation.Viewport{}, err
	}
	hello, ok := msg.(*helloMsg)
	if kind != protocol.TypeHello || !ok {
		return isolation.Viewport{}, badPolicy("first message must be hello, got %q", kind)
	}
	if hello.Version < protocol.MinVersion || hello.Version > protocol.Version {
		return isolation.Viewport{}, badPolicy("unsupported protocol version %d (server speaks %d–%d)", hello.Version, protocol.MinVersion, protocol.Version)
	}
	c.version = hello.Version
	return hello.viewport("hello")
}

// readMessage reads one message of at most maxMessageBytes. A longer one is
// an error naming the limit.
func (c *conn_) readMessage() (int, []byte, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxMessageBytes+1))
	if err != nil {
		return 0, nil, err
	}
	if len(data) > maxMessageBytes {
		// Drain the rest (bounded by the frame-level read limit) so the
		// close frame reaches a viewer that is still writing.
		_, _ = io.Copy(io.Discard, r)
		return 0, nil, &protocolError{Code: websocket.CloseMessageTooBig,
			Reason: fmt.Sprintf("message too big: over %d KiB", maxMessageBytes>>10)}
	}
	return typ, data, nil
}

// readLoop reads and dispatches viewer messages until the connection ends
// or a message breaks the protocol.
func (c *conn_) readLoop(ctx context.Context) {
	wait := 3 * c.h.pingInterval()
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		typ, data, err := c.readMessage()
		if err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				c.closeWith(err)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		if typ != websocket.TextMessage {
			c.closeWith(&protocolError{Code: websocket.CloseUnsupportedData, Reason: "binary messages are not accepted"})
			return
		}
		if err := c.dispatch(ctx, data); err != nil {
			c.log.Warn("stream: closing viewer", "err", err)
			c.closeWith(err)
			return
		}
	}
}

func (c *conn_) sendError(msg string) {
	c.viewer.Send(protocol.Error{Message: msg})
}

// writeLoop is the connection's only writer after the ready message.
func (c *conn_) writeLoop(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	ping := time.NewTicker(c.h.pingInterval())
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-c.viewer.Wake():
			if err := c.flush(); err != nil {
				_ = c.ws.Close()
				return
			}
		case <-c.resend:
			if err := c.flush(); err != nil {
				_ = c.ws.Close()
				return
			}
		case <-c.viewer.Done():
			_ = c.flush()
			c.sayGoodbye()
			return
		}
	}
}

// flush writes the pending events, then the pending frame, and adapts the
// screencast's quality to how many frames the link let through. With no
// frame pending, a viewer that asked for a key frame gets the frame it
// should have, whole.
func (c *conn_) flush() error {
	events, frame, dropped := c.viewer.Take()
	c.paceFrame(frame)
	if c.meter != nil && c.meter.observe(time.Now(), frame != nil, int(dropped)) {
		q := c.meter.quality()
		c.log.Info("stream: screencast quality adapted to the viewer's link", "quality", q, "dropped", dropped)
		c.quality.Store(int64(q))
		c.applyQuality()
	}
	for _, ev := range events {
		if err := c.writeMessage(ev); err != nil {
			return err
		}
	}
	if m := c.h.Metrics.FramesDropped; m != nil && dropped > 0 {
		m(int(dropped))
	}
	if frame == nil && c.needFull.Load() {
		frame = c.has
	}
	if frame == nil {
		return nil
	}
	out, ok := c.encodeFrame(frame)
	if !ok {
		c.has = frame
		return nil
	}
	if err := c.writeFrame(out.msg); err != nil {
		return err
	}
	c.has = frame
	c.count(out)
	return nil
}

// count adds a frame sent to the metrics.
func (c *conn_) count(out outFrame) {
	m := c.h.Metrics
	if m.FramesSent != nil {
		m.FramesSent(1)
	}
	if m.BytesSent != nil {
		m.BytesSent(len(out.msg))
	}
	if out.partial && m.FramesPartial != nil {
		m.FramesPartial(1)
	}
	if out.partial && m.BytesSaved != nil {
		m.BytesSaved(out.saved)
	}
	if out.copied && m.FramesCopied != nil {
		m.FramesCopied(1)
	}
}

// writeFrame writes one frame as a binary message: a full frame's JPEG as
// it is, or a partial frame (docs/protocol.md). It is not copied whole:
// the header and the message's first bytes go through the connection's
// write buffer, and one writev hands both that and the rest to the kernel.
func (c *conn_) writeFrame(msg []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.BinaryMessage, msg)
}

// sayGoodbye tells a viewer the session closed it, and why.
func (c *conn_) sayGoodbye() {
	reason := c.viewer.Reason()
	if reason == "" {
		c.closeWith(&protocolError{Code: websocket.CloseTryAgainLater, Reason: "viewer fell behind"})
		return
	}
	if reason == session.ReasonPledge {
		// The session goes on; the reconnect is refused until the new
		// pledge is accepted, which the viewer shows.
		c.closeWith(&protocolError{Code: websocket.CloseTryAgainLater, Reason: "the usage pledge changed: accept it to continue"})
		return
	}
	_ = c.writeMessage(protocol.Status{State: string(session.StateEnded), Reason: string(reason),
		Message: endMessage(reason)})
	c.closeWith(&protocolError{Code: websocket.CloseNormalClosure, Reason: "session ended: " + string(reason)})
}

// endMessage says why the session ended, and what the clinician does
// next: log in again, except after a shutdown (reconnect) and in a
// replaced viewer.
func endMessage(r session.Reason) string {
	switch r {
	case session.ReasonLogout:
		return "You were logged out, at this terminal or another. The remote browser and its data were deleted."
	case session.ReasonIdle:
		return "The session ended after a period without activity. The remote browser and its data were deleted. Log in again."
	case session.ReasonLifetime:
		return "The session reached its maximum length. The remote browser and its data were deleted. Log in again."
	case session.ReasonShutdown:
		return "The service is restarting. The remote browser and its data were deleted; reconnect for a new one."
	case session.ReasonAdmin:
		return "An administrator ended the session. Log in again."
	case session.ReasonReplaced:
		return "The session was opened in another window."
	}
	return "The session ended."
}

// writeMessage writes m as one text message (docs/protocol.md). A message
// that cannot be encoded is a bug; the viewer is told "internal error"
// instead, as an error message, and the stream carries on.
func (c *conn_) writeMessage(m protocol.Message) error {
	b, err := protocol.Encode(m)
	if err != nil {
		c.log.Error("stream: message not sent", "type", string(m.MessageType()), "err", err)
		if b, err = protocol.Encode(protocol.Error{Message: "internal error"}); err != nil {
			return err
		}
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// closeWith sends a close frame naming why, then closes the connection.
func (c *conn_) closeWith(err error) {
	c.closeOnce.Do(func() {
		code, reason := closeCode(err)
		reason = truncate.Ellipsis(reason, maxCloseReason)
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = c.ws.Close()
	})
}
