// Package broker wires shoji together: configuration, the HTTP server and
// its routes, authentication, the session manager, the viewer stream, the
// egress proxy and the isolated browsers, and graceful shutdown.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/demo"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Server is a running broker.
type Server struct {
	cfg Config
	log *slog.Logger
	out io.Writer
	// store is the durable state. New opens the bbolt file (broker/store);
	// the broker relies only on the contract, store.Backend.
	store store.Backend
	auth  *auth.Service
	// notices are the login banner and the usage pledge.
	notices *auth.Notices
	proxy   *egress.Proxy
	policy  *sitePolicy
	audit   *audit.File
	fwd     *audit.Forwarder
	xfer    *transfer.Manager
	launch  isolation.Launcher
	sess    *session.Manager
	metrics *metrics
	// metricsAccess decides who may read /metrics (metrics.allow,
	// metrics.bearer_token_file).
	metricsAccess *metricsAccess
	handler       http.Handler
	// guard authenticates API requests (broker/api).
	guard *api.Guard
	// now is the broker's clock (Options.Now).
	now func() time.Time

	demoAddr     net.Addr
	demoShutdown func(context.Context) error
	// netns has the browsers' network namespaces; nil unless Config.NetNS.
	netns *namespaces

	// warnings are the start warnings (warnings.go), set by New.
	warnings []string

	mu       sync.Mutex
	listener net.Listener
}

// Options are what New needs beyond the Config.
type Options struct {
	// Logger receives the application log. Nil means slog.Default().
	Logger *slog.Logger
	// Out receives messages for the operator: the set-up token and, in
	// demo mode, the demo login. Nil means os.Stdout.
	Out io.Writer
	// Launcher replaces the Chromium launcher (tests of the wiring).
	Launcher isolation.Launcher
	// Now is the broker's one clock: of accounts, tokens and cookies, of
	// the site policy (rule expiry) and of every audit record the broker
	// stamps itself (session starts and ends, start warnings, kill switch,
	// exports, leftovers of a previous run). No file of package broker reads
	// the wall clock otherwise (TestNoDirectClock). Nil means time.Now.
	Now func() time.Time
	// ChromiumFlags are added to every browser's flags (tests; flags that
	// weaken isolation are refused by isolation/chrome).
	ChromiumFlags []string
	// NodeStats replaces the reader of the node's memory and load that
	// admission control asks (tests). Nil means /proc.
	NodeStats session.NodeStats
}

// New builds a broker from a validated Config, in the order its parts
// need one another: the durable state (data directory, store, audit trail)
// and what a previous run left, the network side (demo site, egress proxy,
// site policy), the transfer channel, the sessions and their browsers, the
// accounts, and last the HTTP routes. Call Run to serve, or Close to
// release it all; a failed New releases what it built.
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: opts.Logger, out: opts.Out, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.out == nil {
		s.out = os.Stdout
	}
	s.metrics = s.newMetrics()
	ok := false
	defer func() {
		if !ok {
			if s.sess != nil {
				_ = s.sess.Shutdown(context.Background()) // the warm pool's browsers
			}
			s.closeParts(context.Background())
		}
	}()
	var err error
	if s.metricsAccess, err = newMetricsAccess(cfg.Metrics, s.log); err != nil {
		return nil, err
	}
	if err := s.openState(ctx); err != nil {
		return nil, err
	}
	if err := s.startNetwork(ctx); err != nil {
		return nil, err
	}
	scanner, err := s.scanner()
	if err != nil {
		return nil, err
	}
	s.warnAtStart(ctx)
	if err := s.startTransfers(scanner); err != nil {
		return nil, err
	}
	if err := s.startSessions(ctx, opts); err != nil {
		return nil, err
	}
	if err := s.startAccounts(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	ok = true
	return s, nil
}

