package rewrite

import (
	"encoding/binary"
	"errors"
	"math"
)

// A float NaN prints as "NaN" whatever its sign and payload bits, and all
// NaNs compare equal, so a grouping keeps one of them as the first row it
// reads had it; its text does not show which, but its binary form does
// ('NaN'::float8 is 7ff8…, inf - inf is fff8…). Binary float values, and
// the elements of binary float arrays, leave a restricted session with
// every NaN written as the one 'NaN' parses to.

// Float type OIDs whose binary values CanonicalNaN rewrites.
const (
	oidFloat4      = 700
	oidFloat8      = 701
	oidFloat4Array = 1021
	oidFloat8Array = 1022
)

// The same holds for arrays: (ARRAY[NULL, 1])[2:2] and ARRAY[1] print
// alike and compare equal, but the binary form of the first says it may
// hold NULLs. Binary arrays of built-in scalar types leave with that flag
// set only when an element is NULL.

// CanonicalNaN returns the transformer that rewrites the NaNs of a binary
// value of type oid, or nil when the type holds no floats it reads.
func CanonicalNaN(oid uint32) *NaNs {
	switch oid {
	case oidFloat4, oidFloat4Array:
		return &NaNs{size: 4, array: oid == oidFloat4Array}
	case oidFloat8, oidFloat8Array:
		return &NaNs{size: 8, array: oid == oidFloat8Array}
	}
	if scalarArrays[oid] {
		return &NaNs{array: true}
	}
	return nil
}

// BinaryOpaque reports a type whose binary values a restricted session
// does not get for computed columns: records and types that are not
// built in (composites, arrays and domains of them), whose binary form may
// keep bits their text does not show.
func BinaryOpaque(oid uint32) bool {
	return oid == oidRecord || oid == oidRecordArray || oid >= firstUserOID
}

const (
	oidRecord      = 2249
	oidRecordArray = 2287
	firstUserOID   = 16384
)

// scalarArrays are the built-in array types of scalar elements (bool,
// bytea, char, name, int2, int4, text, bpchar, varchar, int8, oid,
// macaddr, inet, cidr, date, time, timestamp, timestamptz, interval,
// numeric, timetz, uuid, jsonb, json, money, xml).
var scalarArrays = map[uint32]bool{
	1000: true, 1001: true, 1002: true, 1003: true, 1005: true, 1007: true, 1009: true, 1014: true, 1015: true,
	1016: true, 1028: true, 1040: true, 1041: true, 651: true, 1182: true, 1183: true, 1115: true, 1185: true,
	1187: true, 1231: true, 1270: true, 2951: true, 3807: true, 199: true, 791: true, 143: true,
}

// NaNs rewrites the NaNs of binary float values, and the NULL flag of
// binary arrays (a crypto.Transformer). size 0: elements are not floats.
type NaNs struct {
	size  int
	array bool
}

var errFloatShape = errors.New("binary float value of the wrong shape")

// Transform appends src with every NaN made canonical.
func (t *NaNs) Transform(dst, src []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, src...)
	out := dst[start:]
	if !t.array {
		if len(out) != t.size {
			return dst[:start], errFloatShape
		}
		t.canonical(out)
		return dst, nil
	}
	// ndim, has-null flag, element type, then (size, lower bound) per
	// dimension, then each element as length and bytes (-1: NULL).
	if len(out) < 12 {
		return dst[:start], errFloatShape
	}
	ndim := int(binary.BigEndian.Uint32(out))
	if ndim < 0 || ndim > 6 || len(out) < 12+8*ndim {
		return dst[:start], errFloatShape
	}
	p := 12 + 8*ndim
	hasNull := uint32(0)
	for p < len(out) {
		if p+4 > len(out) {
			return dst[:start], errFloatShape
		}
		l := int32(binary.BigEndian.Uint32(out[p:]))
		p += 4
		if l < 0 {
			hasNull = 1
			continue
		}
		if t.size > 0 && int(l) != t.size || p+int(l) > len(out) {
			return dst[:start], errFloatShape
		}
		if t.size > 0 {
			t.canonical(out[p : p+t.size])
		}
		p += int(l)
	}
	binary.BigEndian.PutUint32(out[4:], hasNull)
	return dst, nil
}

// The bits of 'NaN'::float4 and 'NaN'::float8.
const (
	nan4 = 0x7fc00000
	nan8 = 0x7ff8000000000000
)

func (t *NaNs) canonical(b []byte) {
	if t.size == 4 {
		if math.IsNaN(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))) {
			binary.BigEndian.PutUint32(b, nan4)
		}
		return
	}
	if math.IsNaN(math.Float64frombits(binary.BigEndian.Uint64(b))) {
		binary.BigEndian.PutUint64(b, nan8)
	}
}

// ReturnsNull is false: values stay values.
func (t *NaNs) ReturnsNull() bool { return false }

// KeyVersion is 0: no key.
func (t *NaNs) KeyVersion() uint32 { return 0 }
