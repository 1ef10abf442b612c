package crypto

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// randSpec draws a spec of kind k with options from the ranges ValidateSpec
// accepts (and some it refuses, which are skipped).
func randSpec(r *rand.Rand, k Kind) Spec {
	s := Spec{Kind: k, Domain: fmt.Sprintf("d%d", r.IntN(3))}
	switch k {
	case KindToken:
		s.Reversible = r.IntN(2) == 0
	case KindEmail:
		s.KeepDomain = r.IntN(2) == 0
		if !s.KeepDomain && r.IntN(2) == 0 {
			s.Style = StyleName
		}
	case KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany:
		s.Locale = []string{"", LocaleDE, LocaleEN}[r.IntN(3)]
		s.Unique = r.IntN(2) == 0
	case KindPhone:
		s.Locale = []string{"", LocaleDE, LocaleEN}[r.IntN(3)]
	case KindDigits, KindIBAN, KindCard:
		s.KeepPrefix = r.IntN(10)
	case KindShift:
		s.Days = 1 + r.IntN(36500)
		s.KeepTime = r.IntN(2) == 0
	case KindRound:
		if r.IntN(2) == 0 {
			s.Bucket = []string{"0.5", "2", "10", "1e3", "0.001", "1", "1e-300", "1e300", "7", "0.25"}[r.IntN(10)]
		} else {
			s.Digits = r.IntN(2002) - 1001 // the loader accepts [-1000, 1000]
			if r.IntN(2) == 0 {
				s.Digits = r.IntN(40) - 20
			}
		}
	case KindMask:
		s.KeepFirst, s.KeepLast = r.IntN(20), r.IntN(20)
	case KindRedact:
		s.Constant = []string{"", "n/a"}[r.IntN(2)]
	}
	return s
}

// onGrid reports whether a generalising transform may legitimately return
// its input: the input already was a point of its output grid (a year's or
// month's first day — what year and month always output —, a multiple of
// round's precision, redact's constant).
func onGrid(spec Spec, oid uint32, format int16, in []byte) bool {
	switch spec.Kind {
	case KindYear, KindMonth:
		return true
	case KindRedact:
		c, err := encodeConstant(cmp.Or(spec.Constant, defaultConstant(oid)), oid, format == FormatBinary)
		return err == nil && bytes.Equal(c, in)
	case KindRound:
		x, ok := ratOf(oid, format, in)
		if !ok {
			return false
		}
		step := new(big.Rat)
		if spec.Bucket != "" {
			step.SetString(spec.Bucket)
		} else {
			step.SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(spec.Digits, 0))), nil))
			if spec.Digits < 0 {
				step.SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-spec.Digits)), nil))
			}
		}
		q := new(big.Rat).Quo(x, step)
		if q.IsInt() {
			return true
		}
		if oid != OIDFloat4 && oid != OIDFloat8 {
			return false
		}
		// A float is on the grid when it is the float nearest to a grid
		// point (most multiples of 0.1 or 10^10 are not representable).
		qf, _ := q.Float64()
		if spec.Bucket != "" {
			qf = math.Floor(qf)
		} else {
			qf = math.Round(qf)
		}
		// Float arithmetic may land one unit in the last place away.
		g, _ := new(big.Rat).Mul(new(big.Rat).SetFloat64(qf), step).Float64()
		xf, _ := x.Float64()
		if oid == OIDFloat4 {
			g32, x32 := float32(g), float32(xf)
			return g32 == x32 || math.Nextafter32(g32, float32(math.Inf(1))) == x32 || math.Nextafter32(g32, float32(math.Inf(-1))) == x32
		}
		return g == xf || math.Nextafter(g, math.Inf(1)) == xf || math.Nextafter(g, math.Inf(-1)) == xf
	}
	return false
}

