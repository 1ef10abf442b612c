package crypto

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitDeclaredLength(t *testing.T) {
	ks := newTestKeyset(t)
	full := apply(t, mustNew(t, Spec{Kind: KindToken, Domain: "d"}, ks, OIDVarchar, FormatText), []byte("Jürgen Müller"))
	cases := []struct {
		name    string
		spec    Spec
		oid     uint32
		in      string
		maxOut  int
		newErr  error // from New
		rowErr  error // from Transform
		checkFn func(t *testing.T, out string)
	}{
		{name: "token varchar(30)", spec: Spec{Kind: KindToken, Domain: "d", MaxLen: 30}, oid: OIDVarchar, in: "Jürgen Müller", maxOut: 30,
			checkFn: func(t *testing.T, out string) {
				if !strings.HasPrefix(string(full), out) || len(out) != 30 {
					t.Fatalf("%q is not the 30-character prefix of %q", out, full)
				}
			}},
		{name: "token char(20) minimum", spec: Spec{Kind: KindToken, Domain: "d", MaxLen: 19}, oid: OIDBPChar, in: "Anna   ", maxOut: 19},
		{name: "token too short", spec: Spec{Kind: KindToken, Domain: "d", MaxLen: 18}, oid: OIDVarchar, newErr: ErrDoesNotFit},
		{name: "reversible never fits", spec: Spec{Kind: KindToken, Domain: "d", Reversible: true, MaxLen: 200}, oid: OIDVarchar, newErr: ErrDoesNotFit},
		{name: "email varchar(50)", spec: Spec{Kind: KindEmail, Domain: "e", MaxLen: 50}, oid: OIDVarchar, in: "anna.mueller.17@example-mail.de", maxOut: 50,
			checkFn: func(t *testing.T, out string) {
				if strings.Count(out, "@") != 1 || !strings.HasSuffix(out, ".invalid") {
					t.Fatalf("not an address: %q", out)
				}
			}},
		{name: "email minimum", spec: Spec{Kind: KindEmail, Domain: "e", MaxLen: 32}, oid: OIDVarchar, in: "a@b.de", maxOut: 32},
		{name: "email too short", spec: Spec{Kind: KindEmail, Domain: "e", MaxLen: 31}, oid: OIDVarchar, newErr: ErrDoesNotFit},
		{name: "email kept domain too long", spec: Spec{Kind: KindEmail, Domain: "e", KeepDomain: true, MaxLen: 40}, oid: OIDVarchar,
			in: "anna@a-very-long-company-domain-name.example.org", rowErr: ErrInvalidValue},
		{name: "hash longer than the column", spec: Spec{Kind: KindHash, Domain: "h", MaxLen: 20}, oid: OIDVarchar, in: "x", rowErr: ErrInvalidValue},
		{name: "digits keep their length", spec: Spec{Kind: KindDigits, Domain: "p", MaxLen: 30}, oid: OIDVarchar, in: "+49 151 2345678", maxOut: 15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tc.spec, ks, tc.oid, FormatText)
			if tc.newErr != nil {
				if !errors.Is(err, tc.newErr) || !errors.Is(err, ErrUnsupported) {
					t.Fatalf("New: %v, want %v", err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := tr.Transform(nil, []byte(tc.in))
			if tc.rowErr != nil {
				if !errors.Is(err, tc.rowErr) || len(out) != 0 {
					t.Fatalf("Transform: %q, %v, want %v and nothing", out, err, tc.rowErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if utf8.RuneCount(out) > tc.maxOut || string(out) == tc.in {
				t.Fatalf("%q: longer than %d or unchanged", out, tc.maxOut)
			}
			if tc.checkFn != nil {
				tc.checkFn(t, string(out))
			}
		})
	}
}

// TestFitKeepsDistinct: shortened to their minimum, tokens of distinct
// inputs stay distinct (unique and foreign keys survive a restore).
func TestFitKeepsDistinct(t *testing.T) {
	ks := newTestKeyset(t)
	for _, spec := range []Spec{{Kind: KindToken, Domain: "d", MaxLen: 19}, {Kind: KindEmail, Domain: "e", MaxLen: 32}} {
		tr := mustNew(t, spec, ks, OIDVarchar, FormatText)
		seen := map[string]int{}
		for i := range 200000 {
			out := string(apply(t, tr, fmt.Appendf(nil, "person%d@example.org", i)))
			if j, dup := seen[out]; dup {
				t.Fatalf("%s: inputs %d and %d share %q", spec.Kind, j, i, out)
			}
			seen[out] = i
		}
	}
}
