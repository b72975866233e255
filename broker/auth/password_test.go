package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	h1, err := HashPassword("a long enough password", cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not PHC argon2id with the given params", h1)
	}
	h2, _ := HashPassword("a long enough password", cheapParams)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"a long enough password", true},
		{"a long enough passwore", false},
		{"", false},
		{"A long enough password", false},
	}
	for _, tt := range tests {
		got, err := VerifyPassword(tt.password, h1)
		if err != nil || got != tt.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tt.password, got, err, tt.want)
		}
	}
	// The default parameters produce a verifiable hash too.
	hd, err := HashPassword("x", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hd, "$m=19456,t=2,p=1$") {
		t.Errorf("default hash %q lacks OWASP params", hd)
	}
	if ok, err := VerifyPassword("x", hd); !ok || err != nil {
		t.Errorf("VerifyPassword with default params = %v, %v", ok, err)
	}
}

func TestHashPasswordBadParams(t *testing.T) {
	for _, p := range []Params{{}, {Memory: 64, Time: 0, Threads: 1}, {Memory: 4, Time: 1, Threads: 1}, {Memory: 64, Time: 1}} {
		if _, err := HashPassword("x", p); err == nil {
			t.Errorf("HashPassword with %+v succeeded", p)
		}
	}
}

func TestParseHashErrors(t *testing.T) {
	const salt = "c2FsdHNhbHRzYWx0c2FsdA"                     // 16 bytes
	const key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U" // 32 bytes
	tests := []struct {
		name, encoded, wantIn string
	}{
		{"empty", "", "fields"},
		{"too few fields", "$argon2id$v=19$m=64,t=1,p=1$" + salt, "fields"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "not argon2id"},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "fields"},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version"},
		{"missing p", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "must set m, t and p"},
		{"repeated m", "$argon2id$v=19$m=64,m=64,t=1$" + salt + "$" + key, "parameter"},
		{"unknown param", "$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key, "unknown parameter"},
		{"non-numeric", "$argon2id$v=19$m=lots,t=1,p=1$" + salt + "$" + key, "not a number"},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "time"},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, "memory"},
		{"huge threads", "$argon2id$v=19$m=64,t=1,p=300$" + salt + "$" + key, "too large"},
		{"bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!$" + key, "salt"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, "salt"},
		{"bad hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$???", "hash"},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5", "hash"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "salt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword("whatever", tt.encoded)
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyPassword = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %q", err, tt.wantIn)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		password string
		wantIn   string // "" means valid
	}{
		{"", "at least 12"},
		{"elevenchars", "at least 12"},
		{"twelve chars", ""},
		{"パスワードは十二文字以上です", ""}, // 14 characters, 42 bytes
		{"パスワード十一文字です", "at least 12"},
		{strings.Repeat("x", 256), ""},
		{strings.Repeat("x", 257), "at most 256"},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.password)
		switch {
		case tt.wantIn == "" && err != nil:
			t.Errorf("CheckPassword(%q) = %v, want nil", tt.password, err)
		case tt.wantIn != "" && (!errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), tt.wantIn)):
			t.Errorf("CheckPassword(%q) = %v, want ErrWeakPassword mentioning %q", tt.password, err, tt.wantIn)
		}
	}
}

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"alice", "alice", false},
		{"Dr.Sato", "dr.sato", false},
		{"n_tanaka-2", "n_tanaka-2", false},
		{"7west", "7west", false},
		{strings.Repeat("a", 64), strings.Repeat("a", 64), false},
		{strings.Repeat("a", 65), "", true},
		{"", "", true},
		{".hidden", "", true},
		{"-dash", "", true},
		{"has space", "", true},
		{"a/b", "", true},
		{"佐藤", "", true},
		{"\u212Aate", "", true}, // Kelvin sign lowercases to "k"
	}
	for _, tt := range tests {
		got, err := NormalizeUsername(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadUsername) {
			t.Errorf("NormalizeUsername(%q) error %v is not ErrBadUsername", tt.in, err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Role
	}{{"clinician", Clinician}, {"Approver", Approver}, {" admin ", Admin}, {"auditor", Auditor}} {
		if got, err := ParseRole(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	_, err := ParseRole("doctor")
	if !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("ParseRole(doctor) = %v, want ErrUnknownRole", err)
	}
	for _, want := range []string{`"doctor"`, "clinician, approver, admin, auditor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
