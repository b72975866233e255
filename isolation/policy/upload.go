package policy

import (
	"errors"
	"fmt"

	"github.com/shoji-rbi/shoji/isolation/egress"
)

// RuleDenylistUploads decides an upload from a denylist profile: such a
// profile has no upload destinations, since none of its rules can carry
// uploads: true.
const RuleDenylistUploads = "denylist-no-uploads"

// Transfers returns a profile's transfer policy in force, resolved
// (Transfers.Resolve): the defaults filled in, no part empty. The built-in
// profile "" has the defaults; a profile the policy lacks transfers
// nothing. The result shares nothing with the Set.
func (s *Set) Transfers(profileName string) Transfers {
	if profileName == "" {
		return DefaultTransfers()
	}
	p := s.profiles[profileName]
	if p == nil {
		return transfersOff()
	}
	return *p.transfers.clone()
}

// UploadDestination decides whether a page at rawURL may receive an
// uploaded file (XFER-7): allow only when the URL is https, the profile's
// rules allow it (CheckURL, path included; blocked hosts are denied) and
// the rule that allows it has uploads: true. A denylist profile never
// allows uploads, since its rules cannot carry the flag. Whether the file
// itself may go is Transfers(profileName).DecideFile(DirUpload, …);
// DecideUpload asks both.
func (s *Set) UploadDestination(profileName, rawURL string) Decision {
	off := func(rule, reason string) Decision { return Decision{Action: ActionOff, Rule: rule, Reason: reason} }
	const httpsOnly = "files are uploaded only to HTTPS sites"
	t, err := parseTarget(rawURL)
	switch {
	case errors.Is(err, errScheme):
		return off(RuleScheme, httpsOnly)
	case err != nil:
		return off(egress.RuleBadRequest, fmt.Sprintf("cannot read the destination: %v", err))
	case t.scheme != "https":
		return off(RuleScheme, httpsOnly)
	}
	r := s.evaluate(profileName, t, true)
	if !r.Allow {
		return off(r.Rule, r.Reason)
	}
	if p := s.profiles[profileName]; p == nil || p.mode == ModeDenylist {
		return off(RuleDenylistUploads, fmt.Sprintf("profile %q allows no uploads: a denylist profile has no upload destinations", profileName))
	}
	if !r.Uploads {
		return off(r.Rule, fmt.Sprintf("%s is not an upload destination", r.Host))
	}
	return Decision{Action: ActionAllow, Rule: r.Rule}
}

// DecideUpload decides an upload of a file (class, MIME type, size as for
// FilePolicy.Decide) to the page at rawURL: UploadDestination first, then
// the profile's upload policy.
func (s *Set) DecideUpload(profileName, rawURL, class, mimeType string, size int64) Decision {
	if d := s.UploadDestination(profileName, rawURL); d.Action != ActionAllow {
		return d
	}
	return s.Transfers(profileName).DecideFile(DirUpload, class, mimeType, size)
}

// Transfers is Set.Transfers for this profile.
func (pp *ProfilePolicy) Transfers() Transfers {
	return pp.current().Transfers(pp.profile)
}

// UploadDestination is Set.UploadDestination for this profile.
func (pp *ProfilePolicy) UploadDestination(rawURL string) Decision {
	return pp.current().UploadDestination(pp.profile, rawURL)
}

// DecideUpload is Set.DecideUpload for this profile.
func (pp *ProfilePolicy) DecideUpload(rawURL, class, mimeType string, size int64) Decision {
	return pp.current().DecideUpload(pp.profile, rawURL, class, mimeType, size)
}