// newMetrics builds the broker's metrics; the live figures read the
// session manager once it exists.
func (s *Server) newMetrics() *metrics {
	return newMetrics(liveStats{
		sessions: func() int {
			if s.sess == nil {
				return 0
			}
			return s.sess.Count()
		},
		pool: func() session.PoolStats {
			if s.sess == nil {
				return session.PoolStats{}
			}
			return s.sess.PoolStats()
		},
		starts: func() session.StartHealth {
			if s.sess == nil {
				return session.StartHealth{}
			}
			return s.sess.StartHealth()
		},
	})
}

// openState opens the durable state: the data directory (tightened), the
// store, the audit trail with its checkpoint key and syslog forwarding;
// then it deals with what a previous run left.
func (s *Server) openState(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	tightened, err := tightenDataDir(s.cfg.Data)
	if err != nil {
		return err
	}
	if len(tightened) > 0 {
		s.log.Warn("data directory: removed group access (as Kubernetes' fsGroup leaves it) from entries the broker owns",
			"dir", s.cfg.Data, "entries", len(tightened), "first", tightened[:min(len(tightened), 5)])
	}
	st, err := store.Open(s.cfg.Data)
	if err != nil {
		return err
	}
	s.store = st
	key, err := s.checkpointKey()
	if err != nil {
		return err
	}
	if s.audit, err = audit.OpenFile(filepath.Join(s.cfg.Data, "audit"), audit.FileOptions{
		MaxBytes: int64(s.cfg.Audit.MaxFileSize) << 20, Logger: s.log, CheckpointKey: key,
		CheckpointEvery: s.cfg.Audit.CheckpointEvery, CheckpointInterval: time.Duration(s.cfg.Audit.CheckpointInterval),
	}); err != nil {
		return fmt.Errorf("open audit trail: %w", err)
	}
	if s.cfg.Audit.Syslog != "" {
		if s.fwd, err = audit.NewForwarder(s.audit, s.cfg.Audit.Syslog, audit.ForwarderOptions{Logger: s.log}); err != nil {
			return fmt.Errorf("audit syslog forwarding: %w", err)
		}
	}
	s.recoverPreviousRun(ctx)
	return nil
}

// startNetwork starts the demo site in demo mode and the egress proxy, and
// loads the site policy.
func (s *Server) startNetwork(ctx context.Context) error {
	if s.cfg.Demo {
		addr, shutdown, err := demo.Serve(ctx, "127.0.0.1:0", s.log)
		if err != nil {
			return fmt.Errorf("start demo site: %w", err)
		}
		s.demoAddr, s.demoShutdown = addr, shutdown
	}
	if err := s.startEgress(); err != nil {
		return err
	}
	return s.policy.Load()
}

// scanner is the malware scanner transfer.clamd names; nil without one.
func (s *Server) scanner() (scan.Scanner, error) {
	if s.cfg.Transfer.Clamd == "" {
		return nil, nil
	}
	c, err := scan.NewClamd(s.cfg.Transfer.Clamd, scan.ClamdOptions{Timeout: time.Duration(s.cfg.Transfer.ScanTimeout)})
	if err != nil {
		return nil, fmt.Errorf("config: transfer.clamd: %w", err)
	}
	return c, nil
}

// startTransfers builds the transfer channel.
func (s *Server) startTransfers(scanner scan.Scanner) error {
	var err error
	s.xfer, err = transfer.New(transfer.Config{
		Store:       s.store,
		Dir:         filepath.Join(s.cfg.Data, "quarantine"),
		Policy:      s.policy,
		Audit:       s.audit,
		Scanner:     scanner,
		ScanTimeout: time.Duration(s.cfg.Transfer.ScanTimeout),
		Retention:   time.Duration(s.cfg.Transfer.Retention),
		Notify:      s.notifyTransfer,
		Protected:   s.cfg.protectedDirs(),
		Logger:      s.log,
	})
	return err
}

