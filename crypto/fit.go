package crypto

import (
	"fmt"
	"unicode/utf8"
)

// Outputs that fit a declared length (Spec.MaxLen: varchar(n), char(n)).
// A dump of a restricted role must restore into the real schema, so a
// value never leaves longer than its column allows:
//
//   - opaque tokens keep fewer base32 characters of the same keyed MAC
//     (a prefix of the full token), at least minTokenChars: 65 bits, so
//     distinct inputs keep distinct tokens with a collision chance below
//     2^-25 for a million values of one domain (docs/keys.md);
//   - e-mail tokens shorten the domain label to at least minDomainChars,
//     then the local part to at least minTokenChars, and stay addresses
//     under .invalid;
//   - reversible tokens cannot be shortened (their length is the cipher
//     text's) and never fit a varchar(n) or char(n): the column is refused
//     at `policy check --db` and withheld at run time;
//   - every other kind is checked value by value: an output longer than
//     the column is withheld (ErrInvalidValue), never cut.
const (
	fullTokenChars  = 26 // base32 of opaqueBytes
	fullDomainChars = 16 // base32 of emailDomainBytes
	minTokenChars   = 13
	minDomainChars  = 4
)

// ErrDoesNotFit reports a transform whose outputs cannot fit the column's
// declared length; it wraps ErrUnsupported, so the column is withheld and
// `policy check --db` names it.
var ErrDoesNotFit = fmt.Errorf("%w: the output cannot fit the column's declared length", ErrUnsupported)

// fit adapts t to spec.MaxLen characters.
func fit(t Transformer, spec Spec) (Transformer, error) {
	n := spec.MaxLen
	switch tt := t.(type) {
	case *tokenT:
		if tt.siv != nil {
			return nil, fmt.Errorf("%w: a reversible token is longer than %d characters (its length follows the value's); use an opaque token or widen the column", ErrDoesNotFit, n)
		}
		chars := min(fullTokenChars, n-len(tt.prefix))
		if chars < minTokenChars {
			return nil, fmt.Errorf("%w: a token needs at least %d characters (%s plus %d), the column holds %d", ErrDoesNotFit, len(tt.prefix)+minTokenChars, tt.prefix, minTokenChars, n)
		}
		tt.chars = chars
		return tt, nil
	case *emailT:
		room := n - len(tt.prefix) - 1 - len(emailTLD)
		if room < minTokenChars+minDomainChars {
			return nil, fmt.Errorf("%w: an e-mail token needs at least %d characters, the column holds %d", ErrDoesNotFit, len(tt.prefix)+1+len(emailTLD)+minTokenChars+minDomainChars, n)
		}
		tt.domainChars = max(minDomainChars, min(fullDomainChars, room-fullTokenChars))
		tt.localChars = min(fullTokenChars, room-tt.domainChars)
		tt.maxLen = n
		return tt, nil
	}
	return &fitT{Transformer: t, max: n}, nil
}

// fitT withholds an output longer than max characters.
type fitT struct {
	Transformer
	max int
}

// Transform implements Transformer.
func (t *fitT) Transform(dst, src []byte) ([]byte, error) {
	start := len(dst)
	out, err := t.Transformer.Transform(dst, src)
	if err != nil {
		return out, err
	}
	if utf8.RuneCount(out[start:]) > t.max {
		return out[:start], fmt.Errorf("%w: the output is longer than the column's %d characters", ErrInvalidValue, t.max)
	}
	return out, nil
}
