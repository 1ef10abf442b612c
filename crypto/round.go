package crypto

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
)

// Floats hold about 15 (float8) and 6 (float4) significant decimal
// digits: rounding to more fraction digits than that returns ordinary
// values unchanged, so such specs are refused. Below -308 digits every
// float rounds to zero.
const (
	maxFloat8Digits = 15
	maxFloat4Digits = 6
	minFloatDigits  = -308
)

// From 2^52 (float8) and 2^23 (float4) on, consecutive floats are at
// least 1 apart: a value that many steps of the precision from zero has no
// fraction left to round away, so rounding it would return it.
const (
	exactFloat8 = 1 << 52
	exactFloat4 = 1 << 23
)

// roundT generalises numbers: with an empty Bucket it rounds half away from
// zero to Digits fraction digits (negative Digits round to tens, hundreds…);
// with a Bucket it floors to a multiple of the bucket (age 37, bucket 10 →
// 30). Results stay inside the type's range.
type roundT struct {
	column
	digits    int
	bucketInt int64    // integer types
	bucketF   float64  // float types
	bucketRat *big.Rat // numeric
	bucketScl int      // numeric: fraction digits of the bucket
	pool      sync.Pool
}

func newRound(spec Spec, c column) (Transformer, error) {
	t := &roundT{column: c, digits: spec.Digits}
	t.pool.New = func() any { b := make([]byte, 0, 64); return &b }
	if spec.Digits < -1000 || spec.Digits > 1000 {
		return nil, fmt.Errorf("%w: round digits must be in [-1000, 1000]", ErrInvalidSpec)
	}
	isInt := c.oid == OIDInt2 || c.oid == OIDInt4 || c.oid == OIDInt8
	if spec.Bucket == "" {
		switch {
		case isInt && spec.Digits >= 0:
			// A transform that cannot change any value is refused, never
			// run as the identity.
			return nil, fmt.Errorf("%w: round on an integer column needs a negative digits (tens, hundreds…) or a bucket of at least 2; digits %d would return every value unchanged", ErrInvalidSpec, spec.Digits)
		case c.oid == OIDFloat8 && spec.Digits > maxFloat8Digits, c.oid == OIDFloat4 && spec.Digits > maxFloat4Digits:
			lim := map[uint32]int{OIDFloat8: maxFloat8Digits, OIDFloat4: maxFloat4Digits}[c.oid]
			return nil, fmt.Errorf("%w: round on this float type takes at most %d digits; it holds no decimal digits beyond them, so ordinary values would be returned unchanged", ErrInvalidSpec, lim)
		}
		return t, nil
	}
	r, ok := new(big.Rat).SetString(spec.Bucket)
	if !ok || r.Sign() <= 0 {
		return nil, fmt.Errorf("%w: round bucket %q is not a positive number", ErrInvalidSpec, spec.Bucket)
	}
	switch c.oid {
	case OIDInt2, OIDInt4, OIDInt8:
		_, hi := intRange(intBits(c.oid))
		if !r.IsInt() || !r.Num().IsInt64() || r.Num().Int64() > hi || r.Num().Int64() < 2 {
			return nil, fmt.Errorf("%w: round bucket for an integer must be a whole number from 2 to the type's maximum (1 would return every value unchanged)", ErrInvalidSpec)
		}
		t.bucketInt = r.Num().Int64()
	case OIDFloat4, OIDFloat8:
		t.bucketF, _ = r.Float64()
		if math.IsInf(t.bucketF, 0) || t.bucketF < math.SmallestNonzeroFloat64*(1<<52) {
			return nil, fmt.Errorf("%w: round bucket %q is outside a float's normal range", ErrInvalidSpec, spec.Bucket)
		}
	default:
		_, intPart, frac, err := splitDecimal([]byte(spec.Bucket))
		if err != nil {
			return nil, fmt.Errorf("%w: round bucket %q must be a plain decimal", ErrInvalidSpec, spec.Bucket)
		}
		_ = intPart
		t.bucketRat, t.bucketScl = r, len(frac)
	}
	return t, nil
}

// Transform implements Transformer.
func (t *roundT) Transform(dst, src []byte) ([]byte, error) {
	switch t.oid {
	case OIDInt2, OIDInt4, OIDInt8:
		return t.roundInt(dst, src)
	case OIDFloat4, OIDFloat8:
		return t.roundFloat(dst, src)
	}
	return t.roundNumeric(dst, src)
}

