package sqlinfo

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestNormalizedText(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT email FROM customers WHERE email = 'alice@example.com' AND id = 42",
			"SELECT email FROM customers WHERE email = $1 AND id = $2"},
		{"SELECT 1 /* alice@example.com */ -- bob\n, 2.5", "SELECT $1 , $2"},
		{"select  full_name\n\tfrom\tcustomers where full_name = $1", "select full_name from customers where full_name = $1"},
		{"SELECT $$Alice Example$$, E'O\\'Brien', U&'d\\0061t\\+000061', B'101', X'1F'", "SELECT $1, $2, $3, $4, $5"},
		{"SET application_name = 'alice'", "SET application_name = $1"},
		{"CREATE ROLE x PASSWORD 'secret-pw'", "CREATE ROLE x PASSWORD $1"},
		{"COPY (SELECT * FROM t WHERE n = 'Alice') TO STDOUT", "COPY (SELECT * FROM t WHERE n = $1) TO STDOUT"},
		{`SELECT "Full Name" AS "x" FROM "Kunden"`, `SELECT "Full Name" AS "x" FROM "Kunden"`},
		// Not parseable: the token pass still removes the constants.
		{"SELEC 'alice@example.com' FROM", "SELEC ? FROM"},
		{"SELECT 'unterminated", ""},
	}
	for _, tt := range tests {
		if got := NormalizedText(tt.sql); got != tt.want {
			t.Errorf("NormalizedText(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
	long := "SELECT " + strings.Repeat("a, ", MaxNormalizedText)
	if got := NormalizedText(long); len(got) > MaxNormalizedText+len(" …") || !strings.HasSuffix(got, " …") {
		t.Errorf("long text: %d bytes, suffix %q", len(got), got[len(got)-8:])
	}
}

// FuzzNormalizedTextHasNoLiteral: whatever the statement, its text has no
// constant token left.
func FuzzNormalizedTextHasNoLiteral(f *testing.F) {
	for _, s := range []string{"SELECT 'x'", "SET a = 'b'", "SELECT $q$y$q$", "VALUES (1e5)", "SELECT E'\\x41'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		got := NormalizedText(sql)
		scan, err := pg_query.Scan(got)
		if got == "" || err != nil {
			return
		}
		for _, tok := range scan.Tokens {
			switch tok.Token {
			case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
				pg_query.Token_ICONST, pg_query.Token_FCONST, pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
				t.Fatalf("%q → %q keeps %q", sql, got, got[tok.Start:tok.End])
			}
		}
	})
}
