package broker

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// TestInjectedClockStampsRecords checks that the records the broker writes
// itself, at start (a start warning) and as a session starts and ends,
// carry the time of Options.Now rather than the wall clock's.
func TestInjectedClockStampsRecords(t *testing.T) {
	at := time.Date(2031, 4, 1, 9, 30, 0, 0, time.UTC)
	f := newAPIWithClock(t, nil, func() time.Time { return at })
	s, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician"}, testViewport)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Sessions().End("alice", session.ReasonLogout)

	for _, tc := range []struct {
		typ  audit.Type
		user string
	}{
		{audit.TypeStartWarning, ""}, // transfer.clamd is empty by default
		{audit.TypeSessionStart, "alice"},
		{audit.TypeSessionEnd, "alice"},
	} {
		events := f.auditEvents(audit.Filter{Type: tc.typ})
		if len(events) == 0 {
			t.Errorf("no %s record", tc.typ)
			continue
		}
		for _, e := range events {
			if e.User != tc.user || (tc.user != "" && e.Session != s.ID) {
				t.Errorf("%s record of %q (session %s), want %q's", tc.typ, e.User, e.Session, tc.user)
			}
			if !e.Time.Equal(at) {
				t.Errorf("%s record at %s, want the injected clock's %s", tc.typ, e.Time, at)
			}
		}
	}
}

// TestEgressDenyFindsSession checks that a refusal of the egress proxy is
// recorded with the user of the session it names, among many sessions, and
// that a refusal naming a session the broker does not have (a pooled
// browser's, or one that just ended) is still recorded with what is known.
func TestEgressDenyFindsSession(t *testing.T) {
	f := newAPI(t, nil)
	ids := map[string]string{} // user by session ID
	for i := range 6 {
		user := fmt.Sprintf("user-%d", i)
		s, err := f.srv.Sessions().Attach(context.Background(), session.Owner{
			User: user, Role: "clinician", Terminal: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}),
		}, testViewport)
		if err != nil {
			t.Fatal(err)
		}
		ids[user] = s.ID
	}
	for _, tc := range []struct {
		name, session, host string
		user, terminal      string
	}{
		{"known session", ids["user-4"], "four.example", "user-4", "10.0.0.5"},
		{"another known session", ids["user-0"], "zero.example", "user-0", "10.0.0.1"},
		{"unknown session", "no-such-session", "nobody.example", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.egressDecision(egress.Event{Session: tc.session, Method: "CONNECT", Host: tc.host, Port: 443,
				Rule: egress.RuleDefaultDeny, Reason: egress.ReasonNotInAllowlist, Time: time.Now()})
			var got []audit.Event
			for _, e := range f.auditEvents(audit.Filter{Type: audit.TypeDeny}) {
				if e.Host == tc.host {
					got = append(got, e)
				}
			}
			if len(got) != 1 {
				t.Fatalf("%d deny records for %s, want 1: %+v", len(got), tc.host, got)
			}
			e := got[0]
			if e.Session != tc.session || e.User != tc.user || e.Terminal != tc.terminal {
				t.Errorf("deny record of session %q user %q terminal %q, want %q %q %q",
					e.Session, e.User, e.Terminal, tc.session, tc.user, tc.terminal)
			}
			if want := "egress CONNECT " + tc.host + ":443"; e.What != want {
				t.Errorf("deny record says %q, want %q", e.What, want)
			}
		})
	}
}

// TestNoDirectClock fails when a file of the broker package (tests aside)
// reads the wall clock itself (time.Now, time.Since, time.Until) instead of
// the broker's clock, Server.now from Options.Now. The one place allowed is
// where New makes time.Now that clock's default.
func TestNoDirectClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var allowed int
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		timePkg := ""
		for _, imp := range file.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == "time" {
				timePkg = "time"
				if imp.Name != nil {
					timePkg = imp.Name.Name
				}
			}
		}
		if timePkg == "" {
			continue
		}
		for _, decl := range file.Decls {
			fn, _ := decl.(*ast.FuncDecl)
			ast.Inspect(decl, func(n ast.Node) bool {
				// s.now = time.Now in New is the clock's default.
				if as, ok := n.(*ast.AssignStmt); ok && fn != nil && fn.Recv == nil && fn.Name.Name == "New" &&
					len(as.Lhs) == 1 && len(as.Rhs) == 1 && isSelector(as.Lhs[0], "s", "now") && isSelector(as.Rhs[0], timePkg, "Now") {
					allowed++
					return false
				}
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				for _, f := range []string{"Now", "Since", "Until"} {
					if isSelector(sel, timePkg, f) {
						t.Errorf("%s: %s.%s reads the wall clock; use the broker's clock (s.now, Options.Now) or take it as a parameter",
							fset.Position(sel.Pos()), timePkg, f)
					}
				}
				return true
			})
		}
	}
	if allowed != 1 {
		t.Errorf("New defaults the broker's clock to time.Now %d times, want once (s.now = time.Now)", allowed)
	}
}

// isSelector says whether e is x.sel with x a plain identifier.
func isSelector(e ast.Expr, x, sel string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok || s.Sel.Name != sel {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == x
}
