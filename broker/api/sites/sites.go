// Package sites is the HTTP API of the site policy (docs/admin-api.md):
// the admins' policy document (read, replace with If-Match, export,
// import, test a URL), the kill switch (block and unblock a host,
// emergency profiles, end every session) and clinicians' site requests
// with their approval. The rules live in broker/sitepolicy and
// broker/siterequest; these handlers decode, call one of their methods and
// encode.
package sites

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/approval"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// maxImportBytes bounds an imported policy.
const maxImportBytes = 4 << 20

// Handlers serves the policy, kill switch and site request API. Every
// field is required.
type Handlers struct {
	// Policy is the site-policy service.
	Policy *sitepolicy.Service
	// KillSwitch blocks hosts, switches emergency profiles and ends every
	// session.
	KillSwitch *sitepolicy.KillSwitch
	// Requests is the site-request workflow.
	Requests *siterequest.Service
	// Guard authenticates requests and checks roles.
	Guard *api.Guard
}

// Register adds the API's routes to mux.
func (h *Handlers) Register(mux *http.ServeMux) {
	g := h.Guard
	mux.Handle("GET /api/admin/policy", g.Role(auth.Admin, h.getPolicy))
	mux.Handle("PUT /api/admin/policy", g.Role(auth.Admin, h.putPolicy))
	mux.Handle("GET /api/admin/policy/export", g.Role(auth.Admin, h.exportPolicy))
	mux.Handle("POST /api/admin/policy/import", g.Role(auth.Admin, h.importPolicy))
	mux.Handle("POST /api/admin/policy/test", g.Role(auth.Admin, h.testPolicy))
	mux.Handle("POST /api/admin/blocked", g.Role(auth.Admin, h.blockHost))
	mux.Handle("DELETE /api/admin/blocked/{host}", g.Role(auth.Admin, h.unblockHost))
	mux.Handle("POST /api/admin/emergency", g.Role(auth.Admin, h.startEmergency))
	mux.Handle("DELETE /api/admin/emergency/{group}", g.Role(auth.Admin, h.endEmergency))
	mux.Handle("DELETE /api/admin/sessions", g.Role(auth.Admin, h.endAllSessions))

	mux.Handle("POST /api/site-requests", g.Authed(h.postSiteRequest))
	mux.Handle("GET /api/site-requests/mine", g.Authed(h.mySiteRequests))
	mux.Handle("GET /api/site-requests/profiles", g.Roles(h.requestProfiles, auth.Approver, auth.Admin))
	mux.Handle("GET /api/site-requests", g.Roles(h.listSiteRequests, auth.Approver, auth.Admin))
	mux.Handle("POST /api/site-requests/{id}/approve", g.Roles(h.approveSiteRequest, auth.Approver, auth.Admin))
	mux.Handle("POST /api/site-requests/{id}/reject", g.Roles(h.rejectSiteRequest, auth.Approver, auth.Admin))
}

// policyError maps a policy change's error to a response.
func policyError(err error) error {
	if errors.Is(err, sitepolicy.ErrConflict) {
		return api.Status(http.StatusPreconditionFailed, "the policy was changed by someone else; reload it and try again")
	}
	return api.Classify(err,
		api.Class{Err: sitepolicy.ErrAlreadyBlocked, Status: http.StatusConflict},
		api.Class{Err: sitepolicy.ErrNotInPolicy, Status: http.StatusNotFound},
		api.Class{Err: policy.ErrInvalid, Status: http.StatusBadRequest},
		api.Class{Err: policy.ErrParse, Status: http.StatusBadRequest},
		api.Class{Err: policy.ErrInvalidPattern, Status: http.StatusBadRequest},
	)
}

// requestError maps a site-request workflow's error to a response; what
// is not the workflow's is the policy change's.
func requestError(err error) error {
	err = api.Classify(err,
		api.Class{Err: siterequest.ErrInvalid, Status: http.StatusBadRequest},
		api.Class{Err: approval.ErrOwnRequest, Status: http.StatusForbidden},
		api.Class{Err: siterequest.ErrDecided, Status: http.StatusConflict},
		api.Class{Err: record.ErrNotFound, Status: http.StatusNotFound},
	)
	var shown *api.Error
	if errors.As(err, &shown) {
		return err
	}
	return policyError(err)
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

func (h *Handlers) getPolicy(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	doc := h.Policy.Current().Document()
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(doc.Version)))
	api.WriteJSON(w, http.StatusOK, map[string]any{"version": doc.Version, "policy": doc})
	return nil
}

