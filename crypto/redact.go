package crypto

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// defaultConstant is redact's value per type when the policy gives none.
func defaultConstant(oid uint32) string {
	switch oid {
	case OIDBool:
		return "false"
	case OIDInt2, OIDInt4, OIDInt8, OIDNumeric, OIDFloat4, OIDFloat8:
		return "0"
	case OIDUUID:
		return "00000000-0000-0000-0000-000000000000"
	case OIDDate:
		return "1970-01-01"
	case OIDTimestamp:
		return "1970-01-01 00:00:00"
	case OIDTimestampTZ:
		return "1970-01-01 00:00:00+00"
	}
	return "REDACTED"
}

// redactT writes one constant, validated and encoded for the column's type
// and format at construction.
type redactT struct {
	column
	value []byte
}

func newRedact(spec Spec, c column) (Transformer, error) {
	text := spec.Constant
	if text == "" {
		text = defaultConstant(c.oid)
		if spec.MaxLen > 0 && utf8.RuneCountInString(text) > spec.MaxLen {
			// The default constant is cut to the column's length: a
			// withheld NOT NULL value still restores. (A policy's own
			// constant is never cut: fit.go withholds it.)
			text = string([]rune(text)[:spec.MaxLen])
		}
	}
	v, err := encodeConstant(text, c.oid, c.binary)
	if err != nil {
		return nil, fmt.Errorf("%w: redact constant %q is not a valid value of type oid %d: %w", ErrInvalidSpec, text, c.oid, err)
	}
	return &redactT{column: c, value: v}, nil
}

// Transform implements Transformer.
func (t *redactT) Transform(dst, _ []byte) ([]byte, error) { return append(dst, t.value...), nil }

// encodeConstant parses text as a value of oid and returns its encoding.
func encodeConstant(text string, oid uint32, binaryFmt bool) ([]byte, error) {
	b := []byte(text)
	switch oid {
	case OIDBool:
		v, err := strconv.ParseBool(text)
		if err != nil {
			return nil, err
		}
		if binaryFmt {
			if v {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		}
		if v {
			return []byte("t"), nil
		}
		return []byte("f"), nil
	case OIDInt2, OIDInt4, OIDInt8:
		bits := intBits(oid)
		v, err := parseInt(b, bits, false)
		if err != nil {
			return nil, err
		}
		return appendInt(nil, v, bits, binaryFmt), nil
	case OIDUUID:
		var u [16]byte
		if err := parseUUID(&u, b, false); err != nil {
			return nil, err
		}
		return appendUUID(nil, &u, binaryFmt), nil
	case OIDNumeric:
		if binaryFmt {
			return appendNumericBinary(nil, b)
		}
		if _, _, _, err := splitDecimal(b); err != nil {
			return nil, err
		}
		return b, nil
	case OIDFloat4, OIDFloat8:
		bitSize := 64
		if oid == OIDFloat4 {
			bitSize = 32
		}
		f, err := strconv.ParseFloat(text, bitSize)
		if err != nil {
			return nil, err
		}
		if !binaryFmt {
			return b, nil
		}
		if oid == OIDFloat4 {
			return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f))), nil
		}
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), nil
	case OIDDate, OIDTimestamp, OIDTimestampTZ:
		isDate := oid == OIDDate
		p, err := parseTimeText(b, !isDate, oid == OIDTimestampTZ)
		if err != nil {
			return nil, err
		}
		if !binaryFmt {
			return b, nil
		}
		switch {
		case isDate && p.inf == 0:
			return appendBinaryTime(nil, p.days(), true), nil
		case p.inf == 0:
			return appendBinaryTime(nil, p.micros(), false), nil
		case isDate && p.inf > 0:
			return appendBinaryTime(nil, math.MaxInt32, true), nil
		case isDate:
			return appendBinaryTime(nil, math.MinInt32, true), nil
		case p.inf > 0:
			return appendBinaryTime(nil, math.MaxInt64, false), nil
		}
		return appendBinaryTime(nil, math.MinInt64, false), nil
	}
	return b, nil // text types take any string
}
