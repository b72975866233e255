package transfers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// tokens is a Verifier whose tokens are "user/role".
type tokens struct{}

func (tokens) Verify(tok string) (auth.Principal, error) {
	user, role, ok := strings.Cut(tok, "/")
	if !ok {
		return auth.Principal{}, errors.New("bad token")
	}
	return auth.Principal{User: user, Role: auth.Role(role)}, nil
}
func (tokens) ShouldRenew(auth.Principal) bool { return false }
func (tokens) Renew(auth.Principal) (auth.Token, error) {
	return auth.Token{}, errors.New("no renewal")
}

// channel is a fake transfer channel: every method records its call and
// answers with err (and its fixed values).
type channel struct {
	mu    sync.Mutex
	calls []string
	err   error
	// upload is what Upload returns with err.
	upload transfer.Transfer
	dests  []transfer.Destination
	file   string
}

func (c *channel) call(name string, p transfer.Person) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, name+" "+p.User+"/"+p.Role)
}

func (c *channel) called() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *channel) Mine(user string) ([]transfer.Transfer, error) {
	c.call("Mine", transfer.Person{User: user})
	return []transfer.Transfer{}, c.err
}

func (c *channel) Open(_ context.Context, p transfer.Person, id string) (*os.File, transfer.Transfer, error) {
	c.call("Open", p)
	if c.err != nil {
		return nil, transfer.Transfer{}, c.err
	}
	f, err := os.Open(c.file)
	return f, transfer.Transfer{ID: id, Name: "結果.pdf", Size: 5, SHA256: "abc"}, err
}

func (c *channel) Justify(p transfer.Person, id, _ string) (transfer.Transfer, error) {
	c.call("Justify", p)
	return transfer.Transfer{ID: id}, c.err
}

func (c *channel) Send(_ context.Context, p transfer.Person, _, _ string) (string, error) {
	c.call("Send", p)
	return "a.pdf", c.err
}

func (c *channel) Destinations() ([]transfer.Destination, error) {
	c.call("Destinations", transfer.Person{})
	return append([]transfer.Destination(nil), c.dests...), c.err
}

func (c *channel) AddDestination(_ context.Context, p transfer.Person, d transfer.Destination) (transfer.Destination, error) {
	c.call("AddDestination", p)
	return d, c.err
}

func (c *channel) RemoveDestination(_ context.Context, p transfer.Person, _ string) error {
	c.call("RemoveDestination", p)
	return c.err
}

func (c *channel) Upload(_ context.Context, p transfer.Person, _, _ string, _ int64, _ io.Reader) (transfer.Transfer, error) {
	c.call("Upload", p)
	return c.upload, c.err
}

func (c *channel) Answer(_ context.Context, p transfer.Person, _ string, _ []string) error {
	c.call("Answer", p)
	return c.err
}

func (c *channel) Held() ([]transfer.Transfer, error) {
	c.call("Held", transfer.Person{})
	return []transfer.Transfer{}, c.err
}

func (c *channel) Decided() ([]transfer.Transfer, error) {
	c.call("Decided", transfer.Person{})
	return []transfer.Transfer{}, c.err
}

func (c *channel) Decide(_ context.Context, p transfer.Person, id string, approve bool, _ string) (transfer.Transfer, error) {
	c.call(fmt.Sprintf("Decide(%v)", approve), p)
	return transfer.Transfer{ID: id}, c.err
}

func (c *channel) Suspended() transfer.Suspension {
	c.call("Suspended", transfer.Person{})
	return transfer.Suspension{}
}

func (c *channel) Suspend(_ context.Context, p transfer.Person, on bool, reason string) (transfer.Suspension, error) {
	c.call("Suspend", p)
	return transfer.Suspension{On: on, Reason: reason, By: p.User}, c.err
}