func (h *Handlers) putPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	var doc policy.Document
	if err := api.DecodeJSON(r, &doc); err != nil {
		return err
	}
	return h.replacePolicy(w, p, v, &doc)
}

// replacePolicy replaces the whole policy with doc (PUT and import), if v is
// still the current version.
func (h *Handlers) replacePolicy(w http.ResponseWriter, p auth.Principal, v int, doc *policy.Document) error {
	next, err := h.Policy.Replace(p.User, v, doc)
	if err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]int{"version": next.Version})
	return nil
}

func (h *Handlers) exportPolicy(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	data, err := h.Policy.Current().Document().YAML()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="shoji-policy.yaml"`)
	_, err = w.Write(data)
	return err
}

func (h *Handlers) importPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/yaml" && mt != "text/yaml" {
		return api.Status(http.StatusUnsupportedMediaType, "import needs the policy as application/yaml")
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxImportBytes))
	if err != nil {
		return api.Status(http.StatusRequestEntityTooLarge, "policy too large (4 MiB at most)")
	}
	doc, err := policy.ParseYAML(data)
	if err != nil {
		return policyError(err)
	}
	return h.replacePolicy(w, p, v, doc)
}

func (h *Handlers) testPolicy(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
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
	res := h.Policy.Current().CheckURL(req.Profile, req.URL)
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"allow": res.Allow, "rule": res.Rule, "reason": res.Reason, "host": res.Host,
		"trusted": res.Trusted, "uploads": res.Uploads, "profile": req.Profile,
	})
	return nil
}

func (h *Handlers) blockHost(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Host   string `json:"host"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	host, err := h.KillSwitch.Block(api.Actor(r, p), req.Host, req.Reason)
	if err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"host": host})
	return nil
}

func (h *Handlers) unblockHost(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.KillSwitch.Unblock(api.Actor(r, p), r.PathValue("host")); err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (h *Handlers) startEmergency(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req policy.Emergency
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := h.KillSwitch.StartEmergency(api.Actor(r, p), req); err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (h *Handlers) endEmergency(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.KillSwitch.EndEmergency(api.Actor(r, p), r.PathValue("group")); err != nil {
		return policyError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (h *Handlers) endAllSessions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	n := h.KillSwitch.EndAllSessions(api.Actor(r, p))
	api.WriteJSON(w, http.StatusOK, map[string]int{"ended": n})
	return nil
}

func (h *Handlers) postSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Host   string `json:"host"`
		URL    string `json:"url"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	sr, err := h.Requests.Create(api.Actor(r, p), req.Host, req.URL, req.Reason)
	if err != nil {
		return requestError(err)
	}
	api.WriteJSON(w, http.StatusCreated, sr)
	return nil
}

func (h *Handlers) mySiteRequests(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := h.Requests.Mine(p.User)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (h *Handlers) listSiteRequests(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	list, err := h.Requests.List(siterequest.State(r.URL.Query().Get("state")))
	if err != nil {
		return requestError(err)
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (h *Handlers) requestProfiles(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	api.WriteJSON(w, http.StatusOK, h.Requests.Profiles())
	return nil
}

func (h *Handlers) approveSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req siterequest.Approval
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	sr, err := h.Requests.Approve(api.Actor(r, p), r.PathValue("id"), req)
	if err != nil {
		return requestError(err)
	}
	api.WriteJSON(w, http.StatusOK, sr)
	return nil
}

func (h *Handlers) rejectSiteRequest(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Comment string `json:"comment"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	sr, err := h.Requests.Reject(api.Actor(r, p), r.PathValue("id"), req.Comment)
	if err != nil {
		return requestError(err)
	}
	api.WriteJSON(w, http.StatusOK, sr)
	return nil
}
