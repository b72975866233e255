package auth

import (
	"net"
	"sync"
	"time"
)

// sweepAt is the map size at which the limiter first drops stale entries, so
// that guessing many names or addresses cannot grow its memory without bound.
const sweepAt = 10000

// limiter holds the per-user lockout counters and the per-address login rate
// buckets. They live in memory, so a restart clears them.
type limiter struct {
	threshold int
	window    time.Duration
	perMinute int // <= 0: no rate limit

	mu        sync.Mutex
	failures  map[string]*failures
	buckets   map[string]*bucket
	nextSweep int
}

// failures counts login attempts on one user name since first. Attempts are
// counted when they start and forgiven on success, so concurrent guesses
// cannot slip past the threshold while their hashes are computed.
type failures struct {
	first time.Time
	n     int
}

// bucket is a token bucket refilled at perMinute per minute.
type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(threshold int, window time.Duration, perMinute int) *limiter {
	return &limiter{
		threshold: threshold,
		window:    window,
		perMinute: perMinute,
		failures:  map[string]*failures{},
		buckets:   map[string]*bucket{},
		nextSweep: sweepAt,
	}
}

// allowAddr takes one token from addr's bucket and reports whether there was
// one.
func (l *limiter) allowAddr(addr string, now time.Time) bool {
	if l.perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	b, ok := l.buckets[addr]
	if !ok {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[addr] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(l.perMinute), b.tokens+elapsed.Minutes()*float64(l.perMinute))
		b.last = now
	}
}

// begin counts an attempt on user and reports whether it may proceed, false
// meaning the user name is locked.
func (l *limiter) begin(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	f := l.currentLocked(user, now)
	if f == nil {
		f = &failures{first: now}
		l.failures[user] = f
	}
	if f.n >= l.threshold {
		return false
	}
	f.n++
	return true
}

// locked reports whether user is locked now.
func (l *limiter) locked(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.currentLocked(user, now)
	return f != nil && f.n >= l.threshold
}

// reset forgets user's failures: after a successful login, or when an admin
// enables the user or sets their password.
func (l *limiter) reset(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, user)
}

// currentLocked returns user's counter, dropping it when its window has
// passed.
func (l *limiter) currentLocked(user string, now time.Time) *failures {
	f := l.failures[user]
	if f != nil && now.Sub(f.first) >= l.window {
		delete(l.failures, user)
		return nil
	}
	return f
}

// sweepLocked drops expired counters and full buckets once the maps are
// large, and sets the next sweep at twice what is left.
func (l *limiter) sweepLocked(now time.Time) {
	if len(l.failures)+len(l.buckets) < l.nextSweep {
		return
	}
	for user, f := range l.failures {
		if now.Sub(f.first) >= l.window {
			delete(l.failures, user)
		}
	}
	for addr, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.perMinute) {
			delete(l.buckets, addr)
		}
	}
	l.nextSweep = max(sweepAt, 2*(len(l.failures)+len(l.buckets)))
}

// remoteHost returns the host part of a "host:port" remote address, or addr
// itself when it has no port, so that one client's connections share a
// bucket.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
