package protocol

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The viewer's sources and the protocol's documentation, from this
// package's directory.
const (
	staticDir = "../../web/static"
	viewerJS  = "../../web/static/viewer.js"
	docFile   = "../../docs/protocol.md"
)

// jsSentRE matches a message literal the viewer builds to send, as in
// send({ type: 'nav', … }), this.move = { type: 'mouse', … } and
// hello: () => ({ type: 'hello', … }). Element attributes
// (el('button', { type: 'button' })) and Blob options are not preceded by
// "(" or "=".
var jsSentRE = regexp.MustCompile(`(?:\(|=)\s*\{\s*type:\s*'([A-Za-z]+)'`)

// jsCaseRE matches a case of the viewer's message switch.
var jsCaseRE = regexp.MustCompile(`case\s+'([A-Za-z]+)'\s*:`)

// docTypeRE matches a row of a message table: | `type` | … |.
var docTypeRE = regexp.MustCompile("(?m)^\\|\\s*`([A-Za-z]+)`\\s*\\|")

// jsSent returns the message types the viewer's JavaScript sends.
func jsSent(t *testing.T) map[Type]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(staticDir, "*.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no viewer scripts in %s: %v", staticDir, err)
	}
	set := map[Type]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range jsSentRE.FindAllSubmatch(src, -1) {
			set[Type(m[1])] = true
		}
	}
	return set
}

// jsHandled returns the message types the viewer's onMessage switch
// handles.
func jsHandled(t *testing.T) map[Type]bool {
	t.Helper()
	src, err := os.ReadFile(viewerJS)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "function onMessage(")
	if start < 0 {
		t.Fatalf("%s has no function onMessage: the test cannot find the viewer's message switch", viewerJS)
	}
	body := s[start:]
	end := strings.Index(body, "default:")
	if end < 0 {
		t.Fatalf("%s: onMessage's switch has no default case", viewerJS)
	}
	set := map[Type]bool{}
	for _, m := range jsCaseRE.FindAllStringSubmatch(body[:end], -1) {
		set[Type(m[1])] = true
	}
	return set
}

// docTypes returns the message types documented in the section of
// docs/protocol.md with the given heading.
func docTypes(t *testing.T, heading string) map[Type]bool {
	t.Helper()
	src, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("%s has no section %q", docFile, heading)
	}
	section := s[start+len(heading)+2:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	set := map[Type]bool{}
	for _, m := range docTypeRE.FindAllStringSubmatch(section, -1) {
		set[Type(m[1])] = true
	}
	return set
}

func setOf(types []Type) map[Type]bool {
	set := map[Type]bool{}
	for _, t := range types {
		set[t] = true
	}
	return set
}

// missing returns the members of a that b lacks, sorted.
func missing(a, b map[Type]bool) []Type {
	var out []Type
	for t := range a {
		if !b[t] {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// TestMessageSetsAgree fails when the Go, JavaScript and documented sets
// of message types differ, in either direction and either way over the
// wire: a type the server sends that the viewer does not handle, a type
// the viewer handles that the server never sends, a type the viewer sends
// that the server does not accept, and any of them missing from (or only
// in) docs/protocol.md.
func TestMessageSetsAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []namedSet
	}{
		{"server → viewer", []namedSet{
			{"Go (protocol.ServerTypes)", setOf(ServerTypes)},
			{"the viewer's onMessage (web/static/viewer.js)", jsHandled(t)},
			{"docs/protocol.md, Server → viewer", docTypes(t, "## Server → viewer")},
		}},
		{"viewer → server", []namedSet{
			{"Go (protocol.ViewerTypes)", setOf(ViewerTypes)},
			{"the viewer's scripts (web/static/*.js)", jsSent(t)},
			{"docs/protocol.md, Viewer → server", docTypes(t, "## Viewer → server")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.sets {
				if len(s.set) < 5 {
					t.Fatalf("%s: only %v found; the extraction is broken", s.name, keys(s.set))
				}
			}
			for i, a := range tc.sets {
				for j, b := range tc.sets {
					if i == j {
						continue
					}
					if m := missing(a.set, b.set); len(m) > 0 {
						t.Errorf("%v in %s but not in %s", m, a.name, b.name)
					}
				}
			}
		})
	}
}

type namedSet struct {
	name string
	set  map[Type]bool
}
