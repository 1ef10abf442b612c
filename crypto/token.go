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
//	tr2_<version>_<base32 AES-SIV>    reversible: deterministic AEAD of the
//	                                  value padded to a length bucket
//	tr1_<version>_<base32 AES-SIV>    reversible, unpadded (read only)
const (
	opaquePrefix     = "tk1_"
	reversiblePrefix = "tr2_"
	legacyRevPrefix  = "tr1_"
	// minPadded is the smallest padded plaintext: the length buckets are
	// 16, 32, 64… bytes (value plus at least one byte of padding).
	minPadded = 16
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
	// chars is how many base32 characters of the MAC an opaque token
	// keeps (fullTokenChars, fewer to fit a column: fit.go).
	chars int
}

func newToken(spec Spec, ks *Keyset, c column) (Transformer, error) {
	t := &tokenT{column: c, ks: ks, domain: spec.Domain, chars: fullTokenChars}
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
		// one token kind that is not allocation-free. The value is padded
		// so the token shows its length only to a power-of-two bucket.
		ct, err := t.siv.EncryptDeterministically(padBucket(in), []byte(reversiblePrefix))
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
	body := len(dst)
	dst = tokenAlphabet.AppendEncode(dst, sum[:opaqueBytes])[:body+t.chars]
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

// padBucket appends ISO/IEC 7816-4 padding (0x80, then zeros) to the
// smallest power-of-two length of at least minPadded bytes that holds the
// value and one padding byte.
func padBucket(in []byte) []byte {
	n := minPadded
	for n < len(in)+1 {
		n *= 2
	}
	out := make([]byte, n)
	copy(out, in)
	out[len(in)] = 0x80
	return out
}

// unpadBucket removes padBucket's padding.
func unpadBucket(pt []byte) ([]byte, bool) {
	i := bytes.LastIndexByte(pt, 0x80)
	if i < 0 || len(pt) < minPadded || len(pt)&(len(pt)-1) != 0 {
		return nil, false
	}
	for _, b := range pt[i+1:] {
		if b != 0 {
			return nil, false
		}
	}
	return pt[:i], true
}

// tokenFormat is what a token's prefix says about it.
type tokenFormat int

const (
	formatOpaque   tokenFormat = iota // tk1_
	formatPadded                      // tr2_: padded, format bound as associated data
	formatUnpadded                    // tr1_: earlier releases
)

// ParseToken splits a token into its reversibility and key version.
func ParseToken(token []byte) (reversible bool, version uint32, body []byte, err error) {
	f, version, body, err := parseToken(token)
	return f != formatOpaque, version, body, err
}

func parseToken(token []byte) (tokenFormat, uint32, []byte, error) {
	var f tokenFormat
	switch {
	case bytes.HasPrefix(token, []byte(reversiblePrefix)):
		f = formatPadded
	case bytes.HasPrefix(token, []byte(legacyRevPrefix)):
		f = formatUnpadded
	case bytes.HasPrefix(token, []byte(opaquePrefix)):
		f = formatOpaque
	default:
		return 0, 0, nil, fmt.Errorf("%w: unknown prefix", ErrInvalidToken)
	}
	rest := token[4:]
	i := bytes.IndexByte(rest, '_')
	if i <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: no version", ErrInvalidToken)
	}
	v, err := strconv.ParseUint(string(rest[:i]), 10, 32)
	if err != nil || v == 0 {
		return 0, 0, nil, fmt.Errorf("%w: bad version", ErrInvalidToken)
	}
	return f, uint32(v), rest[i+1:], nil
}

// Detokenize returns the value a reversible token (tr2_…, or an unpadded
// tr1_… of earlier releases) was made from in domain, with whichever key
// version the token names. Opaque tokens give ErrNotReversible; tokens of
// another domain or keyset give ErrInvalidToken.
func (k *Keyset) Detokenize(domain string, token []byte) ([]byte, error) {
	f, version, body, err := parseToken(bytes.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	if f == formatOpaque {
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
	var ad []byte // tr2_ binds its prefix: relabelled tr1_, it does not decrypt
	if f == formatPadded {
		ad = []byte(reversiblePrefix)
	}
	pt, err := siv.DecryptDeterministically(ct, ad)
	if err != nil {
		// Do not wrap tink's error: it says nothing useful and we promise
		// a stable sentinel.
		return nil, fmt.Errorf("%w: not made in domain %q with this keyset (version %d)", ErrInvalidToken, domain, version)
	}
	if f == formatUnpadded {
		return pt, nil
	}
	if pt, ok := unpadBucket(pt); ok {
		return pt, nil
	}
	return nil, fmt.Errorf("%w: bad padding", ErrInvalidToken)
}
