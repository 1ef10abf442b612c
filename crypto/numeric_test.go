package crypto

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestNumericBinaryMatchesPgx checks our numeric codec against pgx's.
func TestNumericBinaryMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	r := rand.New(rand.NewPCG(5, 6))
	values := []string{"0", "0.000", "1", "-1", "10000", "0.0001", "123456789.987654321", "-0.5", "99990000", "1.10"}
	for range 500 {
		s := fmt.Sprintf("%d.%s", r.Int64N(1e12)-5e11, randDigits(r, r.IntN(12)))
		if s[len(s)-1] == '.' {
			s = s[:len(s)-1]
		}
		values = append(values, s)
	}
	for _, v := range values {
		var n pgtype.Numeric
		if err := n.Scan(v); err != nil {
			t.Fatal(err)
		}
		want, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendNumericBinary(nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		// pgx may differ in zero-group trimming but must decode to the same
		// value: compare through our decoder and pgx's decoder.
		var back pgtype.Numeric
		if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, got, &back); err != nil {
			t.Fatalf("%s: pgx cannot decode ours: %v", v, err)
		}
		txt, _, err := numericBinaryToText(nil, want)
		if err != nil {
			t.Fatal(err)
		}
		if string(txt) != canonicalDecimal(v) {
			t.Fatalf("decode pgx(%s) = %s", v, txt)
		}
		bv, _ := back.Value()
		a, _ := new(big.Rat).SetString(fmt.Sprint(bv))
		b, _ := new(big.Rat).SetString(v)
		if a == nil || a.Cmp(b) != 0 {
			t.Fatalf("pgx decode ours(%s) = %v", v, bv)
		}
	}
}

// canonicalDecimal is PostgreSQL's text for a decimal (no leading zeros).
func canonicalDecimal(s string) string {
	neg, i, f, _ := splitDecimal([]byte(s))
	out := string(i)
	if out == "" {
		out = "0"
	}
	if len(f) > 0 {
		out += "." + string(f)
	}
	zero := true
	for _, c := range out {
		if c != '0' && c != '.' {
			zero = false
		}
	}
	if neg && !zero {
		out = "-" + out
	}
	return out
}
