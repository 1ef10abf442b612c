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

// CanonicalNaN returns the transformer that rewrites the NaNs of a binary
// value of type oid, or nil when the type holds no floats it reads.
func CanonicalNaN(oid uint32) *NaNs {
	switch oid {
	case oidFloat4, oidFloat4Array:
		return &NaNs{size: 4, array: oid == oidFloat4Array}
	case oidFloat8, oidFloat8Array:
		return &NaNs{size: 8, array: oid == oidFloat8Array}
	}
	return nil
}

// NaNs rewrites the NaNs of binary float values (a crypto.Transformer).
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
	for p < len(out) {
		if p+4 > len(out) {
			return dst[:start], errFloatShape
		}
		l := int32(binary.BigEndian.Uint32(out[p:]))
		p += 4
		if l < 0 {
			continue
		}
		if int(l) != t.size || p+t.size > len(out) {
			return dst[:start], errFloatShape
		}
		t.canonical(out[p : p+t.size])
		p += t.size
	}
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
