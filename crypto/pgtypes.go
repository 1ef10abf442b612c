package crypto

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// tokenAlphabet is lowercase base32: case-insensitive tools (BI, spreadsheets)
// cannot merge two different tokens.
var tokenAlphabet = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// intBits is the width of an integer type.
func intBits(oid uint32) int {
	switch oid {
	case OIDInt2:
		return 16
	case OIDInt4:
		return 32
	}
	return 64
}

func intRange(bits int) (lo, hi int64) {
	switch bits {
	case 16:
		return math.MinInt16, math.MaxInt16
	case 32:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// parseInt decodes an integer column value in either format.
func parseInt(src []byte, bits int, binaryFmt bool) (int64, error) {
	if binaryFmt {
		if len(src) != bits/8 {
			return 0, fmt.Errorf("%w: int%d needs %d bytes, got %d", ErrInvalidValue, bits/8, bits/8, len(src))
		}
		switch bits {
		case 16:
			return int64(int16(binary.BigEndian.Uint16(src))), nil
		case 32:
			return int64(int32(binary.BigEndian.Uint32(src))), nil
		}
		return int64(binary.BigEndian.Uint64(src)), nil
	}
	v, ok := atoi(src)
	lo, hi := intRange(bits)
	if !ok || v < lo || v > hi {
		return 0, fmt.Errorf("%w: not an int%d", ErrInvalidValue, bits/8)
	}
	return v, nil
}

// atoi parses a decimal int64 without allocating (strconv needs a string).
func atoi(s []byte) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

func appendInt(dst []byte, v int64, bits int, binaryFmt bool) []byte {
	if !binaryFmt {
		return strconv.AppendInt(dst, v, 10)
	}
	switch bits {
	case 16:
		return binary.BigEndian.AppendUint16(dst, uint16(v))
	case 32:
		return binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

// parseUUID decodes a uuid value into out. Text accepts PostgreSQL's
// input forms: canonical, upper case, no hyphens, braces.
func parseUUID(out *[16]byte, src []byte, binaryFmt bool) error {
	if binaryFmt {
		if len(src) != 16 {
			return fmt.Errorf("%w: uuid needs 16 bytes", ErrInvalidValue)
		}
		copy(out[:], src)
		return nil
	}
	if len(src) >= 2 && src[0] == '{' && src[len(src)-1] == '}' {
		src = src[1 : len(src)-1]
	}
	// Hyphens may follow any group of four hex digits, as in uuid_in.
	n := 0
	var hi byte
	prevDash := false
	for i, c := range src {
		if c == '-' {
			if n == 0 || n%4 != 0 || prevDash || i == len(src)-1 {
				return fmt.Errorf("%w: bad uuid", ErrInvalidValue)
			}
			prevDash = true
			continue
		}
		prevDash = false
		v, ok := unhex(c)
		if !ok || n >= 32 {
			return fmt.Errorf("%w: bad uuid", ErrInvalidValue)
		}
		if n%2 == 0 {
			hi = v
		} else {
			out[n/2] = hi<<4 | v
		}
		n++
	}
	if n != 32 {
		return fmt.Errorf("%w: bad uuid", ErrInvalidValue)
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const hexDigits = "0123456789abcdef"

// appendUUID writes u in the given format (text: canonical lower case).
func appendUUID(dst []byte, u *[16]byte, binaryFmt bool) []byte {
	if binaryFmt {
		return append(dst, u[:]...)
	}
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// trimPad drops bpchar's trailing blanks, which PostgreSQL treats as
// insignificant, so 'ab' in char(4) and varchar tokenise alike.
func trimPad(oid uint32, src []byte) []byte {
	if oid != OIDBPChar {
		return src
	}
	for len(src) > 0 && src[len(src)-1] == ' ' {
		src = src[:len(src)-1]
	}
	return src
}
