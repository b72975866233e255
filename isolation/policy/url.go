package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// errBadURL is wrapped by parseTarget's errors.
var errBadURL = errors.New("bad URL")

// errScheme is wrapped when a URL's scheme is not one the proxy carries.
var errScheme = errors.New("scheme not allowed")

// defaultPorts are the schemes CheckURL accepts, with their default ports.
var defaultPorts = map[string]int{"http": 80, "https": 443, "ws": 80, "wss": 443}

// maxDecodeRounds bounds how often a path is percent-decoded before it is
// refused as deliberately obscured.
const maxDecodeRounds = 4

// target is a URL reduced to what policy decides on.
type target struct {
	scheme string // lowercase; empty when not parsed from a URL
	host   string // normalised as by egress.Normalize
	addr   netip.Addr
	port   int
	path   string // cleaned by cleanPath
}

// isIP reports whether the target's host is an IP literal.
func (t target) isIP() bool { return t.addr.IsValid() }

// parseTarget splits a URL the way a browser's URL parser does for the
// special schemes: leading and trailing spaces and control characters
// trimmed, tabs and newlines removed, any run of "/" and "\" after the scheme
// skipped, userinfo (up to the last "@" of the authority) dropped, the host
// percent-decoded and normalised by egress.Normalize, the port defaulted by
// scheme, and the path cleaned by cleanPath. Query and fragment are dropped.
func parseTarget(raw string) (target, error) {
	s := strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return target{}, fmt.Errorf("no scheme: %w", errBadURL)
	}
	scheme := strings.ToLower(s[:colon])
	defPort, ok := defaultPorts[scheme]
	if !ok {
		scheme = truncate.Bytes(scheme, 32)
		return target{}, fmt.Errorf("%q: %w", scheme, errScheme)
	}
	rest := strings.TrimLeft(s[colon+1:], `/\`)
	end := strings.IndexAny(rest, `/\?#`)
	if end < 0 {
		end = len(rest)
	}
	authority, after := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:]
	}
	hostport, err := authorityHostPort(authority, defPort)
	if err != nil {
		return target{}, err
	}
	host, port, err := egress.Normalize(hostport)
	if err != nil {
		return target{}, fmt.Errorf("%w: %w", errors.Unwrap(err), errBadURL)
	}
	t := target{scheme: scheme, host: host, port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		t.addr = a
	}
	if i := strings.IndexAny(after, "?#"); i >= 0 {
		after = after[:i]
	}
	if t.path, ok = cleanPath(after); !ok {
		return target{}, fmt.Errorf("path percent-encoded too many times: %w", errBadURL)
	}
	return t, nil
}

// authorityHostPort turns a URL authority without userinfo into the
// host:port form egress.Normalize reads: a name's percent-encoding decoded,
// an empty port replaced by the scheme's default.
func authorityHostPort(authority string, defPort int) (string, error) {
	var host, port string
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", fmt.Errorf("missing \"]\" in host: %w", errBadURL)
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", fmt.Errorf("unexpected text after \"]\": %w", errBadURL)
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		host = authority
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		decoded, err := url.PathUnescape(host)
		if err != nil {
			return "", fmt.Errorf("bad percent-encoding in host: %w", errBadURL)
		}
		host = decoded
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if host == "" || host == "[]" {
		return "", fmt.Errorf("empty host: %w", errBadURL)
	}
	if port == "" {
		port = strconv.Itoa(defPort)
	}
	return host + ":" + port, nil
}

// cleanPath returns a request path as rules compare it: "\" read as "/",
// percent-encoding decoded until nothing changes (at most maxDecodeRounds
// times, else ok is false), and dot segments removed, so "/a/%2e%2e/b" and
// "/a/../b" are both "/b". An empty path is "/".
func cleanPath(p string) (clean string, ok bool) {
	p = strings.ReplaceAll(p, `\`, "/")
	for round := 0; strings.Contains(p, "%"); round++ {
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			break
		}
		if round == maxDecodeRounds {
			return "", false
		}
		p = strings.ReplaceAll(d, `\`, "/")
	}
	return removeDotSegments(p), true
}

// removeDotSegments removes "." and ".." segments (RFC 3986 §5.2.4) from a
// path, keeping a trailing slash, and makes it absolute.
func removeDotSegments(p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if i == len(segs)-1 {
			out = append(out, "") // "/a/.." is the directory "/", keep its slash
		}
	}
	return "/" + strings.Join(out, "/")
}