func (t *roundT) roundInt(dst, src []byte) ([]byte, error) {
	bits := intBits(t.oid)
	v, err := parseInt(src, bits, t.binary)
	if err != nil {
		return dst, err
	}
	lo, hi := intRange(bits)
	// lo/p truncates toward zero, i.e. it is the smallest q with q*p >= lo.
	switch {
	case t.bucketInt > 0:
		b := t.bucketInt
		q := v / b
		if v%b != 0 && v < 0 {
			q-- // floor, not truncation
		}
		v = max(q, lo/b) * b
	case t.digits < 0:
		if -t.digits >= 19 {
			v = 0
			break
		}
		p := int64(math.Pow10(-t.digits))
		q, rem := v/p, v%p
		if half := p - p/2; rem >= half {
			q++
		} else if rem <= -half {
			q--
		}
		v = clamp(q, lo/p, hi/p) * p
	}
	return appendInt(dst, v, bits, t.binary), nil
}

func (t *roundT) roundFloat(dst, src []byte) ([]byte, error) {
	f32 := t.oid == OIDFloat4
	var x float64
	if t.binary {
		switch {
		case f32 && len(src) == 4:
			x = float64(math.Float32frombits(binary.BigEndian.Uint32(src)))
		case !f32 && len(src) == 8:
			x = math.Float64frombits(binary.BigEndian.Uint64(src))
		default:
			return dst, fmt.Errorf("%w: bad float length", ErrInvalidValue)
		}
	} else {
		if numericTextSpecial(src) {
			return append(dst, src...), nil
		}
		var err error
		bitSize := 64
		if f32 {
			bitSize = 32
		}
		if x, err = strconv.ParseFloat(string(src), bitSize); err != nil {
			return dst, fmt.Errorf("%w: not a float", ErrInvalidValue)
		}
	}
	r := x // NaN and ±Infinity are constants: they stay
	if !math.IsInf(x, 0) && !math.IsNaN(x) {
		exact := float64(exactFloat8)
		if f32 {
			exact = exactFloat4
		}
		var steps float64 // x in units of the precision
		switch {
		case t.bucketF > 0:
			steps = x / t.bucketF
			r = math.Floor(steps) * t.bucketF
		case t.digits < minFloatDigits:
			r = 0 // |x| < 10^309/2: every float rounds to zero
		default:
			p := math.Pow10(t.digits)
			steps = x * p
			r = math.Round(steps) / p
		}
		if math.Abs(steps) >= exact || math.IsInf(r, 0) || math.IsNaN(r) || (f32 && math.IsInf(float64(float32(r)), 0)) {
			// The value is too large for the precision asked: it has no
			// fraction left to round away, so it is withheld, not
			// returned as it was.
			return dst, fmt.Errorf("%w: float too large to round to the policy's precision", ErrUnchanged)
		}
	}
	if t.binary {
		if f32 {
			return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(r))), nil
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(r)), nil
	}
	switch {
	case math.IsNaN(r):
		return append(dst, "NaN"...), nil
	case math.IsInf(r, 1):
		return append(dst, "Infinity"...), nil
	case math.IsInf(r, -1):
		return append(dst, "-Infinity"...), nil
	}
	if f32 {
		return strconv.AppendFloat(dst, float64(float32(r)), 'g', -1, 32), nil
	}
	return strconv.AppendFloat(dst, r, 'g', -1, 64), nil
}

func (t *roundT) roundNumeric(dst, src []byte) ([]byte, error) {
	text := src
	if t.binary {
		bp := t.pool.Get().(*[]byte)
		defer func() { t.pool.Put(bp) }()
		var special bool
		var err error
		*bp, special, err = numericBinaryToText((*bp)[:0], src)
		if err != nil {
			return dst, err
		}
		if special {
			return append(dst, src...), nil
		}
		text = *bp
	} else if numericTextSpecial(src) {
		return append(dst, src...), nil
	}
	neg, intPart, frac, err := splitDecimal(text)
	if err != nil {
		return dst, err
	}
	if t.bucketRat == nil {
		if !t.binary {
			return appendRoundedDecimal(dst, neg, intPart, frac, t.digits), nil
		}
		bp := t.pool.Get().(*[]byte)
		defer func() { t.pool.Put(bp) }()
		*bp = appendRoundedDecimal((*bp)[:0], neg, intPart, frac, t.digits)
		return appendNumericBinary(dst, *bp)
	}
	// Bucket: floor(x / bucket) * bucket with exact rationals (allocates).
	x, ok := new(big.Rat).SetString(string(text))
	if !ok {
		return dst, fmt.Errorf("%w: not a numeric", ErrInvalidValue)
	}
	q := new(big.Rat).Quo(x, t.bucketRat)
	fl := new(big.Int).Div(q.Num(), q.Denom()) // Euclidean: floor for denom > 0
	x.Mul(new(big.Rat).SetInt(fl), t.bucketRat)
	out := x.FloatString(t.bucketScl)
	if t.binary {
		return appendNumericBinary(dst, []byte(out))
	}
	return append(dst, out...), nil
}
