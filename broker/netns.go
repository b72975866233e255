package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/netns"
)

// missingNamespace is the command prefix for a launch whose session has no
// namespace: it cannot be executed, so the browser fails to start rather
// than start in the broker's namespace.
var missingNamespace = []string{"/nonexistent/shoji-netns-missing"}

// namespaces tracks the network namespaces of the sessions' browsers
// (Config.NetNS).
type namespaces struct {
	log *slog.Logger

	mu sync.Mutex
	// current is each session's newest namespace, which its next browser
	// starts in.
	current map[string]*netns.NS
	// live is every namespace not yet removed.
	live map[*netns.NS]struct{}
}

// newNamespaces checks that namespaces can be used and removes those a
// killed broker left behind.
func newNamespaces(log *slog.Logger) (*namespaces, error) {
	if err := netns.Available(); err != nil {
		return nil, fmt.Errorf("config: netns: %w", err)
	}
	removed, err := netns.RemoveStale()
	if err != nil {
		return nil, fmt.Errorf("remove stale network namespaces: %w", err)
	}
	if len(removed) > 0 {
		log.Info("removed stale network namespaces", "names", removed)
	}
	return &namespaces{
		log:     log,
		current: make(map[string]*netns.NS),
		live:    make(map[*netns.NS]struct{}),
	}, nil
}

// commandPrefix is chrome.Config.CommandPrefix: the browser of sessionID
// starts in the session's namespace.
func (n *namespaces) commandPrefix(sessionID string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ns := n.current[sessionID]
	if ns == nil {
		n.log.Error("no network namespace for the browser; refusing to start it", "session", sessionID)
		return missingNamespace
	}
	return ns.Command()
}

// create makes a namespace for sessionID, the one its next browser starts
// in.
func (n *namespaces) create(sessionID string) (*netns.NS, error) {
	ns, err := netns.New(sessionID)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.current[sessionID] = ns
	n.live[ns] = struct{}{}
	n.mu.Unlock()
	return ns, nil
}

// remove deletes ns, which was made for sessionID.
func (n *namespaces) remove(sessionID string, ns *netns.NS) error {
	n.mu.Lock()
	if n.current[sessionID] == ns {
		delete(n.current, sessionID)
	}
	delete(n.live, ns)
	n.mu.Unlock()
	return ns.Close()
}

// closeAll removes every namespace left, at shutdown.
func (n *namespaces) closeAll() error {
	n.mu.Lock()
	left := make([]*netns.NS, 0, len(n.live))
	for ns := range n.live {
		left = append(left, ns)
	}
	clear(n.live)
	clear(n.current)
	n.mu.Unlock()
	var errs []error
	for _, ns := range left {
		errs = append(errs, ns.Close())
	}
	return errors.Join(errs...)
}

// netnsOpener opens each session's egress listener inside a fresh network
// namespace, which the session's browser then starts in.
type netnsOpener struct {
	egressOpener
	ns *namespaces
}

func (o netnsOpener) Open(info session.Info) (session.Egress, error) {
	ns, err := o.ns.create(info.ID)
	if err != nil {
		return nil, fmt.Errorf("network namespace for session %s: %w", info.ID, err)
	}
	ln, err := ns.Listen("127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, o.ns.remove(info.ID, ns))
	}
	pol := newSessionPolicy(o.sp, info)
	l, err := o.p.OpenWith(info.ID, egress.ListenerOptions{Policy: pol, Addrs: pol, Isolated: ln})
	if err != nil {
		_ = ln.Close()
		return nil, errors.Join(err, o.ns.remove(info.ID, ns))
	}
	return &netnsEgress{
		sessionEgress: &sessionEgress{Listener: l, sessionPolicy: pol},
		ns:            ns,
		reg:           o.ns,
		session:       info.ID,
	}, nil
}

// netnsEgress is a session's egress listener in its browser's namespace.
type netnsEgress struct {
	*sessionEgress
	ns      *netns.NS
	reg     *namespaces
	session string
}

// Close closes the listener and removes the namespace.
func (e *netnsEgress) Close() error {
	return errors.Join(e.sessionEgress.Close(), e.reg.remove(e.session, e.ns))
}
