package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shoji-rbi/shoji/broker/record"
)

// JWT issuer and audience.
const (
	Issuer   = "shoji"
	Audience = "shoji-viewer"
)

// Token is a signed JWT and when it expires.
type Token struct {
	Value   string
	Expires time.Time
}

// Principal is who a verified token speaks for.
type Principal struct {
	User string
	// Role is the user's current role, read from the user record, so a role
	// change takes effect at the next Verify.
	Role Role
	// SessionID is the login session ("sid") the token belongs to.
	SessionID string
	// TokenExpires is when the presented token expires.
	TokenExpires time.Time
	// LoginExpires is the login session's absolute end.
	LoginExpires time.Time
	// PledgeVersion is the version of the pledge text the user accepted
	// last, read from the user record (empty: none, or one accepted before
	// versions were recorded). Whether it is the current text is the
	// broker's decision.
	PledgeVersion string
}

type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role"`
	SID  string `json:"sid"`
}

// issue signs a token for the login session, expiring after TokenTTL but
// never after the session's end.
func (s *Service) issue(user string, role Role, login Login) (Token, error) {
	now := s.cfg.Now().Truncate(jwt.TimePrecision)
	exp := now.Add(s.cfg.TokenTTL)
	if login.Expires.Before(exp) {
		exp = login.Expires
	}
	exp = exp.Truncate(jwt.TimePrecision).UTC()
	jti, err := randomHex(16)
	if err != nil {
		return Token{}, err
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{Audience},
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
		Role: string(role),
		SID:  login.ID,
	}
	k := s.keys.Load().signer()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.kid
	v, err := t.SignedString(k.priv)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{Value: v, Expires: exp}, nil
}

func (s *Service) keyFunc(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("token has no kid")
	}
	pub, ok := s.keys.Load().public(kid)
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return pub, nil
}

// Verify checks a token's signature, algorithm, issuer, audience and times,
// then that its login session still exists and has not passed its absolute
// lifetime, and that its user exists and is enabled. Any failure is
// ErrInvalidToken wrapping the cause; a store failure is returned as is.
func (s *Service) Verify(tokenString string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(tokenString, &c, s.keyFunc,
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.SID == "" {
		return Principal{}, fmt.Errorf("%w: sub or sid claim missing", ErrInvalidToken)
	}
	p, err := s.session(c.Subject, c.SID)
	if err != nil {
		return Principal{}, err
	}
	p.TokenExpires = c.ExpiresAt.UTC()
	return p, nil
}

// session checks that the login session sid of user is live and the user
// enabled, and returns a Principal without TokenExpires.
func (s *Service) session(user, sid string) (Principal, error) {
	login, err := s.st.GetLogin(sid)
	if errors.Is(err, record.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: login session ended", ErrInvalidToken)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify token: %w", err)
	}
	if login.User != user {
		return Principal{}, fmt.Errorf("%w: login session belongs to another user", ErrInvalidToken)
	}
	if !s.cfg.Now().Before(login.Expires) {
		return Principal{}, fmt.Errorf("%w: login session expired", ErrInvalidToken)
	}
	u, err := s.st.GetUser(user)
	if errors.Is(err, record.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: user %q no longer exists", ErrInvalidToken, user)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify token: %w", err)
	}
	if u.Disabled {
		return Principal{}, fmt.Errorf("%w: user %q is disabled", ErrInvalidToken, user)
	}
	role, err := ParseRole(u.Role)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: user %q: %w", ErrInvalidToken, user, err)
	}
	return Principal{
		User:          u.Name,
		Role:          role,
		SessionID:     sid,
		LoginExpires:  login.Expires,
		PledgeVersion: u.PledgeVersion,
	}, nil
}

// Renew issues a new token for p's login session, after checking again that
// the session and user are live. The token expires after TokenTTL or at the
// session's end, whichever is first.
func (s *Service) Renew(p Principal) (Token, error) {
	cur, err := s.session(p.User, p.SessionID)
	if err != nil {
		return Token{}, err
	}
	return s.issue(cur.User, cur.Role, Login{ID: cur.SessionID, User: cur.User, Expires: cur.LoginExpires})
}

// ShouldRenew reports whether p's token has less than half of TokenTTL left
// and a renewal would extend it.
func (s *Service) ShouldRenew(p Principal) bool {
	return p.TokenExpires.Sub(s.cfg.Now()) < s.cfg.TokenTTL/2 && p.TokenExpires.Before(p.LoginExpires)
}
