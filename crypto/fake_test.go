package crypto

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// fakeSpecs covers every fake kind and locale (domain set by the tests).
var fakeSpecs = []Spec{
	{Kind: KindFirstName}, {Kind: KindFirstName, Locale: LocaleEN}, {Kind: KindFirstName, Unique: true},
	{Kind: KindLastName}, {Kind: KindLastName, Locale: LocaleEN}, {Kind: KindLastName, Unique: true, Locale: LocaleEN},
	{Kind: KindFullName}, {Kind: KindFullName, Locale: LocaleEN}, {Kind: KindFullName, Unique: true},
	{Kind: KindStreet}, {Kind: KindStreet, Locale: LocaleEN}, {Kind: KindStreet, Unique: true},
	{Kind: KindCity}, {Kind: KindCity, Locale: LocaleEN}, {Kind: KindCity, Unique: true},
	{Kind: KindCompany}, {Kind: KindCompany, Locale: LocaleEN}, {Kind: KindCompany, Unique: true},
	{Kind: KindPhone}, {Kind: KindPhone, Locale: LocaleEN},
	{Kind: KindPostcode},
	{Kind: KindEmail, Style: StyleName}, {Kind: KindEmail, Style: StyleName, Locale: LocaleEN},
}

func specName(s Spec) string {
	n := string(s.Kind)
	if s.Style != "" {
		n += "/" + s.Style
	}
	if s.Locale != "" {
		n += "/" + s.Locale
	}
	if s.Unique {
		n += "/unique"
	}
	if s.MaxLen > 0 {
		n += "/" + strconv.Itoa(s.MaxLen)
	}
	return n
}

// sampleInput is the i-th test input for a kind: realistic values of it.
func sampleInput(k Kind, i int) string {
	switch k {
	case KindPhone:
		return fmt.Sprintf([]string{"+49 151 %07d", "0151/%07d", "0049 30 %08d", "030-%08d", "+4917%08d"}[i%5], i)
	case KindPostcode:
		return fmt.Sprintf([]string{"%05d", "SW%d 1AA", "D-%05d"}[i%3], i%100000)
	case KindEmail:
		return fmt.Sprintf("person.%d@mail-%d.example.de", i, i%7)
	case KindStreet:
		return fmt.Sprintf("Lindenallee %d", i)
	}
	return fmt.Sprintf("Person Nummer %d", i)
}

var (
	codeRE      = regexp.MustCompile(`^(.*) ([A-Z2-7]{12})$`)
	fakeEmailRE = regexp.MustCompile(`^([a-z-]+)\.([a-z-]+)\.[a-z2-7]{12}@example\.(com|org|net)$`)
)

// checkFakeMember asserts out is made of the locale's dictionary entries.
func checkFakeMember(t *testing.T, spec Spec, in, out string) {
	t.Helper()
	loc, err := localeFor(spec.Locale)
	if err != nil {
		t.Fatal(err)
	}
	fail := func(why string) { t.Helper(); t.Fatalf("%s: %q → %q: %s", specName(spec), in, out, why) }
	body := out
	if spec.Unique {
		m := codeRE.FindStringSubmatch(out)
		if m == nil {
			fail("no unique code")
		}
		body = m[1]
	}
	switch spec.Kind {
	case KindFirstName:
		if !slices.Contains(loc.first, body) {
			fail("not a dictionary first name")
		}
	case KindLastName:
		if !slices.Contains(loc.last, body) {
			fail("not a dictionary last name")
		}
	case KindFullName:
		f, l, ok := strings.Cut(body, " ")
		if !ok || !slices.Contains(loc.first, f) || !slices.Contains(loc.last, l) {
			fail("not first and last name")
		}
	case KindCity:
		if !slices.Contains(loc.cities, body) {
			fail("not a dictionary city")
		}
	case KindStreet:
		var name, num string
		if loc.numberFirst {
			num, name, _ = strings.Cut(body, " ")
		} else if i := strings.LastIndexByte(body, ' '); i > 0 {
			name, num = body[:i], body[i+1:]
		}
		n, err := strconv.Atoi(num)
		if !slices.Contains(loc.streets, name) || err != nil || n < 1 || n > fakeHouseMax {
			fail("not a street and house number")
		}
	case KindCompany:
		parts := strings.SplitN(body, " ", 3)
		if len(parts) != 3 || !slices.Contains(loc.last, parts[0]) || !slices.Contains(loc.trades, parts[1]) || !slices.Contains(loc.legal, parts[2]) {
			fail("not surname, trade and legal form")
		}
	case KindEmail:
		m := fakeEmailRE.FindStringSubmatch(out)
		if m == nil || !slices.Contains(asciiList(loc.first), m[1]) || !slices.Contains(asciiList(loc.last), m[2]) {
			fail("not first.last.code@example.*")
		}
	case KindPhone:
		region := map[string]string{"": "DE", LocaleDE: "DE", LocaleEN: "GB"}[spec.Locale]
		num, err := phonenumbers.Parse(out, region)
		if err != nil || !phonenumbers.IsValidNumberForRegion(num, region) {
			fail(fmt.Sprintf("not a valid %s number (%v)", region, err))
		}
	case KindPostcode:
		if len(out) != len(in) {
			fail("length changed")
		}
		for i := range len(in) {
			a, b := in[i], out[i]
			switch {
			case a >= '0' && a <= '9':
				if b < '0' || b > '9' {
					fail("digit became " + string(b))
				}
			case a >= 'a' && a <= 'z':
				if b < 'a' || b > 'z' {
					fail("lower-case letter became " + string(b))
				}
			case a >= 'A' && a <= 'Z':
				if b < 'A' || b > 'Z' {
					fail("upper-case letter became " + string(b))
				}
			case a != b:
				fail("separator changed")
			}
		}
	}
}

