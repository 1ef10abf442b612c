package crypto

import (
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// maskT keeps up to KeepFirst and KeepLast characters and hides the rest
// behind a run of '*'. The output always has KeepFirst + KeepLast +
// maskRun characters, whatever the value's length, so the mask does not
// reveal it; and at most a third of a value's characters are ever shown
// (the end first), so a short value such as a postcode keeps at most one
// character in clear.
type maskT struct {
	column
	first, last int
}

// maskRun is the fewest '*' an output has; maskShare the share of a
// value's characters that may show (1/maskShare).
const (
	maskRun   = 6
	maskShare = 3
	// maxMaskKeep bounds keep_first + keep_last.
	maxMaskKeep = 32
)

func newMask(spec Spec, c column) (Transformer, error) {
	if spec.KeepFirst < 0 || spec.KeepLast < 0 || spec.KeepFirst+spec.KeepLast > maxMaskKeep {
		return nil, fmt.Errorf("%w: mask keep_first and keep_last must not be negative and together at most %d", ErrInvalidSpec, maxMaskKeep)
	}
	return &maskT{column: c, first: spec.KeepFirst, last: spec.KeepLast}, nil
}

// Transform implements Transformer.
func (t *maskT) Transform(dst, src []byte) ([]byte, error) {
	start := len(dst)
	src = trimPad(t.oid, src)
	n := utf8.RuneCount(src)
	shown := n / maskShare
	last := min(t.last, shown)
	first := min(t.first, shown-last)
	i := 0
	for k := 0; k < first; k++ {
		_, size := utf8.DecodeRune(src[i:])
		i += size
	}
	dst = append(dst, src[:i]...)
	for range t.first + t.last + maskRun - first - last {
		dst = append(dst, '*')
	}
	j := len(src)
	for k := 0; k < last; k++ {
		_, size := utf8.DecodeLastRune(src[:j])
		j -= size
	}
	dst = append(dst, src[j:]...)
	if string(dst[start:]) == string(src) {
		// A value already in the mask's shape (stars around the shown
		// ends) would leave unchanged.
		return dst[:start], fmt.Errorf("%w: the value already has the mask's shape", ErrUnchanged)
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
