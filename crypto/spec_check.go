package crypto

import (
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Kinds lists every transformer kind, for validation messages.
func Kinds() []Kind {
	return []Kind{KindToken, KindEmail, KindDigits, KindIBAN, KindCard, KindInt, KindUUID,
		KindYear, KindMonth, KindShift, KindRound, KindMask, KindHash, KindNull, KindRedact,
		KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany, KindPhone, KindPostcode}
}

// ValidateSpec checks a spec's options without knowing the column's type,
// so a policy file fails at load when an option is wrong for its kind. It
// builds the transformer for a representative supported type; the type
// itself is checked later against the database (CheckColumn).
func ValidateSpec(spec Spec) error {
	oids := support(spec.Kind)
	switch spec.Kind {
	case KindNull:
		oids = []uint32{OIDText}
	case KindRound:
		// Integer-only limits (digits < 0 or a bucket) are checked per
		// column, against its type.
		oids = []uint32{OIDNumeric}
	}
	if len(oids) == 0 {
		return fmt.Errorf("%w: unknown transform %q", ErrInvalidSpec, spec.Kind)
	}
	return CheckColumn(spec, oids[0])
}

// CheckColumn reports why spec cannot transform a column of typeOID (in
// either wire format), with a throwaway keyset: the reason policy check
// --db gives before any value is read, e.g. int on smallint or round
// without digits on an integer. It returns ErrUnsupported itself,
// unwrapped, when the kind does not apply to the type at all.
func CheckColumn(spec Spec, typeOID uint32) error {
	if !Supports(spec.Kind, typeOID, FormatText) && !(spec.Kind == KindInt && typeOID == OIDInt2) {
		return ErrUnsupported
	}
	var ks *Keyset
	if keyed(spec.Kind) {
		var err error
		if ks, err = NewKeyset(time.Now()); err != nil {
			return err
		}
		spec.KeyVersion = 0 // the real keyset's versions are checked at start
	}
	for _, f := range []int16{FormatText, FormatBinary} {
		if _, err := New(spec, ks, typeOID, f); err != nil {
			if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrInvalidSpec) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
		}
	}
	return nil
}

// CheckNumericScale reports a round spec that returns every value of a
// numeric column with scale fraction digits unchanged: digits at or above
// the scale, or a bucket that divides 10^-scale.
func CheckNumericScale(spec Spec, scale int) error {
	if spec.Kind != KindRound {
		return nil
	}
	if spec.Bucket == "" {
		if spec.Digits >= scale {
			return fmt.Errorf("%w: round to %d digits returns every value of a column with %d fraction digits unchanged; use fewer digits", ErrInvalidSpec, spec.Digits, scale)
		}
		return nil
	}
	b, ok := new(big.Rat).SetString(spec.Bucket)
	if !ok || b.Sign() <= 0 {
		return nil // ValidateSpec reports it
	}
	unit := new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(scale, 0))), nil))
	if new(big.Rat).Quo(unit, b).IsInt() {
		return fmt.Errorf("%w: round bucket %s divides every value of a column with %d fraction digits, returning it unchanged; use a coarser bucket", ErrInvalidSpec, spec.Bucket, scale)
	}
	return nil
}
