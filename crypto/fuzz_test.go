package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzKinds pairs each fuzzed transformer with its column.
var fuzzKinds = []struct {
	spec Spec
	oid  uint32
}{
	{Spec{Kind: KindToken, Domain: "d"}, OIDText},
	{Spec{Kind: KindToken, Domain: "d", Reversible: true}, OIDText},
	{Spec{Kind: KindEmail, Domain: "d", KeepDomain: true}, OIDText},
	{Spec{Kind: KindDigits, Domain: "d", KeepPrefix: 3}, OIDText},
	{Spec{Kind: KindIBAN, Domain: "d"}, OIDText},
	{Spec{Kind: KindCard, Domain: "d"}, OIDText},
	{Spec{Kind: KindMask, KeepFirst: 1, KeepLast: 1}, OIDBPChar},
	{Spec{Kind: KindInt, Domain: "d"}, OIDInt4},
	{Spec{Kind: KindInt, Domain: "d"}, OIDInt8},
	{Spec{Kind: KindUUID, Domain: "d"}, OIDUUID},
	{Spec{Kind: KindYear}, OIDDate},
	{Spec{Kind: KindMonth}, OIDTimestamp},
	{Spec{Kind: KindShift, Domain: "d", Days: 30}, OIDTimestampTZ},
	{Spec{Kind: KindShift, Domain: "d", Days: 30}, OIDDate},
	{Spec{Kind: KindRound, Digits: 1}, OIDNumeric},
	{Spec{Kind: KindRound, Bucket: "2.5"}, OIDNumeric},
	{Spec{Kind: KindRound, Digits: -1}, OIDInt8},
	{Spec{Kind: KindRound, Digits: 2}, OIDFloat8},
	{Spec{Kind: KindEmail, Domain: "d", Style: StyleName}, OIDText},
	{Spec{Kind: KindFullName, Domain: "d", Unique: true}, OIDText},
	{Spec{Kind: KindStreet, Domain: "d", Locale: LocaleEN}, OIDBPChar},
	{Spec{Kind: KindCompany, Domain: "d"}, OIDText},
	{Spec{Kind: KindPhone, Domain: "d"}, OIDText},
	{Spec{Kind: KindPostcode, Domain: "d"}, OIDBPChar},
}

// FuzzTransform feeds arbitrary bytes, in both formats, to every
// transformer: it must either return a valid value of the column's type
// or an ErrInvalidValue or ErrUnchanged error (never panic, never echo an invalid value).
func FuzzTransform(f *testing.F) {
	for _, s := range []string{"", "0", "-32768", "9223372036854775807", "2024-02-29", "2024-02-29 00:00:00+01",
		"4714-11-24 BC", "infinity", "DE89370400440532013000", "4111111111111111", "a@b.c", "Grüße 世界",
		"00000000-0000-0000-0000-000000000000", "-0.005", "NaN", "\x00\x00\x00\x00", "\x7f\xff\xff\xff\xff\xff\xff\xff"} {
		for i := range fuzzKinds {
			f.Add(uint8(i), false, []byte(s))
			f.Add(uint8(i), true, []byte(s))
		}
	}
	ks, err := NewKeyset(testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, bin bool, in []byte) {
		fk := fuzzKinds[int(which)%len(fuzzKinds)]
		format := FormatText
		if bin {
			format = FormatBinary
		}
		tr := mustNew(t, fk.spec, ks, fk.oid, format)
		out, err := tr.Transform(nil, in)
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnchanged) {
				t.Fatalf("%s: unexpected error %v", fk.spec.Kind, err)
			}
			return
		}
		checkValid(t, fk.spec.Kind, fk.oid, format, in, out)
		if r, ok := tr.(Reverser); ok && (fk.spec.Kind == KindInt || fk.spec.Kind == KindDigits || fk.spec.Reversible) {
			back, err := r.Reverse(nil, out)
			if err != nil {
				t.Fatalf("reverse: %v", err)
			}
			again, _ := tr.Transform(nil, back)
			if !bytes.Equal(again, out) {
				t.Fatalf("%s: reverse is not an inverse", fk.spec.Kind)
			}
		}
	})
}

// FuzzDetokenize: arbitrary token strings never panic and only yield
// the documented errors.
func FuzzDetokenize(f *testing.F) {
	for _, s := range []string{"", "tr1_1_", "tr1_1_aaaa", "tk1_1_abc", "tr1_99_abc", "tr1__x", "tr1_1_AAAA", "tr2_1_", "tr2_1_aaaa"} {
		f.Add(s)
	}
	ks, err := NewKeyset(testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		_, err := ks.Detokenize("d", []byte(tok))
		if err != nil && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNotReversible) && !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
