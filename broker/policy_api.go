package broker

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/approval"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Limits on site requests.
const (
	maxReasonBytes  = 2000
	maxCommentBytes = 2000
	maxURLBytes     = 8 << 10
	// maxNoteReason bounds the request's reason quoted in the note of the
	// rule an approval adds, "…" included.
	maxNoteReason = 200
)

// policyRoutes adds the policy, site request and kill switch API
// (docs/admin-api.md).
func (s *Server) policyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/admin/policy", s.guard.Role(auth.Admin, s.getPolicy))
	mux.Handle("PUT /api/admin/policy", s.guard.Role(auth.Admin, s.putPolicy))
	mux.Handle("GET /api/admin/policy/export", s.guard.Role(auth.Admin, s.exportPolicy))
	mux.Handle("POST /api/admin/policy/import", s.guard.Role(auth.Admin, s.importPolicy))
	mux.Handle("POST /api/admin/policy/test", s.guard.Role(auth.Admin, s.testPolicy))
	mux.Handle("POST /api/admin/blocked", s.guard.Role(auth.Admin, s.blockHost))
	mux.Handle("DELETE /api/admin/blocked/{host}", s.guard.Role(auth.Admin, s.unblockHost))
	mux.Handle("POST /api/admin/emergency", s.guard.Role(auth.Admin, s.startEmergency))
	mux.Handle("DELETE /api/admin/emergency/{group}", s.guard.Role(auth.Admin, s.endEmergency))
	mux.Handle("DELETE /api/admin/sessions", s.guard.Role(auth.Admin, s.endAllSessions))

	mux.Handle("POST /api/site-requests", s.guard.Authed(s.postSiteRequest))
	mux.Handle("GET /api/site-requests/mine", s.guard.Authed(s.mySiteRequests))
	mux.Handle("GET /api/site-requests/profiles", s.guard.Roles(s.requestProfiles, auth.Approver, auth.Admin))
	mux.Handle("GET /api/site-requests", s.guard.Roles(s.listSiteRequests, auth.Approver, auth.Admin))
	mux.Handle("POST /api/site-requests/{id}/approve", s.guard.Roles(s.approveSiteRequest, auth.Approver, auth.Admin))
	mux.Handle("POST /api/site-requests/{id}/reject", s.guard.Roles(s.rejectSiteRequest, auth.Approver, auth.Admin))
}

// policyError maps a policy change's error to a response.
func policyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sitepolicy.ErrConflict):
		return api.Status(http.StatusPreconditionFailed, "the policy was changed by someone else; reload it and try again")
	case errors.Is(err, policy.ErrInvalid), errors.Is(err, policy.ErrParse), errors.Is(err, policy.ErrInvalidPattern):
		return &api.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	return err
}

// ifMatch reads the required If-Match version.
func ifMatch(r *http.Request) (int, error) {
	h := strings.Trim(strings.TrimPrefix(r.Header.Get("If-Match"), "W/"), `"`)
	if h == "" {
		return 0, api.Status(http.StatusPreconditionRequired, `If-Match is required: send the version you edited, e.g. If-Match: "3"`)
	}
	v, err := strconv.Atoi(h)
	if err != nil || v < 0 {
		return 0, api.Status(http.StatusBadRequest, "If-Match: want a version number")
	}
	return v, nil
}

func (s *Server) getPolicy(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	doc := s.policy.Current().Document()
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(doc.Version)))
	api.WriteJSON(w, http.StatusOK, map[string]any{"version": doc.Version, "policy": doc})
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	var doc policy.Document
	if err := api.DecodeJSON(r, &doc); err != nil {
		return err
	}
	return s.replacePolicy(w, p, v, &doc)
}

// replacePolicy replaces the whole policy with doc (PUT and import), if v is
// still the current version.
func (s *Server) replacePolicy(w http.ResponseWriter, p auth.Principal, v int, doc *policy.Document) error {
	stampRules(doc, p.User, s.now().UTC())
	next, err := s.policy.Change(p.User, v, func(d *policy.Document) error {
		doc.Version = d.Version
		*d = *doc
		return nil
	})
	if err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]int{"version": next.Version})
	return nil
}

