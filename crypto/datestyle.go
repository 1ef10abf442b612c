package crypto

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// DateStyle is how a session's server writes dates and timestamps as text
// (PostgreSQL's DateStyle setting, as ParameterStatus reports it: "ISO,
// MDY", "German, DMY", …). Transformers read and write ISO; Styled
// converts for the other styles.
type DateStyle struct {
	// Style is 'I' (ISO), 'S' (SQL), 'G' (German) or 'P' (Postgres).
	Style byte
	// DMY: day before month in the SQL and Postgres styles.
	DMY bool
}

// ParseDateStyle reads a DateStyle setting; ok is false for one it does not
// know.
func ParseDateStyle(s string) (DateStyle, bool) {
	var st DateStyle
	for _, part := range strings.Split(s, ",") {
		switch strings.ToUpper(strings.TrimSpace(part)) {
		case "ISO":
			st.Style = 'I'
		case "SQL":
			st.Style = 'S'
		case "GERMAN":
			st.Style = 'G'
		case "POSTGRES":
			st.Style = 'P'
		case "DMY", "EURO", "EUROPEAN":
			st.DMY = true
		case "MDY", "US", "NONEURO", "NONEUROPEAN", "YMD":
		default:
			return DateStyle{}, false
		}
	}
	return st, st.Style != 0
}

// ISO reports the style transformers read and write themselves.
func (st DateStyle) ISO() bool { return st.Style == 'I' }

// Styled wraps t, a transformer of text dates or timestamps of type oid
// in ISO style, to read and write them in style st instead. Only the date
// part moves between styles: time of day is carried over. A timestamptz
// in another style than ISO names its zone by abbreviation, which does
// not give the instant every transform needs (a month taken in the zone
// shown would move with the session's TimeZone): it is reported invalid,
// and withheld. Like every Transformer, the result is safe for concurrent
// use (a large result's rows are rewritten on several cores).
func Styled(t Transformer, oid uint32, st DateStyle) Transformer {
	if st.ISO() {
		return t
	}
	return &styledT{inner: t, oid: oid, st: st}
}

type styledT struct {
	inner   Transformer
	oid     uint32
	st      DateStyle
	scratch sync.Pool // *styledScratch, one per call in flight
}

// styledScratch holds a value in ISO style and what the inner transformer
// made of it.
type styledScratch struct{ iso, out []byte }

// ReturnsNull implements Transformer.
func (s *styledT) ReturnsNull() bool { return s.inner.ReturnsNull() }

// KeyVersion implements Transformer.
func (s *styledT) KeyVersion() uint32 { return s.inner.KeyVersion() }

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// styledParts is a value in some style, taken apart.
type styledParts struct {
	y, m, d int64  // y as written (before BC)
	bc      bool   // " BC" at the end
	clock   []byte // hh:mm:ss[.frac], timestamps only
	zone    []byte // what follows the clock, timestamptz only (" CET")
}

