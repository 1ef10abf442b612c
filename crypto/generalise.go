package crypto

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// truncT generalises dates and timestamps to the first day of their year
// or month (time of day set to midnight). A timestamptz is truncated in
// UTC, in binary and in text (written with offset +00).
type truncT struct {
	column
	month bool
}

func newTruncate(spec Spec, c column) (Transformer, error) {
	return &truncT{column: c, month: spec.Kind == KindMonth}, nil
}

func (t *truncT) target(y, m int64) (int64, int64) {
	if t.month {
		return y, m
	}
	return y, 1
}

// Transform implements Transformer.
func (t *truncT) Transform(dst, src []byte) ([]byte, error) {
	isDate := t.oid == OIDDate
	if t.binary {
		v, inf, err := readBinaryTime(src, isDate)
		if err != nil || inf != 0 {
			return append(dst, src...), err
		}
		days := v
		if !isDate {
			days = floorDiv(v, usPerDay)
		}
		y, m, _ := civilFromDays(days + pgEpochDay)
		y, m = t.target(y, m)
		nd := max(daysFromCivil(y, m, 1)-pgEpochDay, dateMinDays)
		if isDate {
			return appendBinaryTime(dst, nd, true), nil
		}
		return appendBinaryTime(dst, nd*usPerDay, false), nil
	}
	p, err := parseTimeText(src, !isDate, t.oid == OIDTimestampTZ)
	if err != nil {
		return dst, err
	}
	if p.inf != 0 {
		return append(dst, src...), nil
	}
	y, m := p.y, p.m
	if t.oid == OIDTimestampTZ {
		// Generalised in UTC, as in binary: in the offset shown, a
		// session's TimeZone (up to ±167 hours) would move the instant
		// across a month's start at the hour and day it has.
		y, m, _ = civilFromDays(floorDiv(p.micros(), usPerDay) + pgEpochDay)
	}
	y, m = t.target(y, m)
	// Clamp: 4714 BC is only representable from 24 November.
	y, m, d := civilFromDays(max(daysFromCivil(y, m, 1)-pgEpochDay, dateMinDays) + pgEpochDay)
	dst, bc := appendDateText(dst, y, m, d)
	switch {
	case t.oid == OIDTimestampTZ:
		dst = append(dst, " 00:00:00+00"...)
	case !isDate:
		dst = append(dst, " 00:00:00"...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

// shiftT moves a date or timestamp by a keyed, non-zero number of days in
// [-Days, +Days]. The offset is derived from the calendar day alone (a
// timestamptz's day in UTC) with the domain's key, so every date and
// timestamp column of one token domain shifts a given day alike, in any
// format: their outputs cannot be intersected to narrow the window, as
// independently keyed shifts of one date could. The time of day is set to
// midnight (a timestamptz is written in UTC) unless KeepTime is set.
type shiftT struct {
	column
	redacted
	mac      *macPool
	days     int64
	keepTime bool
}

func newShift(spec Spec, ks *Keyset, c column) (Transformer, error) {
	if spec.Days < 1 || spec.Days > 36500 {
		return nil, fmt.Errorf("%w: shift days must be in [1, 36500]", ErrInvalidSpec)
	}
	key, err := ks.derive(c.version, purposeShift, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &shiftT{column: c, mac: newMACPool(key), days: int64(spec.Days), keepTime: spec.KeepTime}, nil
}

// offset returns the keyed offset for a day (days since 2000-01-01).
func (t *shiftT) offset(day int64) int64 {
	s := t.mac.get()
	binary.BigEndian.PutUint64(s.buf[:8], uint64(day))
	s.h.Write(s.buf[:8])
	r := binary.BigEndian.Uint64(s.finish())
	t.mac.put(s)
	// Never 0: a zero offset would pass the value through unchanged.
	off := int64(r%uint64(2*t.days)) - t.days // [-days, days-1]
	if off >= 0 {
		off++ // [-days, -1] ∪ [1, days]
	}
	return off
}

// shifted moves day by its offset; where that leaves the type's range
// (lo, hi) it moves the other way, so a day at either end is never
// clamped back onto itself.
func (t *shiftT) shifted(day, lo, hi int64) int64 {
	off := t.offset(day)
	if nd := day + off; nd >= lo && nd <= hi {
		return nd
	}
	return clamp(day-off, lo, hi)
}

// Transform implements Transformer.
func (t *shiftT) Transform(dst, src []byte) ([]byte, error) {
	isDate := t.oid == OIDDate
	if t.binary {
		v, inf, err := readBinaryTime(src, isDate)
		if err != nil || inf != 0 {
			return append(dst, src...), err
		}
		if isDate {
			return appendBinaryTime(dst, t.shifted(v, dateMinDays, dateMaxDays), true), nil
		}
		day := floorDiv(v, usPerDay)
		tod := v - day*usPerDay
		if !t.keepTime {
			tod = 0
		}
		return appendBinaryTime(dst, t.shifted(day, tsMin/usPerDay, (tsMaxExcl-1)/usPerDay-1)*usPerDay+tod, false), nil
	}
	p, err := parseTimeText(src, !isDate, t.oid == OIDTimestampTZ)
	if err != nil {
		return dst, err
	}
	if p.inf != 0 {
		return append(dst, src...), nil
	}
	day, tod := p.days(), p.tod
	if t.oid == OIDTimestampTZ {
		// The instant's day and time in UTC, as in binary: the session's
		// TimeZone must not choose which day's offset applies.
		us := p.micros()
		day = floorDiv(us, usPerDay)
		tod = us - day*usPerDay
	}
	hi := dateMaxDays
	if !isDate {
		hi = (tsMaxExcl-1)/usPerDay - 1
	}
	nd := t.shifted(day, dateMinDays, hi)
	y, m, d := civilFromDays(nd + pgEpochDay)
	dst, bc := appendDateText(dst, y, m, d)
	switch {
	case isDate:
	case !t.keepTime:
		dst = append(dst, " 00:00:00"...)
	case t.oid == OIDTimestamp:
		dst = append(dst, ' ')
		dst = append(dst, p.timeText...)
	default:
		dst = appendTimeOfDay(append(dst, ' '), tod)
	}
	if t.oid == OIDTimestampTZ {
		dst = append(dst, "+00"...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

// appendTimeOfDay writes µs since midnight as PostgreSQL's ISO output
// does: HH:MM:SS, then the fraction without trailing zeros.
func appendTimeOfDay(dst []byte, us int64) []byte {
	two := func(dst []byte, v int64) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }
	sec := us / 1_000_000
	dst = two(dst, sec/3600)
	dst = two(append(dst, ':'), sec/60%60)
	dst = two(append(dst, ':'), sec%60)
	if frac := us % 1_000_000; frac != 0 {
		f := []byte{'.', 0, 0, 0, 0, 0, 0}
		for i := 6; i >= 1; i-- {
			f[i] = byte('0' + frac%10)
			frac /= 10
		}
		dst = append(dst, bytes.TrimRight(f, "0")...)
	}
	return dst
}