// ratOf reads a number of a round column exactly.
func ratOf(oid uint32, format int16, in []byte) (*big.Rat, bool) {
	bin := format == FormatBinary
	switch oid {
	case OIDInt2, OIDInt4, OIDInt8:
		v, err := parseInt(in, intBits(oid), bin)
		return new(big.Rat).SetInt64(v), err == nil
	case OIDFloat4, OIDFloat8:
		var f float64
		switch {
		case !bin:
			var err error
			if f, err = strconv.ParseFloat(string(in), 64); err != nil {
				return nil, false
			}
		case len(in) == 4:
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(in)))
		case len(in) == 8:
			f = math.Float64frombits(binary.BigEndian.Uint64(in))
		default:
			return nil, false
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(f), true
	}
	text := in
	if bin {
		var special bool
		var err error
		if text, special, err = numericBinaryToText(nil, in); err != nil || special {
			return nil, false
		}
	}
	return new(big.Rat).SetString(string(text))
}

// TestPropertyNeverClear: for every kind, random specs the loader accepts
// and random inputs of every supported type and format, a transform either
// withholds the value (ErrInvalidValue, ErrUnchanged; nothing written) or
// returns something other than its input (generalisations may return a
// value that already was on their grid, the documented constants stay);
// opaque, reversible and masked outputs reveal the length only to the
// documented bucket; injective kinds give distinct outputs for distinct
// inputs.
func TestPropertyNeverClear(t *testing.T) {
	ks := newTestKeyset(t)
	r := rand.New(rand.NewPCG(2026, 12))
	for _, k := range Kinds() {
		if k == KindNull {
			continue
		}
		tried := 0
		for range 40 {
			spec := randSpec(r, k)
			if ValidateSpec(spec) != nil {
				continue
			}
			for _, oid := range support(k) {
				for _, format := range []int16{FormatText, FormatBinary} {
					tr, err := New(spec, ks, oid, format)
					if err != nil {
						continue // refused for this type (e.g. round digits >= 0 on integers)
					}
					tried++
					seen := map[string]string{}
					for range 60 {
						in := genValue(r, k, oid, format == FormatBinary)
						out, err := tr.Transform([]byte("pre"), in)
						if err != nil {
							if !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnchanged) || string(out) != "pre" {
								t.Fatalf("%+v oid %d: %q → %q, %v", spec, oid, in, out, err)
							}
							continue
						}
						out = out[3:]
						if bytes.Equal(out, in) && !special(in, oid, format) && !onGrid(spec, oid, format, in) {
							t.Fatalf("%+v oid %d format %d: %q returned unchanged", spec, oid, format, in)
						}
						checkLength(t, spec, oid, format, in, out)
						if k.Injective() && (k != KindEmail || !spec.KeepDomain) {
							if prev, dup := seen[string(out)]; dup && prev != string(in) {
								t.Fatalf("%+v oid %d: %q and %q share output %.60q", spec, oid, prev, in, out)
							}
							seen[string(out)] = string(in)
						}
					}
				}
			}
		}
		if tried == 0 {
			t.Errorf("%s: no accepted spec was exercised", k)
		}
	}
}

// special values are constants of their type that every transform keeps
// (±infinity, NaN).
func special(in []byte, oid uint32, format int16) bool {
	if format == FormatBinary {
		switch oid {
		case OIDDate, OIDTimestamp, OIDTimestampTZ:
			_, inf, err := readBinaryTime(in, oid == OIDDate)
			return err == nil && inf != 0
		case OIDFloat4:
			f := float64(math.Float32frombits(binary.BigEndian.Uint32(append(in, 0, 0, 0, 0))))
			return len(in) == 4 && (math.IsInf(f, 0) || math.IsNaN(f))
		case OIDFloat8:
			f := math.Float64frombits(binary.BigEndian.Uint64(append(in, 0, 0, 0, 0, 0, 0, 0, 0)))
			return len(in) == 8 && (math.IsInf(f, 0) || math.IsNaN(f))
		case OIDNumeric:
			_, sp, err := numericBinaryToText(nil, in)
			return err == nil && sp
		}
	}
	switch string(in) {
	case "infinity", "-infinity", "NaN", "Infinity", "-Infinity":
		return true
	}
	return false
}