// TestFakeDictionaries: each locale has a few hundred names and every
// name spells as an address word.
func TestFakeDictionaries(t *testing.T) {
	for _, name := range []string{LocaleDE, LocaleEN} {
		loc, _ := localeFor(name)
		for what, d := range map[string][]string{"first": loc.first, "last": loc.last, "streets": loc.streets, "cities": loc.cities, "trades": loc.trades, "legal": loc.legal} {
			min := map[string]int{"first": 150, "last": 150, "streets": 60, "cities": 80, "trades": 30, "legal": 5}[what]
			if len(d) < min {
				t.Errorf("%s %s: %d entries, want at least %d", name, what, len(d), min)
			}
			for _, e := range d {
				if e != strings.TrimSpace(e) || strings.Contains(e, ",") || !utf8.ValidString(e) {
					t.Errorf("%s %s: bad entry %q", name, what, e)
				}
				if (what == "first" || what == "last" || what == "trades") && strings.Contains(e, " ") {
					t.Errorf("%s %s: %q has a space (the membership check splits on it)", name, what, e)
				}
			}
		}
		for _, d := range [][]string{loc.first, loc.last} {
			words := asciiList(d)
			if len(words) < len(d)-5 {
				t.Errorf("%s: transliteration merges too many names (%d of %d)", name, len(words), len(d))
			}
			for _, w := range words {
				if !regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`).MatchString(w) {
					t.Errorf("%s: %q is not a lower-case ASCII word", name, w)
				}
			}
		}
	}
	if got := asciiWord("Jürgen Weiß-Köhler"); got != "juergenweiss-koehler" {
		t.Errorf("transliteration: %q", got)
	}
}

// TestFakeDeterministicAndMember: equal inputs give equal fakes in every
// column of a domain (and across text types), different domains give
// different fakes, every fake is made of the dictionaries (or valid for
// its shape), and no fake equals its input.
func TestFakeDeterministicAndMember(t *testing.T) {
	ks := newTestKeyset(t)
	for _, spec := range fakeSpecs {
		t.Run(specName(spec), func(t *testing.T) {
			a, b := spec, spec
			a.Domain, b.Domain = "customers", "employees"
			ta1 := mustNew(t, a, ks, OIDVarchar, FormatText)
			ta2 := mustNew(t, a, ks, OIDText, FormatBinary)
			tb := mustNew(t, b, ks, OIDVarchar, FormatText)
			differ := 0
			const n = 300
			for i := range n {
				in := sampleInput(spec.Kind, i)
				o1, o2, o3 := string(apply(t, ta1, []byte(in))), string(apply(t, ta2, []byte(in))), string(apply(t, tb, []byte(in)))
				if o1 != o2 {
					t.Fatalf("same domain, different fakes: %q %q", o1, o2)
				}
				if o1 != o3 {
					differ++
				}
				if o1 == in {
					t.Fatalf("%q returned unchanged", in)
				}
				checkFakeMember(t, spec, in, o1)
			}
			if differ < n*9/10 {
				t.Fatalf("only %d of %d fakes differ between domains", differ, n)
			}
			if ta1.KeyVersion() != 1 {
				t.Fatalf("KeyVersion %d", ta1.KeyVersion())
			}
		})
	}
}

// TestFakeNeverItsInput: a real value that is itself a dictionary entry
// ("Anna", "Berlin", a drama number, a postcode) is never returned, nor
// contained in its fake, case folded.
func TestFakeNeverItsInput(t *testing.T) {
	ks := newTestKeyset(t)
	de, en := localeDE(), localeEN()
	inputs := map[Kind][]string{
		KindFirstName: append(slices.Clone(de.first), en.first...),
		KindLastName:  append(slices.Clone(de.last), en.last...),
		KindCity:      append(slices.Clone(de.cities), en.cities...),
		KindStreet:    {"Hauptstraße 12", "12 High Street", "Am Markt 1"},
		KindCompany:   {"Müller Bau GmbH", "Smith Logistics Ltd"},
		KindPhone:     {"+49 30 23125000", "030 23125123", "+44 20 7946 0000", "07700900123"},
		KindPostcode:  {"10115", "0", "7", "A", "SW1A 1AA"},
		KindEmail:     {"anna.schmidt@example.com", "Anna.Schmidt@Example.com"},
	}
	for _, n := range de.first[:40] {
		inputs[KindFullName] = append(inputs[KindFullName], n+" "+de.last[len(n)%len(de.last)], strings.ToUpper(n))
	}
	for _, spec := range fakeSpecs {
		spec.Domain = "d"
		tr := mustNew(t, spec, ks, OIDText, FormatText)
		for _, in := range inputs[spec.Kind] {
			for _, in := range []string{in, strings.ToLower(in), strings.ToUpper(in)} {
				out := string(apply(t, tr, []byte(in)))
				if out == in || utf8.RuneCountInString(in) >= fakeContainMin && spec.Kind != KindPhone &&
					strings.Contains(strings.ToLower(out), strings.ToLower(in)) {
					t.Fatalf("%s: %q → %q shows the input", specName(spec), in, out)
				}
			}
		}
	}
}

// TestFakeNoLeak: for a seeded set of realistic values, no fake contains
// its input, as stored or lower-cased.
func TestFakeNoLeak(t *testing.T) {
	ks := newTestKeyset(t)
	for _, spec := range fakeSpecs {
		spec.Domain = "leak"
		tr := mustNew(t, spec, ks, OIDText, FormatText)
		for i := range 2000 {
			in := sampleInput(spec.Kind, i)
			out := string(apply(t, tr, []byte(in)))
			if strings.Contains(out, in) || strings.Contains(strings.ToLower(out), strings.ToLower(in)) {
				t.Fatalf("%s: %q → %q", specName(spec), in, out)
			}
		}
	}
}

// TestFakeFitsColumn: outputs fit the sample shop's declared lengths,
// entries are never cut, and a column too narrow for any fake is refused.
func TestFakeFitsColumn(t *testing.T) {
	ks := newTestKeyset(t)
	fits := []Spec{
		{Kind: KindFirstName, MaxLen: 30}, {Kind: KindFirstName, MaxLen: 30, Unique: true},
		{Kind: KindLastName, MaxLen: 40, Unique: true}, {Kind: KindFullName, MaxLen: 80, Unique: true},
		{Kind: KindFullName, MaxLen: 14}, {Kind: KindStreet, MaxLen: 60}, {Kind: KindStreet, MaxLen: 12, Locale: LocaleEN},
		{Kind: KindCity, MaxLen: 40}, {Kind: KindCity, MaxLen: 5}, {Kind: KindCompany, MaxLen: 20},
		{Kind: KindPhone, MaxLen: 30}, {Kind: KindPhone, MaxLen: 17, Locale: LocaleEN},
		{Kind: KindEmail, Style: StyleName, MaxLen: 50}, {Kind: KindEmail, Style: StyleName, MaxLen: 33},
		{Kind: KindPostcode, MaxLen: 5},
	}
	plz := regexp.MustCompile(`^[0-9]{5}$`)
	for _, spec := range fits {
		spec.Domain = "d"
		for _, oid := range []uint32{OIDVarchar, OIDBPChar} {
			tr := mustNew(t, spec, ks, oid, FormatText)
			for i := range 3000 {
				in := sampleInput(spec.Kind, i)
				if spec.Kind == KindPostcode {
					in = fmt.Sprintf("%05d", i*37%100000)
				}
				out := string(apply(t, tr, []byte(in)))
				if utf8.RuneCountInString(out) > spec.MaxLen {
					t.Fatalf("%s: %q has %d characters", specName(spec), out, utf8.RuneCountInString(out))
				}
				checkFakeMember(t, spec, in, out)
				if spec.Kind == KindPostcode && !plz.MatchString(out) {
					t.Fatalf("postcode %q → %q fails the CHECK", in, out)
				}
			}
		}
	}
	for _, spec := range []Spec{
		{Kind: KindFirstName, MaxLen: 14, Unique: true}, {Kind: KindCity, MaxLen: 2}, {Kind: KindCompany, MaxLen: 8},
		{Kind: KindEmail, Style: StyleName, MaxLen: 32}, {Kind: KindPhone, MaxLen: 15},
	} {
		spec.Domain = "d"
		if _, err := New(spec, ks, OIDVarchar, FormatText); !errors.Is(err, ErrDoesNotFit) {
			t.Errorf("%s: %v, want ErrDoesNotFit", specName(spec), err)
		}
	}
}

// TestFakeUnique: with unique (and for fake addresses always), 200,000
// distinct inputs keep distinct outputs, also at a column's length.
func TestFakeUnique(t *testing.T) {
	ks := newTestKeyset(t)
	for _, spec := range []Spec{
		{Kind: KindFullName, Unique: true, MaxLen: 80}, {Kind: KindFirstName, Unique: true, MaxLen: 30},
		{Kind: KindEmail, Style: StyleName, MaxLen: 50},
	} {
		spec.Domain = "u"
		tr := mustNew(t, spec, ks, OIDVarchar, FormatText)
		seen := make(map[string]int, 200000)
		var buf []byte
		for i := range 200000 {
			out, err := tr.Transform(buf[:0], fmt.Appendf(nil, "customer-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			buf = out
			if j, dup := seen[string(out)]; dup {
				t.Fatalf("%s: inputs %d and %d share %q", specName(spec), j, i, out)
			}
			seen[string(out)] = i
		}
	}
}

// TestFakePhoneShape: numbers follow the input's international or
// national form and separator.
func TestFakePhoneShape(t *testing.T) {
	ks := newTestKeyset(t)
	tr := mustNew(t, Spec{Kind: KindPhone, Domain: "p"}, ks, OIDText, FormatText)
	for _, tc := range []struct{ in, shape string }{
		{"+49 151 2345678", `^\+49 (30|69|40|221|89) [0-9]{7,8}$`},
		{"+491512345678", `^\+49(30|69|40|221|89)[0-9]{7,8}$`},
		{"0049 30 1234567", `^0049 (30|69|40|221|89) [0-9]{7,8}$`},
		{"0151/2345678", `^0(30|69|40|221|89)/[0-9]{7,8}$`},
		{"030-1234567", `^0(30|69|40|221|89)-[0-9]{7,8}$`},
	} {
		out := string(apply(t, tr, []byte(tc.in)))
		if !regexp.MustCompile(tc.shape).MatchString(out) {
			t.Errorf("%q → %q, want shape %s", tc.in, out, tc.shape)
		}
	}
	// Every drama number validates, in every shape.
	for _, locale := range []string{LocaleDE, LocaleEN} {
		tr := mustNew(t, Spec{Kind: KindPhone, Domain: "p", Locale: locale}, ks, OIDText, FormatText)
		for i := range 3000 {
			in := sampleInput(KindPhone, i)
			checkFakeMember(t, Spec{Kind: KindPhone, Locale: locale}, in, string(apply(t, tr, []byte(in))))
		}
	}
}

// TestFakePostcode: the input's shape with keyed characters; values that
// are no postcode are withheld.
func TestFakePostcode(t *testing.T) {
	ks := newTestKeyset(t)
	tr := mustNew(t, Spec{Kind: KindPostcode, Domain: "plz"}, ks, OIDBPChar, FormatText)
	for _, in := range []string{"10115", "01067", "SW1A 1AA", "ec1a 1bb", "D-80331", "1010", "K1A 0B1", "7"} {
		out := string(apply(t, tr, []byte(in)))
		checkFakeMember(t, Spec{Kind: KindPostcode}, in, out)
		if out == in {
			t.Fatalf("%q unchanged", in)
		}
	}
	if out := apply(t, tr, []byte("10115   ")); len(out) != 5 {
		t.Fatalf("char padding kept: %q", out)
	}
	for _, in := range []string{"", "  ", "---", "Straße 1", "12345678901234567", "12\x003"} {
		out, err := tr.Transform([]byte("pre"), []byte(in))
		if !errors.Is(err, ErrUnchanged) || string(out) != "pre" {
			t.Errorf("%q: %q, %v; want withheld", in, out, err)
		}
	}
	// A keyed hash, not a permutation: the 5-digit domain is small, and
	// about 1/e of it is not hit.
	seen := map[string]bool{}
	for i := range 100000 {
		seen[string(apply(t, tr, fmt.Appendf(nil, "%05d", i)))] = true
	}
	if len(seen) > 70000 || len(seen) < 55000 {
		t.Fatalf("%d distinct outputs of 100,000 postcodes", len(seen))
	}
}

// TestFakeOptionsChecked: locale, unique and style only where they apply.
func TestFakeOptionsChecked(t *testing.T) {
	for _, spec := range []Spec{
		{Kind: KindToken, Locale: LocaleDE}, {Kind: KindFirstName, Locale: "fr"}, {Kind: KindPostcode, Locale: LocaleDE},
		{Kind: KindEmail, Locale: LocaleEN}, {Kind: KindToken, Unique: true}, {Kind: KindPhone, Unique: true},
		{Kind: KindPostcode, Unique: true}, {Kind: KindEmail, Style: StyleName, Unique: true}, {Kind: KindToken, Style: StyleName},
		{Kind: KindEmail, Style: "fancy"}, {Kind: KindEmail, Style: StyleName, KeepDomain: true}, {Kind: KindFirstName, Reversible: true},
	} {
		spec.Domain = "d"
		if err := ValidateSpec(spec); !errors.Is(err, ErrInvalidSpec) && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%+v: %v, want refused", spec, err)
		}
	}
	for _, spec := range fakeSpecs {
		spec.Domain = "d"
		if err := ValidateSpec(spec); err != nil {
			t.Errorf("%s: %v", specName(spec), err)
		}
	}
	for _, k := range []Kind{KindFirstName, KindPhone, KindPostcode} {
		if !Supports(k, OIDName, FormatBinary) || Supports(k, OIDInt4, FormatText) {
			t.Errorf("%s: wrong types", k)
		}
	}
}

// TestFakeSurvivesRotation: fakes carry no version, so they are made with
// the keyset's first version and a rotation does not change them.
func TestFakeSurvivesRotation(t *testing.T) {
	ks1 := newTestKeyset(t)
	ks2, err := ks1.Rotate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range fakeSpecs {
		spec.Domain = "r"
		if !spec.untagged() {
			t.Fatalf("%s is not untagged", specName(spec))
		}
		in := []byte(sampleInput(spec.Kind, 1))
		before := apply(t, mustNew(t, spec, ks1, OIDText, FormatText), in)
		tr := mustNew(t, spec, ks2, OIDText, FormatText)
		if after := apply(t, tr, in); string(after) != string(before) || tr.KeyVersion() != 1 {
			t.Fatalf("%s changed on rotation: %q → %q (version %d)", specName(spec), before, after, tr.KeyVersion())
		}
	}
}

// TestFakeAllocationFree: with room in dst, a fake allocates nothing.
func TestFakeAllocationFree(t *testing.T) {
	ks := newTestKeyset(t)
	for _, spec := range fakeSpecs {
		spec.Domain = "a"
		tr := mustNew(t, spec, ks, OIDText, FormatText)
		in := []byte(sampleInput(spec.Kind, 3))
		buf := make([]byte, 0, 256)
		if n := testing.AllocsPerRun(200, func() { _, _ = tr.Transform(buf, in) }); n != 0 {
			t.Errorf("%s: %.1f allocations per value", specName(spec), n)
		}
	}
}

// TestFakeNameType: a value of type name holds 63 bytes (PostgreSQL cuts
// longer input, which would merge unique fakes); the dictionaries' longest
// unique company is 63 bytes today, fitsColumn keeps longer ones out.
func TestFakeNameType(t *testing.T) {
	ks := newTestKeyset(t)
	tr := mustNew(t, Spec{Kind: KindCompany, Domain: "n", Unique: true}, ks, OIDName, FormatText)
	for i := range 5000 {
		if out := apply(t, tr, []byte(sampleInput(KindCompany, i))); len(out) > nameBytes {
			t.Fatalf("%q: %d bytes", out, len(out))
		}
	}
	long := []byte(strings.Repeat("ä", 32))
	if fitsColumn(long, OIDName, 0) || !fitsColumn(long, OIDText, 32) || fitsColumn(long, OIDVarchar, 31) {
		t.Fatal("fitsColumn")
	}
}
