package crypto

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// PostgreSQL date/timestamp encoding: binary dates are int32 days and
// timestamps int64 microseconds since 2000-01-01 (UTC for timestamptz);
// the extreme int values are ±infinity. Text is ISO DateStyle.
const (
	usPerDay   = int64(86_400_000_000)
	pgEpochDay = int64(10957) // 2000-01-01 in days since 1970-01-01

	dateMinDays = int64(-2451545)            // 4714-11-24 BC (Julian day 0)
	dateMaxDays = int64(2145031948)          // 5874897-12-31
	tsMin       = int64(-211813488000000000) // 4714-11-24 00:00:00 BC
	tsMaxExcl   = int64(9223371331200000000) // 294277-01-01 00:00:00
)

// daysFromCivil is days since 1970-01-01 of a proleptic Gregorian date with
// astronomical year numbering (1 BC = year 0); H. Hinnant's algorithm.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays inverts daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func daysInMonth(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// pgTime is a parsed text date/timestamp. Offsets index the original text
// so untouched parts (time of day, UTC offset) are copied verbatim.
type pgTime struct {
	inf        int8  // +1 infinity, -1 -infinity
	y, m, d    int64 // astronomical year
	tod        int64 // µs since midnight
	timeText   []byte
	offsetText []byte
	offsetSec  int64
}

// days is the date in days since 2000-01-01.
func (p *pgTime) days() int64 { return daysFromCivil(p.y, p.m, p.d) - pgEpochDay }

// micros is the instant in µs since 2000-01-01 (UTC when there is an offset).
func (p *pgTime) micros() int64 { return p.days()*usPerDay + p.tod - p.offsetSec*1_000_000 }

func badTime(what string) error {
	return fmt.Errorf("%w: not an ISO %s (the proxy should pin DateStyle=ISO)", ErrInvalidValue, what)
}

// parseTimeText parses PostgreSQL's ISO output for date (withTime false),
// timestamp, or timestamptz (withTZ).
func parseTimeText(s []byte, withTime, withTZ bool) (pgTime, error) {
	var p pgTime
	what := "date"
	if withTime {
		what = "timestamp"
	}
	switch string(s) {
	case "infinity":
		p.inf = 1
		return p, nil
	case "-infinity":
		p.inf = -1
		return p, nil
	}
	i := 0
	num := func(min, max int) (int64, bool) {
		j := i
		var v int64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-j < max {
			v = v*10 + int64(s[i]-'0')
			i++
		}
		return v, i-j >= min
	}
	lit := func(c byte) bool {
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	y, ok := num(1, 9)
	if !ok || !lit('-') {
		return p, badTime(what)
	}
	m, ok1 := num(2, 2)
	ok2 := lit('-')
	d, ok3 := num(2, 2)
	if !ok1 || !ok2 || !ok3 || y == 0 || m < 1 || m > 12 {
		return p, badTime(what)
	}
	if withTime {
		if !lit(' ') && !lit('T') {
			return p, badTime(what)
		}
		ts := i
		hh, a := num(2, 2)
		b := lit(':')
		mm, c := num(2, 2)
		e := lit(':')
		ss, f := num(2, 2)
		if !a || !b || !c || !e || !f || hh > 24 || mm > 59 || ss > 60 {
			return p, badTime(what)
		}
		p.tod = ((hh*60+mm)*60 + ss) * 1_000_000
		if lit('.') {
			j := i
			frac, ok := num(1, 6)
			if !ok {
				return p, badTime(what)
			}
			for k := i - j; k < 6; k++ {
				frac *= 10
			}
			p.tod += frac
		}
		p.timeText = s[ts:i]
		if withTZ {
			os := i
			sign := int64(1)
			if lit('-') {
				sign = -1
			} else if !lit('+') {
				return p, badTime(what)
			}
			// PostgreSQL writes the hours with two or three digits: a
			// POSIX TimeZone may be up to 167 hours from UTC. A form it
			// writes for some rows only must parse, or the rows withheld
			// under a chosen zone would tell which side of its change
			// each value lies.
			oh, ok := num(2, 3)
			if !ok {
				return p, badTime(what)
			}
			var om, osec int64
			if lit(':') {
				if om, ok = num(2, 2); !ok {
					return p, badTime(what)
				}
				if lit(':') {
					if osec, ok = num(2, 2); !ok {
						return p, badTime(what)
					}
				}
			}
			p.offsetSec = sign * (oh*3600 + om*60 + osec)
			p.offsetText = s[os:i]
		}
	}
	if i+3 == len(s) && string(s[i:]) == " BC" {
		y = 1 - y
		i += 3
	}
	if i != len(s) || d < 1 || d > daysInMonth(y, m) {
		return p, badTime(what)
	}
	p.y, p.m, p.d = y, m, d
	return p, nil
}

// appendDateText writes an ISO date (astronomical year y) and reports
// whether the value is BC (the caller appends " BC" after the time).
func appendDateText(dst []byte, y, m, d int64) ([]byte, bool) {
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	if y < 1000 {
		dst = append(dst, "000"[:4-len(strconv.FormatInt(y, 10))]...)
	}
	dst = strconv.AppendInt(dst, y, 10)
	dst = append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	return dst, bc
}

// readBinaryTime decodes a binary date (days) or timestamp (µs); inf is
// ±1 for the infinities.
func readBinaryTime(src []byte, isDate bool) (v int64, inf int8, err error) {
	if isDate {
		if len(src) != 4 {
			return 0, 0, fmt.Errorf("%w: date needs 4 bytes", ErrInvalidValue)
		}
		v = int64(int32(binary.BigEndian.Uint32(src)))
		switch {
		case v == math.MaxInt32:
			inf = 1
		case v == math.MinInt32:
			inf = -1
		case v < dateMinDays || v > dateMaxDays:
			// No date the server sends: the value is not a date.
			return 0, 0, fmt.Errorf("%w: date out of range", ErrInvalidValue)
		}
		return v, inf, nil
	}
	if len(src) != 8 {
		return 0, 0, fmt.Errorf("%w: timestamp needs 8 bytes", ErrInvalidValue)
	}
	v = int64(binary.BigEndian.Uint64(src))
	switch {
	case v == math.MaxInt64:
		inf = 1
	case v == math.MinInt64:
		inf = -1
	case v < tsMin || v >= tsMaxExcl:
		return 0, 0, fmt.Errorf("%w: timestamp out of range", ErrInvalidValue)
	}
	return v, inf, nil
}

func appendBinaryTime(dst []byte, v int64, isDate bool) []byte {
	if isDate {
		return binary.BigEndian.AppendUint32(dst, uint32(int32(v)))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