// checkLength asserts what an output's length may reveal (docs/keys.md).
func checkLength(t *testing.T, spec Spec, oid uint32, format int16, in, out []byte) {
	t.Helper()
	switch {
	case spec.Kind == KindToken && !spec.Reversible, spec.Kind == KindHash:
		want := map[Kind]int{KindToken: len("tk1_1_") + 26, KindHash: 64}[spec.Kind]
		if len(out) != want {
			t.Fatalf("%s: %d characters, want %d", spec.Kind, len(out), want)
		}
	case spec.Kind == KindToken:
		n := minPadded
		for n < len(trimPad(oid, in))+1 {
			n *= 2
		}
		if want := len("tr2_1_") + (n+16)*8/5 + boolInt((n+16)*8%5 != 0); len(out) != want {
			t.Fatalf("reversible token of %d bytes: %d characters, want %d (bucket %d)", len(in), len(out), want, n)
		}
	case spec.Kind == KindMask:
		if want := spec.KeepFirst + spec.KeepLast + maskRun; len([]rune(string(out))) != want && format == FormatText {
			t.Fatalf("mask of %q: %q, want %d characters", in, out, want)
		}
		if shown := len([]rune(strings.ReplaceAll(string(out), "*", ""))); shown > len([]rune(string(trimPad(oid, in))))/maskShare {
			t.Fatalf("mask of %q shows %d characters: %q", in, shown, out)
		}
	case spec.Kind == KindEmail && !spec.KeepDomain && spec.Style == "":
		if want := len("tk1_1_") + 26 + 1 + 16 + len(emailTLD); len(out) != want {
			t.Fatalf("email: %d characters, want %d", len(out), want)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReviewFindings: each value the token-hardening review found leaving
// in clear, or colliding, now is withheld or distinct.
func TestReviewFindings(t *testing.T) {
	ks := newTestKeyset(t)
	withheld := []struct {
		name string
		spec Spec
		oid  uint32
		in   string
	}{
		{"card keep_prefix leaving only the check digit", Spec{Kind: KindCard, Domain: "d", KeepPrefix: 6}, OIDText, "4111111"},
		{"digits with fewer than six to encrypt", Spec{Kind: KindDigits, Domain: "d", KeepPrefix: 3}, OIDText, "112"},
		{"postcode letters and few digits", Spec{Kind: KindDigits, Domain: "d"}, OIDText, "SW1A 1AA"},
		{"one digit", Spec{Kind: KindDigits, Domain: "d"}, OIDText, "7"},
		{"card with a wrong check digit", Spec{Kind: KindCard, Domain: "d"}, OIDText, "4111111111111112"},
		{"IBAN with wrong check digits", Spec{Kind: KindIBAN, Domain: "d"}, OIDText, "DE00370400440532013000"},
		{"float too large for the digits", Spec{Kind: KindRound, Digits: 3}, OIDFloat8, "1.23e306"},
		{"float too large for the bucket", Spec{Kind: KindRound, Bucket: "0.001"}, OIDFloat8, "1.23e306"},
		{"float with no fraction left at the digits", Spec{Kind: KindRound, Digits: 3}, OIDFloat8, "1.23e300"},
		{"float with no fraction left at the bucket", Spec{Kind: KindRound, Bucket: "1e-300"}, OIDFloat8, "1.2345"},
		{"float4 with no fraction left", Spec{Kind: KindRound, Digits: 6}, OIDFloat4, "123456789"},
		{"IBAN with check digits 99 (same remainder as 02)", Spec{Kind: KindIBAN, Domain: "d"}, OIDText, "DE99370400440532013014"},
		{"not an IBAN", Spec{Kind: KindIBAN, Domain: "d"}, OIDText, "Konto 1234567890"},
		{"letters in a digit string", Spec{Kind: KindDigits, Domain: "d"}, OIDText, "Hauptstrasse 123456"},
		{"non-ASCII in a digit string", Spec{Kind: KindDigits, Domain: "d"}, OIDText, "Straße 1234567"},
		{"a value already in the mask's shape", Spec{Kind: KindMask}, OIDText, "******"},
		{"a value already in the mask's shape, with ends", Spec{Kind: KindMask, KeepLast: 3}, OIDText, "******xyz"},
	}
	for _, tc := range withheld {
		out, err := mustNew(t, tc.spec, ks, tc.oid, FormatText).Transform(nil, []byte(tc.in))
		if !errors.Is(err, ErrUnchanged) || len(out) != 0 {
			t.Errorf("%s: %q → %q, %v; want withheld", tc.name, tc.in, out, err)
		}
	}
	refused := []struct {
		name string
		spec Spec
		oid  uint32
	}{
		{"round on an integer without digits or bucket", Spec{Kind: KindRound}, OIDInt4},
		{"round on an integer with bucket 1", Spec{Kind: KindRound, Bucket: "1"}, OIDInt8},
		{"float bucket beyond float range", Spec{Kind: KindRound, Bucket: "1e400"}, OIDFloat8},
		{"float digits beyond 10^308", Spec{Kind: KindRound, Digits: 400}, OIDFloat8},
		{"float8 digits beyond its precision", Spec{Kind: KindRound, Digits: 16}, OIDFloat8},
		{"float4 digits beyond its precision", Spec{Kind: KindRound, Digits: 7}, OIDFloat4},
		{"iban keep_prefix 5 (Dutch BBANs have 10 digits)", Spec{Kind: KindIBAN, Domain: "d", KeepPrefix: 5}, OIDText},
		{"card keep_prefix 15", Spec{Kind: KindCard, Domain: "d", KeepPrefix: 15}, OIDText},
		{"digits keep_prefix 9", Spec{Kind: KindDigits, Domain: "d", KeepPrefix: 9}, OIDText},
		{"int on smallint", Spec{Kind: KindInt, Domain: "d"}, OIDInt2},
	}
	for _, tc := range refused {
		if _, err := New(tc.spec, ks, tc.oid, FormatText); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// DE02… and DE99… both pass mod 97; only 02 is a check digit ISO 13616
	// issues, so only it gets a token.
	ib := mustNew(t, Spec{Kind: KindIBAN, Domain: "d"}, ks, OIDText, FormatText)
	if out, err := ib.Transform(nil, []byte("DE02370400440532013014")); err != nil || len(out) == 0 {
		t.Errorf("DE02…: %q %v", out, err)
	}
	// Round with digits -400 on a float is zero, not the clear value.
	if out := apply(t, mustNew(t, Spec{Kind: KindRound, Digits: -400}, ks, OIDFloat8, FormatText), []byte("1.23e306")); string(out) != "0" {
		t.Errorf("digits -400: %q", out)
	}
	// E-mails that differ in case or spaces stay distinct.
	em := mustNew(t, Spec{Kind: KindEmail, Domain: "d"}, ks, OIDText, FormatText)
	a, b, c := apply(t, em, []byte("Anna@example.com")), apply(t, em, []byte("anna@example.com")), apply(t, em, []byte(" anna@example.com"))
	if bytes.Equal(a, b) || bytes.Equal(b, c) {
		t.Errorf("e-mails differing in case or spaces share a token: %s %s %s", a, b, c)
	}
	// Reversible tokens of 2, 4 and 10 bytes are equally long.
	rt := mustNew(t, Spec{Kind: KindToken, Domain: "d", Reversible: true}, ks, OIDText, FormatText)
	if l2, l10 := len(apply(t, rt, []byte("ab"))), len(apply(t, rt, []byte("abcdefghij"))); l2 != l10 {
		t.Errorf("reversible token lengths %d and %d reveal the clear length", l2, l10)
	}
	// The mask of a postcode shows at most one character and not its length.
	mk := mustNew(t, Spec{Kind: KindMask, KeepLast: 4}, ks, OIDText, FormatText)
	if p, l := apply(t, mk, []byte("10115")), apply(t, mk, []byte("DE89370400440532013000")); string(p) != "*********5" || len(l) != len(p) {
		t.Errorf("mask: %q %q", p, l)
	}
	// Shift: one day shifts alike in every date column of a domain, and the
	// time of day is dropped unless kept.
	sd := mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30}, ks, OIDDate, FormatText)
	st := mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30}, ks, OIDTimestamp, FormatText)
	stz := mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30}, ks, OIDTimestampTZ, FormatText)
	d := string(apply(t, sd, []byte("1990-05-17")))
	if ts := string(apply(t, st, []byte("1990-05-17 13:45:12.5"))); ts != d+" 00:00:00" {
		t.Errorf("shift: date %s, timestamp %s", d, ts)
	}
	if ts := string(apply(t, stz, []byte("1990-05-18 01:45:12+02"))); ts != d+" 00:00:00+00" {
		t.Errorf("shift: date %s, timestamptz (UTC day) %s", d, ts)
	}
	// A rotation does not move the days again (exports from before and
	// after it would intersect); a pinned version is honoured.
	rotated, err := ks.Rotate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	if again := string(apply(t, mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30}, rotated, OIDDate, FormatText), []byte("1990-05-17"))); again != d {
		t.Errorf("shift after a rotation: %s, before %s", again, d)
	}
	if pinned := mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30, KeyVersion: 2}, rotated, OIDDate, FormatText); pinned.KeyVersion() != 2 {
		t.Errorf("pinned shift version %d", pinned.KeyVersion())
	}
	kt := mustNew(t, Spec{Kind: KindShift, Domain: "d", Days: 30, KeepTime: true}, ks, OIDTimestampTZ, FormatText)
	if ts := string(apply(t, kt, []byte("1990-05-18 01:45:12.25+02"))); ts != d+" 23:45:12.25+00" {
		t.Errorf("shift keep_time: %s", ts)
	}
}

