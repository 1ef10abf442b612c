// Package scram implements the two halves of SCRAM-SHA-256 (RFC 5802,
// RFC 7677) that pgpseudo needs to terminate authentication: a server that
// checks a client's proof against the upstream user's own stored verifier
// and recovers the ClientKey from it, and a client that logs in upstream with
// that ClientKey instead of a password (the technique PgBouncer's auth_query
// uses). The primitives are the standard library's HMAC and SHA-256.
package scram

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mechanism names as PostgreSQL advertises them.
const (
	SHA256     = "SCRAM-SHA-256"
	SHA256Plus = "SCRAM-SHA-256-PLUS"
)

// ErrVerifier reports a stored secret that is not a SCRAM-SHA-256 verifier
// (for example an MD5 hash or a missing password).
var ErrVerifier = errors.New("not a SCRAM-SHA-256 verifier")

// Verifier is a user's stored SCRAM secret as kept in pg_authid.rolpassword:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
type Verifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// String hides the keys: a verifier allows offline guessing of the password.
func (v *Verifier) String() string { return "SCRAM-SHA-256$<redacted>" }

// ParseVerifier parses a pg_authid.rolpassword value.
func ParseVerifier(s string) (*Verifier, error) {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return nil, ErrVerifier
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, fmt.Errorf("%w: missing keys", ErrVerifier)
	}
	iterS, saltS, ok1 := strings.Cut(iterSalt, ":")
	storedS, serverS, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: malformed", ErrVerifier)
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter < 1 {
		return nil, fmt.Errorf("%w: bad iteration count", ErrVerifier)
	}
	v := &Verifier{Iterations: iter}
	for _, f := range []struct {
		dst *[]byte
		src string
		n   int
	}{{&v.Salt, saltS, -1}, {&v.StoredKey, storedS, sha256.Size}, {&v.ServerKey, serverS, sha256.Size}} {
		b, err := base64.StdEncoding.DecodeString(f.src)
		if err != nil || (f.n > 0 && len(b) != f.n) || len(b) == 0 {
			return nil, fmt.Errorf("%w: bad base64 field", ErrVerifier)
		}
		*f.dst = b
	}
	return v, nil
}

func hmacSum(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}