func newServer(t *testing.T, c *channel) *httptest.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	g := &api.Guard{Log: log, Tokens: tokens{}, Pledge: func(auth.Principal) error { return nil }, Now: time.Now}
	mux := http.NewServeMux()
	(&Handlers{Transfers: c, Guard: g, Log: log}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request as who ("user/role", or "" for no session) and
// returns the status and body.
func do(t *testing.T, srv *httptest.Server, who, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.AddCookie(&http.Cookie{Name: api.CookieName, Value: who})
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRoutesAndRoles: every route calls the transfer channel for the roles
// the broker always allowed, as the caller, and refuses the others
// (approvers alone decide, XFER-5; admins alone manage destinations and
// the kill switch).
func TestRoutesAndRoles(t *testing.T) {
	file := t.TempDir() + "/f"
	if err := os.WriteFile(file, []byte("%PDF-"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		who, method, path, body string
		status                  int
		call                    string // the channel's call; "" for none
	}{
		{"", "GET", "/api/transfers", "", 401, ""},
		{"nurse/clinician", "GET", "/api/transfers", "", 200, "Mine nurse/"},
		{"nurse/clinician", "GET", "/api/transfers/t1/file", "", 200, "Open nurse/clinician"},
		{"nurse/clinician", "POST", "/api/transfers/t1/reason", `{"reason":"needed"}`, 200, "Justify nurse/clinician"},
		{"nurse/clinician", "POST", "/api/transfers/t1/send", `{"destination":"lab"}`, 200, "Send nurse/clinician"},
		{"nurse/clinician", "GET", "/api/destinations", "", 200, "Destinations /"},
		{"nurse/clinician", "POST", "/api/uploads/c1/answer", `{"transfers":["t1"]}`, 204, "Answer nurse/clinician"},
		{"nurse/clinician", "GET", "/api/approvals/transfers", "", 403, ""},
		{"root/admin", "GET", "/api/approvals/transfers", "", 403, ""},
		{"boss/approver", "GET", "/api/approvals/transfers", "", 200, "Held /"},
		{"boss/approver", "GET", "/api/approvals/transfers?state=held", "", 200, "Held /"},
		{"boss/approver", "GET", "/api/approvals/transfers?state=decided", "", 200, "Decided /"},
		{"boss/approver", "GET", "/api/approvals/transfers?state=bogus", "", 400, ""},
		{"nurse/clinician", "POST", "/api/approvals/transfers/t1/approve", `{}`, 403, ""},
		{"boss/approver", "POST", "/api/approvals/transfers/t1/approve", `{"comment":"ok"}`, 200, "Decide(true) boss/approver"},
		{"boss/approver", "POST", "/api/approvals/transfers/t1/reject", `{}`, 200, "Decide(false) boss/approver"},
		{"boss/approver", "GET", "/api/admin/destinations", "", 403, ""},
		{"root/admin", "GET", "/api/admin/destinations", "", 200, "Destinations /"},
		{"boss/approver", "POST", "/api/admin/destinations", `{"name":"lab","dir":"/srv/lab"}`, 403, ""},
		{"root/admin", "POST", "/api/admin/destinations", `{"name":"lab","dir":"/srv/lab"}`, 201, "AddDestination root/admin"},
		{"root/admin", "DELETE", "/api/admin/destinations/lab", "", 204, "RemoveDestination root/admin"},
		{"nurse/clinician", "GET", "/api/admin/transfers/suspend", "", 403, ""},
		{"root/admin", "GET", "/api/admin/transfers/suspend", "", 200, "Suspended /"},
		{"root/admin", "PUT", "/api/admin/transfers/suspend", `{"on":true,"reason":"incident"}`, 200, "Suspend root/admin"},
	}
	for _, c := range cases {
		t.Run(c.who+" "+c.method+" "+c.path, func(t *testing.T) {
			ch := &channel{file: file}
			status, body := do(t, newServer(t, ch), c.who, c.method, c.path, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			var want []string
			if c.call != "" {
				want = []string{c.call}
			}
			if got := ch.called(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		})
	}
}

// TestErrorStatuses: the transfer channel's errors become their statuses,
// with the error as the message; any other error is a 500 whose cause is
// not shown.
func TestErrorStatuses(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("%w: t1", transfer.ErrNotFound), 404, "no such transfer: t1"},
		{transfer.ErrForbidden, 403, "forbidden"},
		{fmt.Errorf("%w: it is released", transfer.ErrState), 409, "not possible in this state: it is released"},
		{fmt.Errorf("%w: the reason is empty", transfer.ErrInvalid), 400, "invalid request: the reason is empty"},
		{transfer.ErrTooLarge, 413, "file too large"},
		{errors.New("disk on fire"), 500, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			status, body := do(t, newServer(t, &channel{err: c.err}), "nurse/clinician", "POST", "/api/transfers/t1/reason", `{"reason":"x"}`)
			var got api.ErrorBody
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%d %s: %v", status, body, err)
			}
			if status != c.status || got.Error != c.msg {
				t.Errorf("%d %q, want %d %q", status, got.Error, c.status, c.msg)
			}
		})
	}
}

// TestDestinationsHidePaths: clinicians see a destination's name and
// description, not the broker's directory or who added it; admins see all.
func TestDestinationsHidePaths(t *testing.T) {
	d := transfer.Destination{Name: "lab", Description: "検査部", Dir: "/srv/lab", AddedBy: "root"}
	for _, c := range []struct {
		who, path string
		want      transfer.Destination
	}{
		{"nurse/clinician", "/api/destinations", transfer.Destination{Name: "lab", Description: "検査部"}},
		{"root/admin", "/api/destinations", d},
		{"root/admin", "/api/admin/destinations", d},
	} {
		status, body := do(t, newServer(t, &channel{dests: []transfer.Destination{d}}), c.who, "GET", c.path, "")
		var got []transfer.Destination
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
			t.Fatalf("%s %s: %d %s %v", c.who, c.path, status, body, err)
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s %s: %+v, want %+v", c.who, c.path, got, c.want)
		}
	}
}

