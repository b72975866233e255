package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// minMetricsToken is the shortest bearer token metrics.bearer_token_file
// may hold.
const minMetricsToken = 16

// metricsAccess decides who may read /metrics: the client addresses of
// metrics.allow, and whoever sends the token of metrics.bearer_token_file.
type metricsAccess struct {
	allow []netip.Prefix
	// token is the SHA-256 of the bearer token; nil when there is none.
	token []byte
	log   *slog.Logger
}

// parseAllowPrefix parses one entry of metrics.allow: a CIDR range with
// no bits set past its length, or a single address.
func parseAllowPrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("want a CIDR range such as 10.30.0.0/16 or a single address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("want a CIDR range such as 10.30.0.0/16 or a single address")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("address bits set past the prefix length; did you mean %s?", p.Masked())
	}
	return p, nil
}

// newMetricsAccess reads the metrics section of a validated Config: it
// parses the allowed ranges and reads the token file, refusing one that
// other users may access, that is not a regular file, or whose token is
// not one line of at least minMetricsToken visible characters.
func newMetricsAccess(c MetricsConfig, log *slog.Logger) (*metricsAccess, error) {
	a := &metricsAccess{log: log}
	for i, s := range c.Allow {
		p, err := parseAllowPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("config: metrics.allow[%d] %q: %w", i, s, err)
		}
		a.allow = append(a.allow, p)
	}
	if c.BearerTokenFile == "" {
		return a, nil
	}
	path := c.BearerTokenFile
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: metrics.bearer_token_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: metrics.bearer_token_file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("config: metrics.bearer_token_file %s has mode %04o: other users may read it; "+
			"chmod o-rwx it (for example 0640, owner root, group the broker's)", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: metrics.bearer_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < minMetricsToken {
		return nil, fmt.Errorf("config: metrics.bearer_token_file %s: the token has %d characters; want at least %d "+
			"(for example: openssl rand -hex 32)", path, len(tok), minMetricsToken)
	}
	for _, r := range tok {
		if r <= ' ' || r >= 0x7f {
			return nil, fmt.Errorf("config: metrics.bearer_token_file %s: the token must be one line of visible ASCII characters", path)
		}
	}
	sum := sha256.Sum256([]byte(tok))
	a.token = sum[:]
	return a, nil
}

// allowed reports whether the TCP peer remoteAddr ("ip:port", as in
// http.Request.RemoteAddr) is in metrics.allow.
func (a *metricsAccess) allowed(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// tokenOK compares the request's bearer token with the configured one in
// constant time (both hashed, so that not even the length shows).
func (a *metricsAccess) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], a.token) == 1
}

// guard serves next to the clients metrics.allow and
// metrics.bearer_token_file name. Others get 403 when no token is
// configured, else 401; neither answer says which addresses are allowed.
func (a *metricsAccess) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.allowed(r.RemoteAddr) {
			next.ServeHTTP(w, r)
			return
		}
		if a.token == nil {
			http.Error(w, "metrics: this address is not in the broker's metrics.allow", http.StatusForbidden)
			return
		}
		scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoji metrics"`)
			http.Error(w, "metrics: this address is not in the broker's metrics.allow; send the bearer token of metrics.bearer_token_file", http.StatusUnauthorized)
			return
		}
		if !a.tokenOK(strings.TrimSpace(tok)) {
			a.log.Warn("metrics: a request with a wrong bearer token was refused", "client", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoji metrics", error="invalid_token"`)
			http.Error(w, "metrics: the bearer token is wrong", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handler serves the registry in the Prometheus exposition format. A
// collector that fails is logged and the others are still written.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLog{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// promLog passes promhttp's errors to the broker's log.
type promLog struct{ log *slog.Logger }

// Println logs v as one error.
func (l promLog) Println(v ...any) {
	l.log.Error("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