// startSessions builds the browsers' launcher and the session manager,
// with the hooks that journal, audit and count sessions; then it recovers
// the transfers a previous run left.
func (s *Server) startSessions(ctx context.Context, opts Options) error {
	var err error
	var opener session.EgressOpener = egressOpener{p: s.proxy, sp: s.policy}
	var prefix func(string) []string
	if s.cfg.NetNS {
		if s.netns, err = newNamespaces(s.log); err != nil {
			return err
		}
		opener, prefix = netnsOpener{egressOpener{p: s.proxy, sp: s.policy}, s.netns}, s.netns.commandPrefix
	}
	s.launch = opts.Launcher
	if s.launch == nil {
		if s.launch, err = chromeLauncher(s.cfg, s.log, prefix, opts.ChromiumFlags); err != nil {
			return err
		}
	}
	s.sess, err = session.NewManager(session.Config{
		Launcher:    s.launch,
		Egress:      opener,
		IdleTimeout: time.Duration(s.cfg.IdleTimeout),
		MaxLifetime: time.Duration(s.cfg.MaxLifetime),
		MaxSessions: s.cfg.MaxSessions,
		StartURL:    s.startURL(),
		Logger:      s.log,

		PoolSize:      s.cfg.PoolSize,
		PoolMaxAge:    time.Duration(s.cfg.PoolMaxAge),
		MinFreeMemory: int64(s.cfg.MinFreeMemoryMiB) << 20,
		MaxLoadPerCPU: s.cfg.MaxLoadPerCore,
		Stats:         opts.NodeStats,

		OnStart: func(info session.Info) {
			s.metrics.sessionStarted()
			s.journalSession(info)
			s.audit.Record(audit.SessionStart(s.now(), sessionActor(info)))
			crashpoint.Hit(crashpoint.SessionStarted)
		},
		OnEnd: func(info session.Info, r session.Reason) {
			s.metrics.sessionEnded(string(r))
			s.xfer.EndSession(info.ID)
			s.recordSessionEnd(info, r)
			crashpoint.Hit(crashpoint.SessionEnded)
		},
		OnEnding: s.endLogins,
		OnCrash:  func(session.Info, error) { s.metrics.crashes.Inc() },
		OnNavigate: func(info session.Info, url string) {
			s.audit.Record(audit.Navigation(s.now(), sessionActor(info), url))
		},
		OnBlock: func(info session.Info, url string, d isolation.NavDecision) {
			s.audit.Record(audit.Deny(s.now(), sessionActor(info), d.Host, url, d.Rule, d.Reason))
		},
		Transfers: sessionTransfers{s},
	})
	if err != nil {
		return err
	}
	// What a previous run left is dealt with once the session manager,
	// which the transfer notifications need, exists.
	if err := s.xfer.Recover(ctx); err != nil {
		s.log.Error("transfer recovery at start left something for the next start", "err", err)
	}
	return nil

}

// startAccounts builds the account service and the login notices (banner
// and usage pledge).
func (s *Server) startAccounts() error {
	var err error
	s.auth, err = auth.New(auth.Config{
		DataDir:          s.cfg.Data,
		LockoutThreshold: s.cfg.LockoutThreshold,
		LockoutWindow:    time.Duration(s.cfg.LockoutWindow),
		TokenTTL:         15 * time.Minute,
		LoginLifetime:    time.Duration(s.cfg.MaxLifetime),
		Logger:           s.log,
		Audit:            s.audit,
		Operator:         "broker",
		Now:              s.now,
		OnUserDisabled: func(user string) {
			go s.sess.End(user, session.ReasonAdmin)
		},
	}, s.store)
	if err != nil {
		return err
	}
	s.notices = &auth.Notices{
		Settings:      s.store,
		Accounts:      s.auth,
		DefaultBanner: s.cfg.LoginBanner,
		Audit:         s.audit,
		CommitTimeout: sitepolicy.CommitTimeout,
		Viewers:       pledgeViewers{s.sess},
		Now:           s.now,
		Logger:        s.log,
	}
	return nil
}

// startURL is the page a new browser opens: the configured one, else the
// demo site in demo mode, else about:blank.
func (s *Server) startURL() string {
	if s.cfg.StartURL != "" {
		return s.cfg.StartURL
	}
	return s.DemoURL()
}

