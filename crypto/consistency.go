package crypto

import (
	"bytes"
	"errors"
	"time"
)

// KeepsDistinct reports whether spec gives distinct inputs distinct
// outputs (always for the bijections; with a collision chance below 2^-25
// per million values of a domain for opaque and e-mail tokens and keyed
// hashes, docs/keys.md): what a unique or primary key column needs for a
// dump to restore. Generalisations, masks, constants, NULL, postcodes,
// phones and fakes without unique: true do not.
func KeepsDistinct(spec Spec) bool {
	switch spec.Kind {
	case KindToken, KindEmail, KindDigits, KindIBAN, KindCard, KindInt, KindUUID, KindHash:
		return true
	}
	// A fake with unique: true carries a 60-bit keyed code (below 2^-21
	// for a million values); without it, two people may share a name.
	return isFake(spec.Kind) && spec.Unique
}

// consistencySamples are inputs that two columns joined by a foreign key
// must turn into equal outputs: digit strings serve integer, numeric and
// text columns alike, the others text columns.
var consistencySamples = [][]byte{[]byte("1234567"), []byte("90817263"), []byte("anna.schmidt.17@example.org"), []byte("DE89370400440532013000")}

// SameOutputs reports whether spec a on a column of type aOID and spec b
// on one of type bOID turn the same value into the same output, so a
// foreign key between the columns holds after the rewrite. It builds both
// with one throwaway keyset and compares them on sample values either
// accepts: a different kind, domain, option, declared length that
// shortens a token, or integer width shows as a difference.
func SameOutputs(a Spec, aOID uint32, b Spec, bOID uint32) (bool, error) {
	ks, err := NewKeyset(time.Now())
	if err != nil {
		return false, err
	}
	a.KeyVersion, b.KeyVersion = 0, 0
	ta, errA := New(a, ks, aOID, FormatText)
	tb, errB := New(b, ks, bOID, FormatText)
	if errA != nil || errB != nil {
		// A column that cannot be transformed is withheld: its own
		// finding says so.
		return errors.Is(errA, ErrUnsupported) == errors.Is(errB, ErrUnsupported), nil
	}
	for _, in := range consistencySamples {
		oa, ea := ta.Transform(nil, in)
		ob, eb := tb.Transform(nil, in)
		if ea != nil || eb != nil {
			continue // not a value of both types
		}
		if !bytes.Equal(oa, ob) {
			return false, nil
		}
	}
	return true, nil
}
