package crypto

import (
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// maskT keeps the first KeepFirst and last KeepLast characters and writes
// '*' for each other character. A value too short to hide anything is
// masked entirely, so short values never leave in clear.
type maskT struct {
	column
	first, last int
}

func newMask(spec Spec, c column) (Transformer, error) {
	if spec.KeepFirst < 0 || spec.KeepLast < 0 {
		return nil, fmt.Errorf("%w: mask keep_first/keep_last must not be negative", ErrInvalidSpec)
	}
	return &maskT{column: c, first: spec.KeepFirst, last: spec.KeepLast}, nil
}

// Transform implements Transformer.
func (t *maskT) Transform(dst, src []byte) ([]byte, error) {
	src = trimPad(t.oid, src)
	n := utf8.RuneCount(src)
	first, last := t.first, t.last
	if first+last >= n {
		first, last = 0, 0
	}
	i := 0
	for k := 0; k < n; k++ {
		_, size := utf8.DecodeRune(src[i:])
		if k < first || k >= n-last {
			dst = append(dst, src[i:i+size]...)
		} else {
			dst = append(dst, '*')
		}
		i += size
	}
	return dst, nil
}

// hashT is a keyed hash: lowercase hex of HMAC-SHA256 with the domain's
// subkey (64 characters). Not versioned: rotating changes every hash.
type hashT struct {
	column
	redacted
	mac *macPool
}

func newHash(spec Spec, ks *Keyset, c column) (Transformer, error) {
	key, err := ks.derive(c.version, purposeHash, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &hashT{column: c, mac: newMACPool(key)}, nil
}

// Transform implements Transformer.
func (t *hashT) Transform(dst, src []byte) ([]byte, error) {
	s := t.mac.get()
	s.h.Write(trimPad(t.oid, src))
	dst = hex.AppendEncode(dst, s.finish())
	t.mac.put(s)
	return dst, nil
}
