package crypto

import (
	"errors"
	"testing"
)

// identityT returns its input: Styled around it must give back exactly
// what the server wrote.
type identityT struct{}

func (identityT) Transform(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }
func (identityT) ReturnsNull() bool                         { return false }
func (identityT) KeyVersion() uint32                        { return 0 }

// The values are PostgreSQL 15's own output (SET datestyle) and its
// date_trunc to the year.
var styledCases = []struct {
	style string
	oid   uint32
	in    string
	trunc string
}{
	{"SQL, MDY", OIDDate, "12/17/1997", "01/01/1997"},
	{"SQL, MDY", OIDDate, "02/03/0099 BC", "01/01/0099 BC"},
	{"SQL, MDY", OIDTimestamp, "12/17/1997 07:37:16.5", "01/01/1997 00:00:00"},
	{"SQL, MDY", OIDTimestamp, "03/02/0012 01:02:03 BC", "01/01/0012 00:00:00 BC"},
	{"SQL, DMY", OIDDate, "17/12/1997", "01/01/1997"},
	{"SQL, DMY", OIDTimestamp, "02/03/0012 01:02:03 BC", "01/01/0012 00:00:00 BC"},
	{"German, DMY", OIDDate, "17.12.1997", "01.01.1997"},
	{"German, DMY", OIDDate, "03.02.0099 BC", "01.01.0099 BC"},
	{"German, DMY", OIDTimestamp, "17.12.1997 07:37:16.5", "01.01.1997 00:00:00"},
	{"Postgres, MDY", OIDDate, "12-17-1997", "01-01-1997"},
	{"Postgres, MDY", OIDTimestamp, "Wed Dec 17 07:37:16.5 1997", "Wed Jan 01 00:00:00 1997"},
	{"Postgres, MDY", OIDTimestamp, "Thu Mar 02 01:02:03 0012 BC", "Sun Jan 01 00:00:00 0012 BC"},
	{"Postgres, DMY", OIDDate, "17-12-1997", "01-01-1997"},
	{"Postgres, DMY", OIDTimestamp, "Wed 17 Dec 07:37:16.5 1997", "Wed 01 Jan 00:00:00 1997"},
	{"Postgres, YMD", OIDDate, "12-17-1997", "01-01-1997"},
}

func TestStyledDates(t *testing.T) {
	for _, c := range styledCases {
		st, ok := ParseDateStyle(c.style)
		if !ok {
			t.Fatalf("%q does not parse", c.style)
		}
		if got, err := Styled(identityT{}, c.oid, st).Transform(nil, []byte(c.in)); err != nil || string(got) != c.in {
			t.Errorf("%s %d: %q round trips as %q, %v", c.style, c.oid, c.in, got, err)
		}
		inner, err := New(Spec{Kind: KindYear}, nil, c.oid, FormatText)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Styled(inner, c.oid, st).Transform(nil, []byte(c.in)); err != nil || string(got) != c.trunc {
			t.Errorf("%s %d: year of %q = %q, %v; want %q", c.style, c.oid, c.in, got, err, c.trunc)
		}
	}
}

// TestStyledRefuses: what the style cannot say is reported invalid (the
// value is then withheld), never guessed.
func TestStyledRefuses(t *testing.T) {
	ks := newTestKeyset(t)
	shift, err := New(Spec{Kind: KindShift, Days: 30, Domain: "d"}, ks, OIDTimestampTZ, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	german, _ := ParseDateStyle("German, DMY")
	month, err := New(Spec{Kind: KindMonth}, nil, OIDTimestampTZ, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	// A zone-named timestamptz does not give its instant (round 29: a
	// month taken in the zone shown moved with the session's TimeZone).
	for _, tr := range []Transformer{shift, month} {
		for _, v := range []string{"17.07.1997 07:37:16 CEST", "01.02.1990 10:00:00 XXX"} {
			if _, err := Styled(tr, OIDTimestampTZ, german).Transform(nil, []byte(v)); !errors.Is(err, ErrInvalidValue) {
				t.Errorf("a zone-named timestamptz %q: %v, want ErrInvalidValue", v, err)
			}
		}
	}
	year, err := New(Spec{Kind: KindYear}, nil, OIDDate, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	sqlDMY, _ := ParseDateStyle("SQL, DMY")
	for _, bad := range []string{"1997-12-17", "17.12.1997", "17/13/1997", "00/12/1997", "17/12/97", "17/12/1997 x", "", "17/12/1997 BC BC"} {
		if got, err := Styled(year, OIDDate, sqlDMY).Transform(nil, []byte(bad)); err == nil {
			t.Errorf("SQL, DMY date %q read as %q", bad, got)
		}
	}
	if _, ok := ParseDateStyle("Swatch, DMY"); ok {
		t.Error("an unknown style parses")
	}
	// A shift of a date in German style is the ISO shift of the same date.
	dshift, err := New(Spec{Kind: KindShift, Days: 30, Domain: "d"}, ks, OIDDate, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	iso, err := dshift.Transform(nil, []byte("1997-12-17"))
	if err != nil {
		t.Fatal(err)
	}
	de, err := Styled(dshift, OIDDate, german).Transform(nil, []byte("17.12.1997"))
	if err != nil {
		t.Fatal(err)
	}
	if want := string(iso[8:10]) + "." + string(iso[5:7]) + "." + string(iso[0:4]); string(de) != want {
		t.Errorf("German shift %q, ISO shift %q", de, iso)
	}
}

// FuzzStyled: any input in any style is read or reported invalid, never a
// panic, and what is read writes back in the same style.
func FuzzStyled(f *testing.F) {
	for i, c := range styledCases {
		f.Add(uint8(i), []byte(c.in))
		f.Add(uint8(i), []byte(c.trunc))
	}
	f.Add(uint8(0), []byte("Wed Dec 17 07:37:16.5 199"))
	f.Fuzz(func(t *testing.T, which uint8, in []byte) {
		c := styledCases[int(which)%len(styledCases)]
		st, _ := ParseDateStyle(c.style)
		out, err := Styled(identityT{}, c.oid, st).Transform(nil, in)
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("%q: unexpected error %v", in, err)
			}
			return
		}
		again, err := Styled(identityT{}, c.oid, st).Transform(nil, out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("%s: %q read as %q, which reads as %q, %v", c.style, in, out, again, err)
		}
	})
}