// DemoURL is the demo site's address as the remote browsers see it, or ""
// outside demo mode.
func (s *Server) DemoURL() string {
	if s.demoAddr == nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(s.demoAddr.String())
	return "http://" + net.JoinHostPort(demoHost, port) + "/"
}

// demoHost is the name the demo site has inside the remote browser. The
// egress proxy resolves it to the demo's loopback address and port, and
// allows exactly that address and port.
const demoHost = "demo.shoji.test"

// startEgress builds the egress policy from the config and starts the proxy.
func (s *Server) startEgress() error {
	cfg := s.cfg.Egress
	allow := append([]string(nil), cfg.Allow...)
	hosts := map[string]netip.Addr{}
	var addrs []netip.AddrPort
	for name, a := range cfg.Hosts {
		hosts[strings.ToLower(name)] = netip.MustParseAddr(a) // validated
	}
	for _, a := range cfg.AllowAddrs {
		addrs = append(addrs, netip.MustParseAddrPort(a)) // validated
	}
	var static []policy.StaticRule
	for _, a := range cfg.Allow {
		static = append(static, policy.StaticRule{Pattern: a, Source: sitepolicy.SourceConfig})
	}
	if s.demoAddr != nil {
		ap := netip.MustParseAddrPort(s.demoAddr.String())
		_, port, _ := net.SplitHostPort(s.demoAddr.String())
		allow = append(allow, demoHost+":"+port)
		static = append(static, policy.StaticRule{Pattern: demoHost + ":" + port, Source: sitepolicy.SourceDemo})
		hosts[demoHost] = ap.Addr()
		addrs = append(addrs, ap)
	}
	base, err := egress.NewStaticPolicy(allow)
	if err != nil {
		return fmt.Errorf("config: egress.allow: %w", err)
	}
	s.policy = &sitePolicy{Service: sitepolicy.New(sitepolicy.Options{
		Store: s.store, Audit: s.audit, Logger: s.log, Now: s.now, Static: static,
	})}
	var resolver egress.Resolver
	if cfg.DNS != "" {
		resolver = dnsResolver(cfg.DNS)
	}
	var upstream *url.URL
	if cfg.Upstream != "" {
		upstream, _ = url.Parse(cfg.Upstream) // validated
	}
	s.proxy, err = egress.New(egress.Config{
		Resolver:   resolver,
		Upstream:   upstream,
		Policy:     base,
		AllowAddrs: addrs,
		Hosts:      hosts,
		Logger:     s.log,
		OnDecision: s.egressDecision,
	})
	if err != nil {
		return fmt.Errorf("start egress proxy: %w", err)
	}
	return nil
}

// dnsResolver asks only the DNS server at addr.
func dnsResolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// Handler returns the broker's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Sessions returns the session manager.
func (s *Server) Sessions() *session.Manager { return s.sess }

// Transfers returns the transfer channel.
func (s *Server) Transfers() *transfer.Manager { return s.xfer }

// Auth returns the account service.
func (s *Server) Auth() *auth.Service { return s.auth }

// Config returns the validated configuration.
func (s *Server) Config() Config { return s.cfg }

// Addr returns the address the server listens on, once Run has started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Listen binds the configured address. Run calls it when it was not called.
// With port 0, PublicURL follows the port the system chose.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return s.listener.Addr(), nil
	}
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if _, port, _ := net.SplitHostPort(s.cfg.Listen); port == "0" && strings.HasSuffix(s.cfg.PublicURL, ":0") {
		_, real, _ := net.SplitHostPort(l.Addr().String())
		s.cfg.PublicURL = strings.TrimSuffix(s.cfg.PublicURL, "0") + real
		s.handler = s.routes() // the Origin check follows the new URL
	}
	s.listener = l
	return l.Addr(), nil
}