// TestUploadRefusals: an upload refused with a ledger entry answers with
// the reason and the entry; an upload without a name is a 400.
func TestUploadRefusals(t *testing.T) {
	entry := transfer.Transfer{ID: "t9", Direction: transfer.Upload, State: transfer.Rejected, Reason: "executables may not be uploaded"}
	for _, c := range []struct {
		name   string
		err    error
		header string
		status int
		call   bool
	}{
		{"refused by policy", transfer.ErrForbidden, "a.exe", 403, true},
		{"too large", transfer.ErrTooLarge, "big.iso", 413, true},
		{"invalid", transfer.ErrInvalid, "x", 400, true},
		{"no name", nil, "", 400, false},
		{"bad escape", nil, "%zz", 400, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := &channel{err: c.err, upload: entry}
			srv := newServer(t, ch)
			req, err := http.NewRequest("POST", srv.URL+"/api/uploads/c1", strings.NewReader("MZ"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Shoji-Filename", c.header)
			req.AddCookie(&http.Cookie{Name: api.CookieName, Value: "nurse/clinician"})
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Error    string            `json:"error"`
				Transfer transfer.Transfer `json:"transfer"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.call && (got.Error != entry.Reason || got.Transfer.ID != entry.ID) {
				t.Errorf("answer %+v, want the reason and the entry", got)
			}
			if called := len(ch.called()) > 0; called != c.call {
				t.Errorf("channel called: %v, want %v", called, c.call)
			}
		})
	}
}

// TestSaveHeaders: a released file goes to the terminal as an attachment
// the terminal's browser does not render.
func TestSaveHeaders(t *testing.T) {
	file := t.TempDir() + "/f"
	if err := os.WriteFile(file, []byte("%PDF-"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, &channel{file: file})
	req, err := http.NewRequest("GET", srv.URL+"/api/transfers/t1/file", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: api.CookieName, Value: "nurse/clinician"})
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h := resp.Header
	if string(b) != "%PDF-" || h.Get("Content-Type") != "application/octet-stream" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox") ||
		h.Get("Cache-Control") != "no-store" || h.Get("X-Shoji-SHA256") != "abc" || h.Get("Content-Length") != "5" {
		t.Errorf("body %q headers %v", b, h)
	}
}