// TestLegacyReversibleTokens: unpadded tr1 tokens of earlier releases
// still detokenize.
func TestLegacyReversibleTokens(t *testing.T) {
	ks := newTestKeyset(t)
	siv, err := ks.sivFor(1, "d")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := siv.EncryptDeterministically([]byte("Jane Doe"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := ks.Detokenize("d", []byte(legacyRevPrefix+"1_"+tokenAlphabet.EncodeToString(ct)))
	if err != nil || string(pt) != "Jane Doe" {
		t.Fatalf("legacy token: %q, %v", pt, err)
	}
}

// TestKeepDomainOnlyKeepsHostNames: keep_domain keeps what follows the @
// only when it is a host name; anything else (a name, spaces, a second
// address) is tokenized like the local part.
func TestKeepDomainOnlyKeepsHostNames(t *testing.T) {
	ks, err := NewKeyset(testNow)
	if err != nil {
		t.Fatal(err)
	}
	tr := mustNew(t, Spec{Kind: KindEmail, Domain: "d", KeepDomain: true}, ks, OIDText, FormatText)
	for _, tc := range []struct {
		in   string
		keep bool
	}{
		{"anna@example.com", true},
		{"anna@Mail.Example-Shop.de", true},
		{"anna@localhost", false},
		{"anna@xn--mnchen-3ya.de", true},
		{"x@4915112345678", false},
		{"x@DE89370400440532013000", false},
		{"x@10.0.0.1", false},
		{"Anna Becker@Hamburg Altona", false},
		{"@0 0", false},
		{"anna@exa_mple.com", false},
		{"anna@-bad.example", false},
		{"anna@example..com", false},
		{"anna@münchen.de", false},
		{"anna@", false},
	} {
		out, err := tr.Transform(nil, []byte(tc.in))
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		dom := tc.in[strings.LastIndexByte(tc.in, '@')+1:]
		kept := strings.HasSuffix(string(out), "@"+dom) && dom != ""
		if kept != tc.keep || !tc.keep && !strings.HasSuffix(string(out), ".invalid") {
			t.Errorf("%q → %q: domain kept %v, want %v", tc.in, out, kept, tc.keep)
		}
	}
}