// Run serves until ctx ends, then shuts down gracefully: new sessions are
// refused, every session ends (its viewers told why, its browser's process
// group killed and profile removed), and the server closes.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	if err := s.announce(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	l := s.listener
	if s.cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		srv.TLSConfig = tlsConfig(cert)
		l = tls.NewListener(l, srv.TLSConfig)
	} else if s.cfg.InsecureHTTP {
		s.log.Warn("serving plain HTTP on a non-loopback address (--insecure-http): " +
			"session cookies and screens cross the network unencrypted unless a TLS proxy is in front")
	}
	// Quarantine retention runs while the server does.
	rctx, stopRetention := context.WithCancel(ctx)
	defer stopRetention()
	go s.xfer.Run(rctx, 5*time.Minute)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("shoji serving", "listen", l.Addr().String(), "public_url", s.cfg.PublicURL, "tls", s.cfg.TLS())

	select {
	case err := <-errc:
		s.closeParts(context.Background())
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: ending all sessions")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.sess.Shutdown(sctx)
	err = errors.Join(err, srv.Shutdown(sctx))
	s.closeParts(sctx)
	return err
}

// Close releases everything New opened, ending any sessions.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if s.sess != nil {
		err = s.sess.Shutdown(ctx)
	}
	s.closeParts(ctx)
	return err
}

func (s *Server) closeParts(ctx context.Context) {
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	if s.netns != nil {
		if err := s.netns.closeAll(); err != nil {
			s.log.Warn("network namespaces left behind", "err", err)
		}
	}
	if s.demoShutdown != nil {
		_ = s.demoShutdown(ctx)
		s.demoShutdown = nil
	}
	if s.xfer != nil {
		s.xfer.Wait()
	}
	// The trail closes first, with its closing checkpoint; the forwarder
	// then gets a few seconds to hand the collector the rest, so that the
	// collector's copy ends where the trail does. Both stay set: a session
	// still ending after a shutdown timeout finds a closed sink (its
	// records fail and are logged), never a nil one.
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			s.log.Error("close audit trail", "err", err)
		}
	}
	if s.fwd != nil {
		fctx, cancel := context.WithTimeout(ctx, forwardFlushTimeout)
		if err := s.fwd.Flush(fctx); err != nil {
			s.log.Warn("audit forwarding: the collector does not have the end of the trail yet; it gets it after the next start", "err", err)
		}
		cancel()
		_ = s.fwd.Close()
	}
	if s.store != nil {
		_ = s.store.Close()
	}
}

// forwardFlushTimeout bounds the wait at a clean stop for the syslog
// collector to acknowledge the end of the trail.
const forwardFlushTimeout = 5 * time.Second

// egressDecision counts, logs and records a decision of the egress proxy. A
// refused request of the browser's own background services (Event.Background:
// addressed to isolation.BackgroundDomain, where shoji points them) is no
// refusal of anything a page or a clinician tried: it has its own counter
// (and the proxy's debug line, rule browser-background), and no warning and
// no audit record.
func (s *Server) egressDecision(ev egress.Event) {
	switch {
	case ev.Allow:
		s.metrics.egressAllowed.Inc()
		return
	case ev.Background:
		s.metrics.egressBackground.Inc() // the proxy's debug line names it
		return
	}
	s.metrics.egressDenied.Inc()
	attrs := []any{"session", ev.Session, "host", ev.Host, "port", ev.Port, "reason", ev.Reason, "rule", ev.Rule}
	if ev.Addr.IsValid() {
		attrs = append(attrs, "addr", ev.Addr.String())
	}
	s.log.Warn("egress denied", attrs...)
	s.auditEgressDeny(ev)
}

// auditEgressDeny records a request the egress proxy refused.
func (s *Server) auditEgressDeny(ev egress.Event) {
	if s.audit == nil {
		return
	}
	a := audit.Actor{Session: ev.Session}
	if s.sess != nil {
		if info, ok := s.sess.Lookup(ev.Session); ok {
			a = sessionActor(info)
		}
	}
	e := audit.Deny(ev.Time, a, ev.Host, "", ev.Rule, ev.Reason)
	e.What = "egress " + ev.Method + " " + net.JoinHostPort(ev.Host, strconv.Itoa(ev.Port))
	s.audit.Record(e)
}

