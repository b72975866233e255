package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultAddr is the address Serve listens on when given "": a free port on
// the IPv4 loopback.
const DefaultAddr = "127.0.0.1:0"

// ErrNotLoopback is returned by Serve for a listen address that is not on a
// loopback interface. The demo site is reachable by the local egress proxy
// only; it must never be exposed on the network.
var ErrNotLoopback = errors.New("demo: listen address is not loopback")

// Serve listens on addr (DefaultAddr when empty), which must be a loopback
// address or "localhost", and serves Handler in the background. It returns the
// bound address and a shutdown function that stops accepting connections,
// waits for requests in flight until its context ends (then closes them) and
// returns once the server goroutine has exited. Shutdown may be called more
// than once; later calls return the first call's result.
//
// When ctx ends, the server is closed at once; the shutdown function must
// still be called to wait for it. A nil logger discards the server's logs.
func Serve(ctx context.Context, addr string, logger *slog.Logger) (net.Addr, func(context.Context) error, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if err := checkLoopback(addr); err != nil {
		return nil, nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: listen on %q: %w", addr, err)
	}
	// "localhost" is resolved by the system; make sure it really was loopback.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("demo: listen address %q bound to %s: %w", addr, ln.Addr(), ErrNotLoopback)
	}

	srv := &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	logger.Info("demo site listening", slog.String("addr", ln.Addr().String()))

	// The serve goroutine is owned by the returned shutdown function, which
	// waits for done; serveErr is written before done is closed.
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo site failed", slog.Any("error", err))
			serveErr = fmt.Errorf("demo: serve: %w", err)
		}
	}()
	stopOnCancel := context.AfterFunc(ctx, func() { _ = srv.Close() })

	var (
		once        sync.Once
		shutdownErr error
	)
	shutdown := func(sctx context.Context) error {
		once.Do(func() {
			stopOnCancel()
			err := srv.Shutdown(sctx)
			if err != nil {
				_ = srv.Close()
				err = fmt.Errorf("demo: shutdown: %w", err)
			}
			<-done
			shutdownErr = errors.Join(err, serveErr)
			logger.Info("demo site stopped", slog.String("addr", ln.Addr().String()))
		})
		return shutdownErr
	}
	return ln.Addr(), shutdown, nil
}

// checkLoopback refuses any listen address whose host is not "localhost" or a
// loopback IP; an empty host (all interfaces) is refused too.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("demo: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("demo: listen address %q: %w", addr, ErrNotLoopback)
	}
	return nil
}
