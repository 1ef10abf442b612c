package sqlinfo

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

const testKey = "00112233445566778899aabbccddeeff"

// byName hashes the named columns, keeping SELECT * (nil: the whole row).
func byName(cols []string) *Outputs {
	if cols == nil {
		return nil
	}
	return &Outputs{Names: cols, ByName: true}
}

func TestWithDigestOrder(t *testing.T) {
	tests := []struct {
		in, want string
		cols     []string
	}{
		{"SELECT email, count(*) FROM customers GROUP BY email",
			"SELECT * FROM (SELECT email, count(*) FROM customers GROUP BY email) pgpseudo_q ORDER BY pg_catalog.sha256(pg_catalog.convert_to(pgpseudo_q.*::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) E'\\\\x" + testKey + "'::pg_catalog.bytea)", nil},
		{"SELECT email, count(*) AS n FROM customers GROUP BY email ORDER BY n DESC LIMIT 10",
			"SELECT * FROM (SELECT email, count(*) AS n FROM customers GROUP BY email) pgpseudo_q ORDER BY n DESC, pg_catalog.sha256", nil},
		{"SELECT email, count(*) FROM customers GROUP BY email ORDER BY count(*) DESC LIMIT 3 OFFSET 1",
			") pgpseudo_q ORDER BY 2 DESC, pg_catalog.sha256", nil},
		{"SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, email",
			"SELECT * FROM (SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, email) pgpseudo_q ORDER BY pg_catalog.sha256", nil},
		{"SELECT email FROM customers UNION SELECT full_name FROM customers ORDER BY 1",
			"SELECT * FROM (SELECT email FROM customers UNION SELECT full_name FROM customers) pgpseudo_q ORDER BY 1, pg_catalog.sha256", nil},
		{"DECLARE c CURSOR FOR SELECT DISTINCT email FROM customers",
			"DECLARE c CURSOR FOR SELECT * FROM (SELECT DISTINCT email FROM customers) pgpseudo_q ORDER BY", nil},
		// A withheld column stays out of the digest.
		{"SELECT email, religion, \"Odd\"\"name\" FROM customers",
			"ORDER BY pg_catalog.sha256(pg_catalog.convert_to(ROW(pgpseudo_q.email, pgpseudo_q.\"Odd\"\"name\")::pg_catalog.text", []string{"email", "Odd\"name"}},
		// COPY of a table becomes COPY of the same columns of that table
		// only, ordered.
		{"COPY public.customers (customer_id, email) TO STDOUT",
			"COPY (SELECT * FROM (SELECT customer_id, email FROM ONLY public.customers) pgpseudo_q ORDER BY pg_catalog.sha256", nil},
		{"COPY customers TO STDOUT WITH (FORMAT csv)",
			"COPY (SELECT * FROM (SELECT * FROM ONLY customers) pgpseudo_q ORDER BY", nil},
	}
	for _, tt := range tests {
		got, err := WithDigestOrderOf(tt.in, []bool{true}, []*Outputs{byName(tt.cols)}, nil, testKey)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if strings.Contains(tt.in, "LIMIT") && !strings.Contains(got, "LIMIT") {
			t.Errorf("%s: LIMIT lost: %s", tt.in, got)
		}
	}
	if _, err := WithDigestOrderOf("SELECT 1", []bool{true}, nil, nil, "not-hex"); err == nil {
		t.Error("a key that is not hex was accepted")
	}
	multi, err := WithDigestOrderOf("SET x = 1; SELECT DISTINCT email FROM customers", []bool{false, true}, nil, nil, testKey)
	if err != nil || !strings.HasPrefix(multi, "SET x TO 1; SELECT * FROM (") {
		t.Errorf("multi: %q %v", multi, err)
	}
}