// stampRules records who added the rules that say nothing of it: the server,
// not the client, says who changed the policy.
func stampRules(d *policy.Document, by string, now time.Time) {
	for i := range d.Profiles {
		for j := range d.Profiles[i].Rules {
			r := &d.Profiles[i].Rules[j]
			if r.AddedBy == "" {
				r.AddedBy = by
			}
			if r.Added.IsZero() {
				r.Added = now
			}
		}
	}
}

func (s *Server) exportPolicy(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	data, err := s.policy.Current().Document().YAML()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="shoji-policy.yaml"`)
	_, err = w.Write(data)
	return err
}

func (s *Server) importPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/yaml" && mt != "text/yaml" {
		return api.Status(http.StatusUnsupportedMediaType, "import needs the policy as application/yaml")
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 4<<20))
	if err != nil {
		return api.Status(http.StatusRequestEntityTooLarge, "policy too large (4 MiB at most)")
	}
	doc, err := policy.ParseYAML(data)
	if err != nil {
		return policyError(err)
	}
	return s.replacePolicy(w, p, v, doc)
}

func (s *Server) testPolicy(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req struct {
		URL     string `json:"url"`
		Profile string `json:"profile"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.URL == "" {
		return api.Status(http.StatusBadRequest, "url: empty")
	}
	res := s.policy.Current().CheckURL(req.Profile, req.URL)
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"allow": res.Allow, "rule": res.Rule, "reason": res.Reason, "host": res.Host,
		"trusted": res.Trusted, "uploads": res.Uploads, "profile": req.Profile,
	})
	return nil
}