// sessionActor is the audit actor of a session.
func sessionActor(info session.Info) audit.Actor {
	o := owner(info)
	return audit.Actor{User: o.User, Role: o.Role, Terminal: o.Terminal, Session: o.Session}
}

// announce prints the one-time set-up token when there is no admin yet.
func (s *Server) announce() error {
	need, err := s.auth.NeedsSetup()
	if err != nil {
		return err
	}
	if need {
		tok, err := s.auth.IssueSetupToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "\nNo administrator exists yet. Create the first one at %s/setup\n"+
			"with this one-time set-up token (valid for one hour, or until used):\n\n    %s\n\n"+
			"or stop the broker and run: shoji user add NAME --role admin --password-stdin --data %s\n\n",
			strings.TrimSuffix(s.cfg.PublicURL, "/"), tok, s.cfg.Data)
	}
	return nil
}

// tlsConfig allows TLS 1.2 with AEAD suites only, and TLS 1.3 (CRYPTREC
// recommended ciphers, TERM-3).
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"http/1.1"}, // WebSocket upgrades need HTTP/1.1
	}
}

// chromeLauncher builds the Chromium launcher from the config. The sandbox
// stays on unless shoji runs as root (where Chromium cannot use it).
// prefix, if set, is chrome.Config.CommandPrefix.
func chromeLauncher(cfg Config, log *slog.Logger, prefix func(string) []string, extra []string) (isolation.Launcher, error) {
	if os.Geteuid() == 0 && (cfg.Sandbox == nil || !*cfg.Sandbox) {
		log.Warn("running as root: Chromium's sandbox is off (--no-sandbox); run shoji as an unprivileged user in production")
	}
	// Profiles and browsers a broker that was killed left are gone by now
	// (recoverBrowsers): a profile never outlives its session.
	profiles := filepath.Join(cfg.Data, "profiles")
	if err := os.MkdirAll(profiles, 0o700); err != nil {
		return nil, fmt.Errorf("create profile root: %w", err)
	}
	var cas []*x509.Certificate
	for i, path := range cfg.TrustedCAs {
		pemData, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: trusted_cas[%d]: %w", i, err)
		}
		list, err := chrome.ParseTrustedCAs(pemData)
		if err != nil {
			return nil, fmt.Errorf("config: trusted_cas[%d] %s: %w", i, path, err)
		}
		cas = append(cas, list...)
	}
	l, err := chrome.New(chrome.Config{
		ExecPath:      cfg.Chromium,
		ProfileRoot:   profiles,
		Sandbox:       cfg.Sandbox,
		Logger:        log,
		CommandPrefix: prefix,
		ExtraFlags:    extra,
		TrustedCAs:    cas,
		JPEGQuality:   cfg.Stream.JPEGQuality,
		SharpQuality:  cfg.Stream.SharpQuality,
		SettleDelay:   time.Duration(cfg.Stream.SettleDelay),

		MaxFramesInFlight: cfg.Stream.MaxFramesInFlight,
		SendLastFrame:     &cfg.Stream.SendLastFrame,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return l, nil
}

// DemoUser is the clinician account demo mode creates.
const DemoUser = "demo"

// DemoLogin creates the demo clinician, or gives it a new password, and
// returns the password made for this run. Only in demo mode.
func (s *Server) DemoLogin() (string, error) {
	if !s.cfg.Demo {
		return "", errors.New("demo login: not in demo mode")
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b[:])
	err := s.auth.AddUser(DemoUser, auth.Clinician, pw)
	if errors.Is(err, auth.ErrUserExists) {
		err = s.auth.SetPassword(DemoUser, pw)
		if err == nil {
			err = s.auth.EnableUser(DemoUser)
		}
	}
	if err != nil {
		return "", fmt.Errorf("demo login: %w", err)
	}
	return pw, nil
}