func TestKeepsOrder(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT email FROM customers":                                 true,
		"SELECT email FROM customers LIMIT 5":                         true,
		"SELECT email, city FROM customers ORDER BY city":             true,
		"SELECT email FROM customers ORDER BY city":                   false, // a key that is not an output
		"SELECT * FROM customers ORDER BY city":                       false,
		"SELECT DISTINCT ON (city) city, email FROM customers":        true,
		"SELECT DISTINCT ON (city) city FROM customers ORDER BY city": false,
		"COPY customers TO STDOUT":                                    true,
		"COPY (SELECT email FROM customers ORDER BY city) TO STDOUT":  false,
		"DECLARE c CURSOR FOR SELECT email FROM customers":            true,
		"EXPLAIN SELECT email FROM customers":                         false,
		"SHOW search_path":                                            false,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := KeepsOrder(tree.GetStmts()[0], tree.GetVersion()); got != want {
			t.Errorf("KeepsOrder(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestWithDigestOrderOf: with the outputs known, every column is named by
// position, withheld ones stay out of the digest, and sort keys that are
// not outputs move out as hidden columns, so the client's order is kept.
func TestWithDigestOrderOf(t *testing.T) {
	tests := []struct {
		in    string
		names []string
		hash  []bool
		want  []string
	}{
		{"SELECT email, religion FROM customers ORDER BY created_at LIMIT 5", []string{"email", "religion"}, []bool{true, false}, []string{
			`SELECT pgpseudo_q.c1 AS email, pgpseudo_q.c2 AS religion FROM (SELECT email, religion, created_at AS pgpseudo_q_k1 FROM customers) pgpseudo_q(c1, c2, k1) ORDER BY pgpseudo_q.k1, pg_catalog.sha256(pg_catalog.convert_to(ROW('email'::pg_catalog.text, pgpseudo_q.c1)::pg_catalog.text`,
			`LIMIT 5`}},
		{"SELECT religion, postal_code AS religion FROM customers", []string{"religion", "religion"}, []bool{false, true}, []string{
			`SELECT pgpseudo_q.c1 AS religion, pgpseudo_q.c2 AS religion FROM (SELECT religion, postal_code AS religion FROM customers) pgpseudo_q(c1, c2) ORDER BY pg_catalog.sha256(pg_catalog.convert_to(ROW(''::pg_catalog.text, pgpseudo_q.c2)`}},
		{"SELECT * FROM customers ORDER BY 2 DESC, created_at", []string{"a", "b"}, []bool{true, true}, []string{
			`FROM (SELECT *, created_at AS pgpseudo_q_k1 FROM customers) pgpseudo_q(c1, c2, k1) ORDER BY pgpseudo_q.c2 DESC, pgpseudo_q.k1, pg_catalog.sha256`}},
		{"SELECT city, count(*) FROM customers GROUP BY city ORDER BY count(*) DESC", []string{"city", "count"}, []bool{true, true}, []string{
			`ORDER BY pgpseudo_q.c2 DESC, pg_catalog.sha256`}},
		{"SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, created_at LIMIT 3", []string{"city", "email"}, []bool{true, true}, []string{
			`FROM (SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, created_at LIMIT 3) pgpseudo_q(c1, c2) ORDER BY pgpseudo_q.c1, pg_catalog.sha256`}},
		{"SELECT \"?column?\" FROM (SELECT 1) s ORDER BY null::text", []string{"?column?"}, []bool{true}, []string{
			`SELECT pgpseudo_q.c1 AS "?column?" FROM (SELECT "?column?", NULL::text AS pgpseudo_q_k1`}},
	}
	for _, tt := range tests {
		tags := make([]string, len(tt.names))
		tags[0] = "email"
		got, err := WithDigestOrderOf(tt.in, []bool{true}, []*Outputs{{Names: tt.names, Hash: tt.hash, Tags: tags}}, nil, testKey)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s:\n got %s\nwant %s", tt.in, got, w)
			}
		}
		if _, err := pg_query.Parse(got); err != nil {
			t.Errorf("%s: the wrapper does not parse: %v", got, err)
		}
	}
	for _, tt := range []struct {
		in       string
		sortTags []string
		want     string
	}{
		{"SELECT email, city FROM customers ORDER BY email LIMIT 2", []string{"email"},
			`ORDER BY pgpseudo_q.c1 IS NULL, pg_catalog.sha256(pg_catalog.convert_to(ROW('email'::pg_catalog.text, pgpseudo_q.c1)::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) E'\\x` + testKey + `'::pg_catalog.bytea), pg_catalog.sha256`},
		{"SELECT email, city FROM customers ORDER BY city, 1 DESC", []string{"", "email"},
			`ORDER BY pgpseudo_q.c2, pgpseudo_q.c1 IS NULL DESC, pg_catalog.sha256(pg_catalog.convert_to(ROW('email'::pg_catalog.text, pgpseudo_q.c1)::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) E'\\x` + testKey + `'::pg_catalog.bytea) DESC, pg_catalog.sha256`},
		{"SELECT email, city FROM customers ORDER BY phone DESC NULLS LAST", []string{"contact"},
			`FROM (SELECT email, city, phone AS pgpseudo_q_k1 FROM customers) pgpseudo_q(c1, c2, k1) ORDER BY pgpseudo_q.k1 IS NULL, pg_catalog.sha256(pg_catalog.convert_to(ROW('contact'::pg_catalog.text, pgpseudo_q.k1)`},
	} {
		got, err := WithDigestOrderOf(tt.in, []bool{true}, []*Outputs{{Names: []string{"email", "city"}, Hash: []bool{true, true}, Tags: []string{"email", ""}, SortTags: tt.sortTags}}, nil, testKey)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: a pseudonymised sort key is not sorted by its digest:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{
		"SELECT DISTINCT city FROM customers ORDER BY created_at",
		"SELECT email FROM customers UNION SELECT city FROM customers ORDER BY length(email)",
	} {
		if got, err := WithDigestOrderOf(bad, []bool{true}, []*Outputs{{Names: []string{"x", "y"}[:1], Hash: []bool{true}, Tags: []string{""}}}, nil, testKey); err == nil {
			t.Errorf("%s: wrapped as %s", bad, got)
		}
	}
}
