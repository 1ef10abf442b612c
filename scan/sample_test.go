package scan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/policy"
)

func TestSampleQuery(t *testing.T) {
	tbl := Table{Name: policy.TableName{Schema: "My Schema", Table: `odd"name`}, Kind: 'r'}
	cols := []Column{text("email"), text(`We"ird`)}
	tests := []struct {
		percent float64
		want    string
	}{
		{0, `SELECT "email"::text, "We""ird"::text FROM "My Schema"."odd""name" LIMIT 1000`},
		{1.5, `SELECT "email"::text, "We""ird"::text FROM "My Schema"."odd""name" TABLESAMPLE SYSTEM (1.500000) LIMIT 1000`},
	}
	for _, tt := range tests {
		if got := sampleQuery(tbl, cols, 1000, tt.percent); got != tt.want {
			t.Errorf("sampleQuery(%v) =\n%s\nwant\n%s", tt.percent, got, tt.want)
		}
	}
}

func TestSamplePercent(t *testing.T) {
	tests := []struct {
		kind   byte
		tuples float64
		want   float64
	}{
		{'r', -1, 0},         // never analysed: LIMIT scan
		{'r', 3000, 0},       // small: LIMIT scan
		{'r', 1e6, 0.3},      // three times the rows asked for
		{'m', 1e8, 0.003},    // materialized views sample too
		{'p', 1e8, 0},        // partitioned: its estimate is its partitions'
		{'r', 4000.5, 74.99}, // just large enough
	}
	for _, tt := range tests {
		got := samplePercent(Table{Kind: tt.kind, RelTuples: tt.tuples}, 1000)
		if got < tt.want*0.999 || got > tt.want*1.001+1e-9 {
			t.Errorf("samplePercent(%c, %v) = %v, want %v", tt.kind, tt.tuples, got, tt.want)
		}
	}
}

func TestCandidates(t *testing.T) {
	tbl := Table{Columns: []Column{
		text("email"),
		{Name: "status", BaseOID: 90000, Category: 'E', Enum: true},
		{Name: "amount", BaseOID: 1700, Category: 'N'},
		{Name: "newsletter", BaseOID: 16, Category: 'B'},
		{Name: "born", BaseOID: oidDate, Category: 'D'},
		{Name: "postcode", TypeName: "plz_de", BaseOID: oidBPChar, Category: 'S'},
	}}
	var got []string
	for _, c := range candidates(tbl) {
		got = append(got, c.Name)
	}
	if want := "email born postcode"; strings.Join(got, " ") != want {
		t.Errorf("candidates: %q, want %q", strings.Join(got, " "), want)
	}
}

func TestSafeReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&pgconn.PgError{Code: "42501", Message: "permission denied for table accounts"}, "permission denied for table accounts (SQLSTATE 42501)"},
		{&pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, "canceling statement due to statement timeout (SQLSTATE 57014)"},
		{fmt.Errorf("sample x: %w", &pgconn.PgError{Code: "22P05", Message: `character with byte sequence 0xc3 0xa4 has no equivalent`}), "server error (SQLSTATE 22P05)"},
		{errors.New("conn closed"), "conn closed"},
	}
	for _, tt := range tests {
		if got := safeReason(tt.err); got != tt.want {
			t.Errorf("safeReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
