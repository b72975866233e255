package broker

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/api/login"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/stream"
	"github.com/shoji-rbi/shoji/broker/tiles"
	"github.com/shoji-rbi/shoji/web"
)

// routes builds the broker's handler tree.
func (s *Server) routes() http.Handler {
	s.guard = &api.Guard{Log: s.log, Tokens: s.auth, Pledge: login.RequirePledge(s.notices), Secure: s.cfg.TLS(), Now: s.now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsAccess.guard(s.metrics.handler(s.log)))

	for _, h := range []interface{ Register(*http.ServeMux) }{
		s.loginHandlers(), s.adminHandlers(), s.siteHandlers(), s.transferHandlers(), s.auditHandlers(),
	} {
		h.Register(mux)
	}
	mux.Handle("/api/", s.guard.Handle(func(http.ResponseWriter, *http.Request) error {
		return api.Status(http.StatusNotFound, "no such API")
	}))

	mux.Handle("GET /api/stream", s.streamHandler())
	mux.Handle("/", web.Handler())
	return s.securityHeaders(s.sameOrigin(mux))
}

// streamHandler is the viewer WebSocket's handler. One tile engine serves
// both the partial frames and the frame pace's change measure, so that a
// frame is parsed once for both.
func (s *Server) streamHandler() *stream.Handler {
	delta := s.deltaEncoder()
	h := &stream.Handler{
		Delta:     delta,
		Sessions:  s.sess,
		Auth:      streamAuth{s},
		Origin:    s.cfg.Origin(),
		Logger:    s.log,
		Notice:    "Isolated browsing: pages run on a remote server and only their image reaches this terminal. Navigation, blocked requests and file transfers are recorded.",
		Transfers: sessionTransfers{s},
		Metrics: stream.Metrics{
			FramesSent:    func(n int) { s.metrics.framesSent.Add(float64(n)) },
			FramesDropped: func(n int) { s.metrics.framesDropped.Add(float64(n)) },
			BytesSent:     func(n int) { s.metrics.bytesSent.Add(float64(n)) },
			Viewers:       func(d int) { s.metrics.viewers.Add(float64(d)) },
			FramesPartial: func(n int) { s.metrics.framesPartial.Add(float64(n)) },
			FramesCopied:  func(n int) { s.metrics.framesCopied.Add(float64(n)) },
			BytesSaved:    func(n int) { s.metrics.bytesSaved.Add(float64(n)) },
		},
	}
	if d := time.Duration(s.cfg.Stream.IdleFrameInterval); d > 0 {
		h.IdleFrameInterval = d
		if td, ok := delta.(*tiles.Delta); ok {
			h.Changes = td
		} else {
			h.Changes = tiles.NewDelta(0)
		}
	}
	return h
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	csp := strings.Join([]string{
		"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:",
		"connect-src 'self'", "font-src 'self'", "object-src 'none'", "frame-ancestors 'none'",
		"base-uri 'none'", "form-action 'self'",
	}, "; ")
	tls := s.cfg.TLS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), serial=()")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses state-changing requests from another origin (the
// SameSite=Strict cookie is the first defence against CSRF, this the second).
func (s *Server) sameOrigin(next http.Handler) http.Handler {
	origin := s.cfg.Origin()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if o := r.Header.Get("Origin"); o != "" && o != origin {
				api.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "request from another origin refused"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// streamAuth authenticates the viewer WebSocket as the API does, and
// refuses it, before any browser starts, until the pledge is accepted.
type streamAuth struct{ s *Server }

func (a streamAuth) Authenticate(r *http.Request) (stream.Principal, error) {
	p, err := a.s.guard.Principal(nil, r)
	if err != nil {
		return stream.Principal{}, err
	}
	if err := a.s.guard.Pledge(p); err != nil {
		return stream.Principal{}, err
	}
	return stream.Principal{User: p.User, Role: string(p.Role)}, nil
}

// pledgeViewers are the running sessions as the pledge rule asks them
// (auth.Viewers).
type pledgeViewers struct{ sess *session.Manager }

func (v pledgeViewers) Users() []string {
	var users []string
	for _, i := range v.sess.List() {
		users = append(users, i.User)
	}
	return users
}

func (v pledgeViewers) AskPledge(user string) bool {
	sess, ok := v.sess.Get(user)
	if ok {
		sess.DisconnectViewers(session.ReasonPledge)
	}
	return ok
}

// deltaEncoder is the viewer stream's partial-frame engine, or nil when
// stream.partial_frames is off (every frame whole). One tile engine serves
// every viewer: the viewers of one session share its frames, so each frame
// is parsed once. It keeps the parsed frames a few dozen viewers compare
// against (their reference frames and the newest); past that a frame is
// parsed again, never compared wrongly.
func (s *Server) deltaEncoder() stream.DeltaEncoder {
	if !s.cfg.Stream.PartialFrames {
		return nil
	}
	return tiles.NewDelta(64)
}
