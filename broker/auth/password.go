package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password and user name rules.
const (
	MinPasswordLen = 12  // characters (Unicode code points)
	MaxPasswordLen = 256 // characters (Unicode code points)
	MaxUsernameLen = 64
)

// Params are the argon2id cost parameters for new password hashes. Verifying
// a hash uses the parameters encoded in it, so changing Params affects only
// hashes made afterwards (and hashes upgraded at a successful login).
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultParams are OWASP's recommended argon2id parameters: 19 MiB, two
// passes, one thread.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// maxMemory bounds the memory a stored hash may ask for (4 GiB), so a
	// corrupt record cannot exhaust the host.
	maxMemory = 4 << 20
	maxTime   = 64
)

// validate reports whether p is usable.
func (p Params) validate() error {
	switch {
	case p.Threads == 0:
		return errors.New("argon2 threads must be at least 1")
	case p.Time == 0 || p.Time > maxTime:
		return fmt.Errorf("argon2 time must be between 1 and %d, got %d", maxTime, p.Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("argon2 memory must be between %d and %d KiB, got %d", 8*uint32(p.Threads), maxMemory, p.Memory)
	}
	return nil
}

// HashPassword returns password's argon2id hash with a fresh random salt in
// PHC string format: $argon2id$v=19$m=M,t=T,p=P$SALT$HASH.
func HashPassword(password string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC-encoded argon2id
// hash. The comparison is constant-time. It returns ErrMalformedHash (wrapped)
// when encoded cannot be parsed.
func VerifyPassword(password, encoded string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

type phcHash struct {
	params Params
	salt   []byte
	key    []byte
}

func parseHash(encoded string) (phcHash, error) {
	bad := func(format string, args ...any) (phcHash, error) {
		return phcHash{}, fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return bad("want 5 $-separated fields, got %d", len(parts)-1)
	}
	if parts[1] != "argon2id" {
		return bad("algorithm %q is not argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version %q is not v=%d", parts[2], argon2.Version)
	}
	var h phcHash
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return bad("parameter %q", kv)
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter %q: not a number", kv)
		}
		switch k {
		case "m":
			h.params.Memory = uint32(n)
		case "t":
			h.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return bad("parameter %q: too large", kv)
			}
			h.params.Threads = uint8(n)
		default:
			return bad("unknown parameter %q", k)
		}
	}
	if len(seen) != 3 {
		return bad("parameters %q must set m, t and p", parts[3])
	}
	if err := h.params.validate(); err != nil {
		return bad("%v", err)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return bad("salt is not base64 of at least 8 bytes")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return bad("hash is not base64 of 16 to 64 bytes")
	}
	return h, nil
}

// CheckPassword reports whether password meets the policy: 12 to 256
// characters. The error says which bound was missed.
func CheckPassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("%w: password must be at least %d characters long (it has %d)", ErrWeakPassword, MinPasswordLen, n)
	case n > MaxPasswordLen:
		return fmt.Errorf("%w: password must be at most %d characters long (it has %d)", ErrWeakPassword, MaxPasswordLen, n)
	}
	return nil
}

// usernameRE is checked before lowercasing, so that no non-ASCII letter
// (such as the Kelvin sign, which lowercases to "k") can alias an ASCII name.
var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// NormalizeUsername lowercases name and checks it: 1 to 64 characters of
// a-z, 0-9, '.', '_' and '-', starting with a letter or digit. The error
// names the rule broken.
func NormalizeUsername(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: user name is empty", ErrBadUsername)
	case len(name) > MaxUsernameLen:
		return "", fmt.Errorf("%w: user name must be at most %d characters", ErrBadUsername, MaxUsernameLen)
	case !usernameRE.MatchString(name):
		return "", fmt.Errorf("%w: user name %q must use only a-z, 0-9, '.', '_' and '-', and start with a letter or digit", ErrBadUsername, name)
	}
	return strings.ToLower(name), nil
}