// Transform implements Transformer.
func (s *styledT) Transform(dst, src []byte) ([]byte, error) {
	if string(src) == "infinity" || string(src) == "-infinity" {
		return s.inner.Transform(dst, src)
	}
	p, err := s.parse(src)
	if err != nil {
		return dst, err
	}
	sc, _ := s.scratch.Get().(*styledScratch)
	if sc == nil {
		sc = new(styledScratch)
	}
	defer s.scratch.Put(sc)
	iso := fmt.Appendf(sc.iso[:0], "%04d-%02d-%02d", p.y, p.m, p.d)
	if s.oid != OIDDate {
		iso = append(append(iso, ' '), p.clock...)
	}
	if p.bc {
		iso = append(iso, " BC"...)
	}
	sc.iso = iso
	out, err := s.inner.Transform(sc.out[:0], iso)
	if err != nil {
		return dst, err
	}
	sc.out = out
	q, err := parseTimeText(out, s.oid != OIDDate, false)
	if err != nil || q.inf != 0 {
		return dst, fmt.Errorf("%w: styled date output", ErrInvalidValue)
	}
	y, bc := q.y, q.y <= 0
	if bc {
		y = 1 - y
	}
	dst = s.appendDate(dst, y, q.m, q.d, daysFromCivil(q.y, q.m, q.d))
	if s.oid != OIDDate {
		dst = append(append(dst, ' '), q.timeText...)
		if s.st.Style == 'P' {
			dst = append(append(dst, ' '), fmt.Sprintf("%04d", y)...)
		}
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

// appendDate writes the date part in the style: for Postgres-style
// timestamps the weekday, month name and day (the year follows the clock).
func (s *styledT) appendDate(dst []byte, y, m, d, unixDays int64) []byte {
	first, second := m, d
	if s.st.DMY {
		first, second = d, m
	}
	switch {
	case s.st.Style == 'G':
		return fmt.Appendf(dst, "%02d.%02d.%04d", d, m, y)
	case s.st.Style == 'S':
		return fmt.Appendf(dst, "%02d/%02d/%04d", first, second, y)
	case s.oid == OIDDate: // Postgres
		return fmt.Appendf(dst, "%02d-%02d-%04d", first, second, y)
	}
	wd := dayNames[((unixDays%7)+7+4)%7] // 1970-01-01 was a Thursday
	if s.st.DMY {
		return fmt.Appendf(dst, "%s %02d %s", wd, d, monthNames[m-1])
	}
	return fmt.Appendf(dst, "%s %s %02d", wd, monthNames[m-1], d)
}

func badStyled(st DateStyle) error {
	return fmt.Errorf("%w: not a date in DateStyle %c", ErrInvalidValue, st.Style)
}

// parse takes a value in the session's style apart.
func (s *styledT) parse(src []byte) (styledParts, error) {
	var p styledParts
	rest := src
	if r, ok := bytes.CutSuffix(rest, []byte(" BC")); ok {
		p.bc, rest = true, r
	}
	if s.st.Style == 'P' && s.oid != OIDDate {
		// "Wed Dec 17 07:37:16.5 1997 CET" or "Wed 17 Dec 07:37:16 1997"
		f := bytes.Fields(rest)
		if len(f) < 5 || len(f) > 6 || len(f[0]) != 3 {
			return p, badStyled(s.st)
		}
		mon, day := f[1], f[2]
		if s.st.DMY {
			mon, day = f[2], f[1]
		}
		m := int64(0)
		for i, n := range monthNames {
			if string(mon) == n {
				m = int64(i + 1)
			}
		}
		d, err1 := strconv.ParseInt(string(day), 10, 64)
		y, err2 := strconv.ParseInt(string(f[4]), 10, 64)
		if m == 0 || err1 != nil || err2 != nil || len(day) != 2 || len(f[4]) < 4 {
			return p, badStyled(s.st)
		}
		p.y, p.m, p.d, p.clock = y, m, d, f[3]
		if len(f) == 6 {
			p.zone = append([]byte{' '}, f[5]...)
		}
		return p, s.check(p)
	}
	date, tail, _ := bytes.Cut(rest, []byte(" "))
	sep := map[byte]byte{'S': '/', 'G': '.', 'P': '-'}[s.st.Style]
	parts := bytes.Split(date, []byte{sep})
	if len(parts) != 3 || len(parts[0]) != 2 || len(parts[1]) != 2 || len(parts[2]) < 4 {
		return p, badStyled(s.st)
	}
	var n [3]int64
	for i, part := range parts {
		v, err := strconv.ParseUint(string(part), 10, 63)
		if err != nil {
			return p, badStyled(s.st)
		}
		n[i] = int64(v)
	}
	p.m, p.d, p.y = n[0], n[1], n[2]
	if s.st.DMY || s.st.Style == 'G' {
		p.m, p.d = n[1], n[0]
	}
	if s.oid != OIDDate {
		clock, zone, _ := bytes.Cut(tail, []byte(" "))
		p.clock = clock
		if len(zone) > 0 {
			p.zone = append([]byte{' '}, zone...)
		}
	} else if len(tail) > 0 {
		return p, badStyled(s.st)
	}
	return p, s.check(p)
}

// check refuses parts the type cannot have: a zone on a timestamp
// without one, a timestamptz whose instant the kind would need.
func (s *styledT) check(p styledParts) error {
	switch {
	case p.y < 1 || p.m < 1 || p.m > 12 || p.d < 1 || len(p.clock) == 0 && s.oid != OIDDate:
		return badStyled(s.st)
	case s.oid == OIDTimestamp && len(p.zone) > 0, s.oid == OIDTimestampTZ && len(p.zone) == 0:
		return badStyled(s.st)
	case s.oid == OIDTimestampTZ:
		return fmt.Errorf("%w: a timestamptz in DateStyle %c names its zone, not its offset; its transforms need the instant (use DateStyle ISO)", ErrInvalidValue, s.st.Style)
	}
	return nil
}
