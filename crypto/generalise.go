package crypto

import (
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
// [-Days, +Days], derived from the value itself (HMAC of the instant), so equal
// values shift alike in any format. Time of day and offset are kept.
type shiftT struct {
	column
	redacted
	mac  *macPool
	days int64
}

func newShift(spec Spec, ks *Keyset, c column) (Transformer, error) {
	if spec.Days < 1 || spec.Days > 36500 {
		return nil, fmt.Errorf("%w: shift days must be in [1, 36500]", ErrInvalidSpec)
	}
	key, err := ks.derive(c.version, purposeShift, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &shiftT{column: c, mac: newMACPool(key), days: int64(spec.Days)}, nil
}

// offset returns the keyed offset for a canonical value.
func (t *shiftT) offset(canonical int64) int64 {
	s := t.mac.get()
	var b [9]byte
	b[0] = byte(t.oid) // date and timestamp values never share offsets
	binary.BigEndian.PutUint64(b[1:], uint64(canonical))
	copy(s.buf[:], b[:])
	s.h.Write(s.buf[:9])
	r := binary.BigEndian.Uint64(s.finish())
	t.mac.put(s)
	// Never 0: a zero offset would pass the value through unchanged.
	off := int64(r%uint64(2*t.days)) - t.days // [-days, days-1]
	if off >= 0 {
		off++ // [-days, -1] ∪ [1, days]
	}
	return off
}

// Transform implements Transformer.
func (t *shiftT) Transform(dst, src []byte) ([]byte, error) {
	isDate := t.oid == OIDDate
	if t.binary {
		v, inf, err := readBinaryTime(src, isDate)
		if err != nil || inf != 0 {
			return append(dst, src...), err
		}
		off := t.offset(v)
		if isDate {
			return appendBinaryTime(dst, clamp(v+off, dateMinDays, dateMaxDays), true), nil
		}
		return appendBinaryTime(dst, clamp(v+off*usPerDay, tsMin, tsMaxExcl-1), false), nil
	}
	p, err := parseTimeText(src, !isDate, t.oid == OIDTimestampTZ)
	if err != nil {
		return dst, err
	}
	if p.inf != 0 {
		return append(dst, src...), nil
	}
	var off int64
	if isDate {
		off = t.offset(p.days())
	} else {
		off = t.offset(p.micros())
	}
	hi := dateMaxDays
	if !isDate {
		hi = (tsMaxExcl-1)/usPerDay - 1
	}
	nd := clamp(p.days()+off, dateMinDays, hi)
	y, m, d := civilFromDays(nd + pgEpochDay)
	dst, bc := appendDateText(dst, y, m, d)
	if !isDate {
		dst = append(dst, ' ')
		dst = append(dst, p.timeText...)
		dst = append(dst, p.offsetText...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}
