package crypto

import (
	"encoding/binary"
	"fmt"
)

// PostgreSQL numeric binary format: int16 ndigits, int16 weight, uint16
// sign, int16 dscale, then ndigits base-10000 digits; value = Σ digit[i] ×
// 10000^(weight-i).
const (
	numericPos    = 0x0000
	numericNeg    = 0x4000
	numericNaN    = 0xC000
	numericPInf   = 0xD000
	numericNInf   = 0xF000
	numericMaxLen = 1 << 17 // more digits than numeric can hold
)

// numericSpecial reports NaN and ±Infinity, which round leaves alone.
func numericTextSpecial(s []byte) bool {
	switch string(s) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	return false
}

// splitDecimal splits PostgreSQL numeric text into sign, integer digits
// (without leading zeros) and fraction digits.
func splitDecimal(s []byte) (neg bool, intPart, frac []byte, err error) {
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	dot := len(s)
	for i, c := range s {
		if c == '.' {
			if dot != len(s) {
				return false, nil, nil, fmt.Errorf("%w: not a numeric", ErrInvalidValue)
			}
			dot = i
		} else if c < '0' || c > '9' {
			return false, nil, nil, fmt.Errorf("%w: not a numeric", ErrInvalidValue)
		}
	}
	intPart, frac = s[:dot], nil
	if dot < len(s) {
		frac = s[dot+1:]
	}
	if len(intPart)+len(frac) == 0 || len(s) > numericMaxLen {
		return false, nil, nil, fmt.Errorf("%w: not a numeric", ErrInvalidValue)
	}
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	return neg, intPart, frac, nil
}

// appendRoundedDecimal appends the decimal (neg, intPart.frac) rounded half
// away from zero to r fraction digits (r < 0 rounds to tens, hundreds…),
// in PostgreSQL's text form with max(r, 0) fraction digits.
func appendRoundedDecimal(dst []byte, neg bool, intPart, frac []byte, r int) []byte {
	digit := func(i int) byte { // i-th digit of intPart||frac, zeros beyond
		if i < len(intPart) {
			return intPart[i]
		}
		if i-len(intPart) < len(frac) {
			return frac[i-len(intPart)]
		}
		return '0'
	}
	keep := len(intPart) + r // leading digits kept
	if keep < 0 {
		return append(dst, '0')
	}
	start := len(dst)
	dst = append(dst, '-', '0') // sign slot and carry slot
	for i := range keep {
		dst = append(dst, digit(i))
	}
	if digit(keep) >= '5' {
		i := len(dst) - 1
		for ; dst[i] == '9'; i-- {
			dst[i] = '0'
		}
		dst[i]++ // stops at the carry slot at the latest
	}
	for range -r {
		dst = append(dst, '0')
	}
	// dst[start+1:] now holds the scaled integer; the last fracLen digits
	// are the fraction.
	fracLen := max(r, 0)
	intLen := len(dst) - start - 1 - fracLen // >= 1 thanks to the carry slot
	if fracLen > 0 {
		p := start + 1 + intLen
		dst = append(dst, 0)
		copy(dst[p+1:], dst[p:p+fracLen])
		dst[p] = '.'
	}
	z := 0
	for z < intLen-1 && dst[start+1+z] == '0' {
		z++
	}
	copy(dst[start+1:], dst[start+1+z:])
	dst = dst[:len(dst)-z]
	zero := true // PostgreSQL has no negative zero
	for _, c := range dst[start+1:] {
		if c != '0' && c != '.' {
			zero = false
			break
		}
	}
	if !neg || zero {
		copy(dst[start:], dst[start+1:])
		dst = dst[:len(dst)-1]
	}
	return dst
}

// numericBinaryToText appends the text form of a binary numeric.
func numericBinaryToText(dst, src []byte) ([]byte, bool, error) {
	if len(src) < 8 {
		return dst, false, fmt.Errorf("%w: short numeric", ErrInvalidValue)
	}
	nd := int(int16(binary.BigEndian.Uint16(src)))
	weight := int(int16(binary.BigEndian.Uint16(src[2:])))
	sign := binary.BigEndian.Uint16(src[4:])
	dscale := int(int16(binary.BigEndian.Uint16(src[6:])))
	if nd < 0 || dscale < 0 || len(src) != 8+2*nd {
		return dst, false, fmt.Errorf("%w: bad numeric", ErrInvalidValue)
	}
	switch sign {
	case numericNaN, numericPInf, numericNInf:
		return dst, true, nil
	case numericPos, numericNeg:
	default:
		return dst, false, fmt.Errorf("%w: bad numeric sign", ErrInvalidValue)
	}
	group := func(i int) int {
		if i < 0 || i >= nd {
			return 0
		}
		return int(binary.BigEndian.Uint16(src[8+2*i:]))
	}
	if sign == numericNeg {
		dst = append(dst, '-')
	}
	if weight < 0 {
		dst = append(dst, '0')
	} else {
		for i := 0; i <= weight; i++ {
			g := group(i)
			if i == 0 {
				dst = appendSmall(dst, g)
			} else {
				dst = append(dst, byte('0'+g/1000), byte('0'+g/100%10), byte('0'+g/10%10), byte('0'+g%10))
			}
		}
	}
	if dscale > 0 {
		dst = append(dst, '.')
		for i, n := weight+1, 0; n < dscale; i++ {
			g := group(i)
			for _, c := range [4]byte{byte('0' + g/1000), byte('0' + g/100%10), byte('0' + g/10%10), byte('0' + g%10)} {
				if n < dscale {
					dst = append(dst, c)
					n++
				}
			}
		}
	}
	return dst, false, nil
}

func appendSmall(dst []byte, g int) []byte {
	switch {
	case g >= 1000:
		return append(dst, byte('0'+g/1000), byte('0'+g/100%10), byte('0'+g/10%10), byte('0'+g%10))
	case g >= 100:
		return append(dst, byte('0'+g/100), byte('0'+g/10%10), byte('0'+g%10))
	case g >= 10:
		return append(dst, byte('0'+g/10), byte('0'+g%10))
	}
	return append(dst, byte('0'+g))
}

// appendNumericBinary encodes PostgreSQL numeric text in binary form.
func appendNumericBinary(dst, text []byte) ([]byte, error) {
	neg, intPart, frac, err := splitDecimal(text)
	if err != nil {
		return dst, err
	}
	dscale := len(frac)
	// Align to base-10000 groups around the decimal point.
	lead := (4 - len(intPart)%4) % 4
	nInt := (len(intPart) + lead) / 4
	nFrac := (len(frac) + 3) / 4
	digit := func(i int) int { // decimal digit i of the padded string
		switch {
		case i < lead:
			return 0
		case i-lead < len(intPart):
			return int(intPart[i-lead] - '0')
		case i-lead-len(intPart) < len(frac):
			return int(frac[i-lead-len(intPart)] - '0')
		}
		return 0
	}
	first, last := 0, nInt+nFrac // trim zero groups at both ends
	g := func(k int) uint16 {
		return uint16(digit(4*k)*1000 + digit(4*k+1)*100 + digit(4*k+2)*10 + digit(4*k+3))
	}
	for first < last && g(first) == 0 {
		first++
	}
	for last > first && g(last-1) == 0 {
		last--
	}
	sign := uint16(numericPos)
	weight := nInt - 1 - first
	if first == last {
		weight = 0
	} else if neg {
		sign = numericNeg
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(last-first))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(dscale))
	for k := first; k < last; k++ {
		dst = binary.BigEndian.AppendUint16(dst, g(k))
	}
	return dst, nil
}