func (s *Server) blockHost(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Host   string `json:"host"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	host, _, err := egress.Normalize(strings.TrimSpace(req.Host) + ":443")
	if err != nil || req.Host == "" {
		return api.Status(http.StatusBadRequest, fmt.Sprintf("host %q: not a host name", req.Host))
	}
	if strings.TrimSpace(req.Reason) == "" {
		return api.Status(http.StatusBadRequest, "reason: say why the host is blocked")
	}
	_, err = s.policy.Change(p.User, -1, func(d *policy.Document) error {
		for _, b := range d.Blocked {
			if b.Host == host {
				return api.Status(http.StatusConflict, host+" is already blocked")
			}
		}
		d.Blocked = append(d.Blocked, policy.BlockedHost{Host: host, Reason: req.Reason, By: p.User, At: s.now().UTC()})
		return nil
	})
	if err != nil {
		return policyError(err)
	}
	// The policy refuses new connections from now on; cut the ones already
	// open (tunnels, WebSockets, kept-alive forwards) too.
	cut := 0
	if s.proxy != nil {
		cut = s.proxy.CutHost(host)
	}
	s.log.Warn("kill switch: host blocked everywhere", "event", "kill_switch", "by", p.User, "host", host, "reason", req.Reason, "connections_cut", cut)
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "block_host", host, req.Reason))
	api.WriteJSON(w, http.StatusOK, map[string]string{"host": host})
	return nil
}

// removeFrom deletes the entries of *list that match, or fails with 404
// saying notFound when none does.
func removeFrom[T any](list *[]T, match func(T) bool, notFound string) error {
	n := len(*list)
	*list = slices.DeleteFunc(*list, match)
	if len(*list) == n {
		return api.Status(http.StatusNotFound, notFound)
	}
	return nil
}

func (s *Server) unblockHost(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	host := r.PathValue("host")
	_, err := s.policy.Change(p.User, -1, func(d *policy.Document) error {
		return removeFrom(&d.Blocked, func(b policy.BlockedHost) bool { return b.Host == host }, host+" is not blocked")
	})
	if err != nil {
		return policyError(err)
	}
	s.log.Info("kill switch lifted", "event", "kill_switch", "by", p.User, "host", host)
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "unblock_host", host, ""))
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *Server) startEmergency(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req policy.Emergency
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	req.By = p.User
	_, err := s.policy.Change(p.User, -1, func(d *policy.Document) error {
		d.Emergencies = slices.DeleteFunc(d.Emergencies, func(e policy.Emergency) bool { return e.Group == req.Group })
		d.Emergencies = append(d.Emergencies, req)
		return nil
	})
	if err != nil {
		return policyError(err)
	}
	s.log.Warn("emergency profile on", "event", "emergency", "by", p.User, "group", req.Group,
		"profile", req.Profile, "reason", req.Reason, "expires", req.Expires)
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "emergency_on", req.Group+" → "+req.Profile, req.Reason))
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *Server) endEmergency(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	group := r.PathValue("group")
	_, err := s.policy.Change(p.User, -1, func(d *policy.Document) error {
		return removeFrom(&d.Emergencies, func(e policy.Emergency) bool { return e.Group == group }, "no emergency profile for group "+group)
	})
	if err != nil {
		return policyError(err)
	}
	s.log.Info("emergency profile off", "event", "emergency", "by", p.User, "group", group)
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "emergency_off", group, ""))
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *Server) endAllSessions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	infos := s.sess.List()
	for _, i := range infos {
		s.sess.End(i.User, session.ReasonAdmin)
	}
	s.log.Warn("kill switch: all sessions ended", "event", "kill_switch", "by", p.User, "sessions", len(infos))
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "end_all_sessions", fmt.Sprintf("%d sessions", len(infos)), ""))
	api.WriteJSON(w, http.StatusOK, map[string]int{"ended": len(infos)})
	return nil
}

func (s *Server) postSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Host   string `json:"host"`
		URL    string `json:"url"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	host, _, err := egress.Normalize(strings.TrimSpace(req.Host) + ":443")
	if err != nil || req.Host == "" {
		return api.Status(http.StatusBadRequest, fmt.Sprintf("host %q: not a host name", req.Host))
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > maxReasonBytes {
		return api.Status(http.StatusBadRequest, fmt.Sprintf("reason: say why you need the site (at most %d bytes)", maxReasonBytes))
	}
	if len(req.URL) > maxURLBytes {
		return api.Status(http.StatusBadRequest, "url: too long")
	}
	set := s.policy.Current()
	var terminal netip.Addr
	if sess, ok := s.sess.Get(p.User); ok {
		terminal = sess.Terminal
	}
	sr, err := s.store.CreateSiteRequest(store.SiteRequest{
		User: p.User, Host: host, URL: req.URL, Reason: req.Reason,
		Profile: set.ProfileFor(p.User, string(p.Role), terminal), Created: s.now().UTC(),
	})
	if err != nil {
		return err
	}
	s.log.Info("site requested", "event", "site_request", "user", p.User, "host", host, "id", sr.ID)
	s.audit.Record(audit.SiteRequest(s.now(), api.Actor(r, p), host, req.URL, req.Reason))
	api.WriteJSON(w, http.StatusCreated, sr)
	return nil
}

func (s *Server) mySiteRequests(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := s.store.ListSiteRequests(func(r store.SiteRequest) bool { return r.User == p.User })
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) listSiteRequests(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	state := r.URL.Query().Get("state")
	switch state {
	case "", store.RequestPending, store.RequestApproved, store.RequestRejected:
	default:
		return api.Status(http.StatusBadRequest, "state: want pending, approved, rejected or nothing")
	}
	list, err := s.store.ListSiteRequests(func(sr store.SiteRequest) bool { return state == "" || sr.State == state })
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) requestProfiles(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	names := []string{}
	for _, p := range s.policy.Current().Document().Profiles {
		names = append(names, p.Name)
	}
	api.WriteJSON(w, http.StatusOK, names)
	return nil
}

// checkDecision says whether p may decide the request now: it is pending,
// and it is not p's own (approval.CheckDecider).
func checkDecision(sr store.SiteRequest, p auth.Principal) error {
	if approval.CheckDecider(sr.User, p.User) != nil {
		return api.Status(http.StatusForbidden, "you cannot decide your own request; another approver must")
	}
	if sr.State != store.RequestPending {
		return api.Status(http.StatusConflict, "the request was already "+sr.State)
	}
	return nil
}

// decide records an approver's decision on a pending request; nobody
// decides their own request (XFER-5, ALLOW-1).
func (s *Server) decide(id string, p auth.Principal, fn func(*store.SiteRequest) error) (store.SiteRequest, error) {
	sr, err := s.store.UpdateSiteRequest(id, func(r *store.SiteRequest) error {
		if err := checkDecision(*r, p); err != nil {
			return err
		}
		r.DecidedBy, r.Decided = p.User, s.now().UTC()
		return fn(r)
	})
	if errors.Is(err, record.ErrNotFound) {
		return sr, api.Status(http.StatusNotFound, "no such request")
	}
	return sr, err
}

func (s *Server) approveSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Profile string `json:"profile"`
		Expires string `json:"expires"`
		Comment string `json:"comment"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	var expires time.Time
	if req.Expires != "" {
		t, err := time.Parse(time.RFC3339, req.Expires)
		if err != nil || !t.After(s.now()) {
			return api.Status(http.StatusBadRequest, "expires: want a future RFC 3339 time, e.g. 2027-01-31T00:00:00+09:00")
		}
		expires = t.UTC()
	}
	if len(req.Comment) > maxCommentBytes {
		return api.Status(http.StatusBadRequest, "comment: too long")
	}
	if s.policy.Current().Document().Profile(req.Profile) == nil {
		return api.Status(http.StatusBadRequest, fmt.Sprintf("profile %q: no such profile", req.Profile))
	}
	// Check first, then add the rule, then record the decision: a failure
	// in between leaves the request pending, never approved without a rule.
	cur, err := s.store.SiteRequestByID(r.PathValue("id"))
	if errors.Is(err, record.ErrNotFound) {
		return api.Status(http.StatusNotFound, "no such request")
	}
	if err != nil {
		return err
	}
	if err := checkDecision(cur, p); err != nil {
		return err
	}
	pattern := requestPattern(cur)
	_, err = s.policy.Change(p.User, -1, func(d *policy.Document) error {
		prof := d.Profile(req.Profile)
		for _, rule := range prof.Rules {
			if rule.Pattern == pattern {
				return nil // already allowed there
			}
		}
		prof.Rules = append(prof.Rules, policy.Rule{
			Pattern: pattern, Expires: expires, AddedBy: p.User, Added: s.now().UTC(),
			Note: "site request " + cur.ID + " by " + cur.User + ": " + truncate.Ellipsis(cur.Reason, maxNoteReason),
		})
		return nil
	})
	if err != nil {
		return policyError(err)
	}
	sr, err := s.decide(cur.ID, p, func(sr *store.SiteRequest) error {
		sr.State, sr.Profile, sr.Expires, sr.Comment = store.RequestApproved, req.Profile, expires, req.Comment
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("site request approved", "event", "site_request_decision", "by", p.User, "id", sr.ID,
		"user", sr.User, "host", sr.Host, "profile", sr.Profile, "expires", sr.Expires)
	s.audit.Record(audit.SiteDecision(s.now(), api.Actor(r, p), sr.User, sr.Host, "approved", sr.Comment))
	s.notifyRequester(sr)
	api.WriteJSON(w, http.StatusOK, sr)
	return nil
}

func (s *Server) rejectSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Comment string `json:"comment"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Comment) == "" || len(req.Comment) > maxCommentBytes {
		return api.Status(http.StatusBadRequest, "comment: say why the request is rejected")
	}
	sr, err := s.decide(r.PathValue("id"), p, func(sr *store.SiteRequest) error {
		sr.State, sr.Comment = store.RequestRejected, req.Comment
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("site request rejected", "event", "site_request_decision", "by", p.User, "id", sr.ID, "user", sr.User, "host", sr.Host)
	s.audit.Record(audit.SiteDecision(s.now(), api.Actor(r, p), sr.User, sr.Host, "rejected", sr.Comment))
	s.notifyRequester(sr)
	api.WriteJSON(w, http.StatusOK, sr)
	return nil
}

// notifyRequester tells the requester's viewer, if open, what was decided.
func (s *Server) notifyRequester(sr store.SiteRequest) {
	if sess, ok := s.sess.Get(sr.User); ok {
		sess.Notify(protocol.SiteRequest{ID: sr.ID, Host: sr.Host, State: sr.State, Comment: sr.Comment})
	}
}

// requestPattern is the rule an approval adds: the host, with the port when
// the requested URL used one other than its scheme's default.
func requestPattern(sr store.SiteRequest) string {
	u, err := url.Parse(sr.URL)
	if err != nil || u.Port() == "" || !strings.EqualFold(u.Hostname(), sr.Host) {
		return sr.Host
	}
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		return sr.Host
	}
	return net.JoinHostPort(sr.Host, u.Port())
}
