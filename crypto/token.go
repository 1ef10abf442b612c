package crypto

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/tink-crypto/tink-go/v2/daead/subtle"
)

// Token formats (see docs/keys.md):
//
//	tk1_<version>_<26 base32 chars>   opaque: 128 bits of HMAC-SHA256
//	tr1_<version>_<base32 AES-SIV>    reversible: deterministic AEAD
const (
	opaquePrefix     = "tk1_"
	reversiblePrefix = "tr1_"
	// opaqueBytes is the PRF output kept in an opaque token (128 bits).
	opaqueBytes = 16
)

// Subkey purposes; each transformer kind derives its own subkey per domain.
const (
	purposeTokenPRF = "token-prf"
	purposeTokenSIV = "token-siv"
	purposeEmailLoc = "email-local"
	purposeEmailDom = "email-domain"
	purposeDigits   = "ff1-digits"
	purposeInt      = "ff1-int"
	purposeUUID     = "aes-uuid"
	purposeShift    = "shift"
	purposeHash     = "hash"
)

type tokenT struct {
	column
	redacted
	mac    *macPool
	siv    *subtle.AESSIV
	prefix []byte
	ks     *Keyset
	domain string
}

func newToken(spec Spec, ks *Keyset, c column) (Transformer, error) {
	t := &tokenT{column: c, ks: ks, domain: spec.Domain}
	if spec.Reversible {
		siv, err := ks.sivFor(c.version, spec.Domain)
		if err != nil {
			return nil, err
		}
		t.siv = siv
		t.prefix = tokenPrefix(reversiblePrefix, c.version)
		return t, nil
	}
	key, err := ks.derive(c.version, purposeTokenPRF, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	t.mac = newMACPool(key)
	t.prefix = tokenPrefix(opaquePrefix, c.version)
	return t, nil
}

func tokenPrefix(p string, version uint32) []byte {
	b := append([]byte(p), strconv.FormatUint(uint64(version), 10)...)
	return append(b, '_')
}

// Transform implements Transformer.
func (t *tokenT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	if t.siv != nil {
		// tink's AES-SIV allocates its output; reversible tokens are the
		// one token kind that is not allocation-free.
		ct, err := t.siv.EncryptDeterministically(in, nil)
		if err != nil {
			return dst, fmt.Errorf("token: %w", err)
		}
		dst = append(dst, t.prefix...)
		return tokenAlphabet.AppendEncode(dst, ct), nil
	}
	s := t.mac.get()
	s.h.Write(in)
	sum := s.finish()
	dst = append(dst, t.prefix...)
	dst = tokenAlphabet.AppendEncode(dst, sum[:opaqueBytes])
	t.mac.put(s)
	return dst, nil
}

// Reverse implements Reverser for reversible tokens of any version.
func (t *tokenT) Reverse(dst, src []byte) ([]byte, error) {
	if t.siv == nil {
		return dst, fmt.Errorf("%w: opaque token domain", ErrNotReversible)
	}
	pt, err := t.ks.Detokenize(t.domain, src)
	if err != nil {
		return dst, err
	}
	return append(dst, pt...), nil
}

// sivFor derives the AES-SIV (64-byte key: AES-256-SIV) for a domain.
func (k *Keyset) sivFor(version uint32, domain string) (*subtle.AESSIV, error) {
	key, err := k.derive(version, purposeTokenSIV, domain, 64)
	if err != nil {
		return nil, err
	}
	siv, err := subtle.NewAESSIV(key)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return siv, nil
}

// ParseToken splits a token into its reversibility and key version.
func ParseToken(token []byte) (reversible bool, version uint32, body []byte, err error) {
	switch {
	case bytes.HasPrefix(token, []byte(reversiblePrefix)):
		reversible = true
	case bytes.HasPrefix(token, []byte(opaquePrefix)):
	default:
		return false, 0, nil, fmt.Errorf("%w: unknown prefix", ErrInvalidToken)
	}
	rest := token[4:]
	i := bytes.IndexByte(rest, '_')
	if i <= 0 {
		return false, 0, nil, fmt.Errorf("%w: no version", ErrInvalidToken)
	}
	v, err := strconv.ParseUint(string(rest[:i]), 10, 32)
	if err != nil || v == 0 {
		return false, 0, nil, fmt.Errorf("%w: bad version", ErrInvalidToken)
	}
	return reversible, uint32(v), rest[i+1:], nil
}

// Detokenize returns the value a reversible token (tr1_…) was made from in
// domain, with whichever key version the token names. Opaque tokens give
// ErrNotReversible; tokens of another domain or keyset give ErrInvalidToken.
func (k *Keyset) Detokenize(domain string, token []byte) ([]byte, error) {
	rev, version, body, err := ParseToken(bytes.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	if !rev {
		return nil, fmt.Errorf("%w: %s tokens are opaque", ErrNotReversible, opaquePrefix)
	}
	ct, err := tokenAlphabet.DecodeString(string(bytes.ToLower(body)))
	if err != nil {
		return nil, fmt.Errorf("%w: bad encoding", ErrInvalidToken)
	}
	siv, err := k.sivFor(version, domain)
	if err != nil {
		return nil, err
	}
	pt, err := siv.DecryptDeterministically(ct, nil)
	if err != nil {
		// Do not wrap tink's error: it says nothing useful and we promise
		// a stable sentinel.
		return nil, fmt.Errorf("%w: not made in domain %q with this keyset (version %d)", ErrInvalidToken, domain, version)
	}
	return pt, nil
}
