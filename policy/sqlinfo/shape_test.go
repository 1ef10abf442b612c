package sqlinfo

import (
	"slices"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestShapeAndTemplate(t *testing.T) {
	for _, tc := range []struct {
		sql      string
		noShape  bool
		template string // "" : no template
		types    []uint32
		fixed    []bool
	}{
		{sql: "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;", template: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", types: []uint32{23}, fixed: []bool{false}},
		{sql: "SELECT a FROM t WHERE b IN ('x', E'y\\'', $$z$$) AND c > 1.5 AND d = 99999999999 AND e = B'101'",
			template: "SELECT a FROM t WHERE b IN ($1, $2, $3) AND c > $4 AND d = $5 AND e = $6", types: []uint32{0, 0, 0, 1700, 20, 1560}, fixed: make([]bool, 6)},
		// Positions where a constant is not a value stay.
		{sql: "SELECT a, b FROM t WHERE c = 3 ORDER BY 2 LIMIT 10", template: "SELECT a, b FROM t WHERE c = $1 ORDER BY 2 LIMIT $2", types: []uint32{23, 23}, fixed: []bool{false, true, false}},
		{sql: "SELECT a, count(*) FROM t GROUP BY 1", template: "", fixed: nil},
		{sql: "SELECT DISTINCT ON (1) a FROM t WHERE b = 'q'", template: "SELECT DISTINCT ON (1) a FROM t WHERE b = $1", types: []uint32{0}, fixed: []bool{true, false}},
		{sql: "SELECT 'x'::varchar(10) FROM t WHERE a = -5", template: "SELECT $1::varchar(10) FROM t WHERE a = -5", types: []uint32{0}, fixed: []bool{false, true, true}},
		{sql: "SELECT row_number() OVER (ORDER BY 1) FROM t WHERE a = 2", template: "SELECT row_number() OVER (ORDER BY 1) FROM t WHERE a = $1", types: []uint32{23}, fixed: []bool{true, false}},
		// A parameter written against a keyword would join it (red team
		// round 42): DISTINCT.5 must not become the name distinct$1.
		{sql: "SELECT DISTINCT.5 AS a, religion FROM customers", template: ""},
		{sql: "SELECT full_name FROM customers WHERE x = 'a' LIMIT.5", template: ""},
		{sql: "SELECT DATE '2024-01-01' FROM t WHERE a = 1", template: "SELECT DATE '2024-01-01' FROM t WHERE a = $1", types: []uint32{23}, fixed: []bool{true, false}}, // a type name's literal is not a value node
		{sql: "SELECT '2024-01-01'::date FROM t", template: "SELECT $1::date FROM t", types: []uint32{0}, fixed: []bool{false}},
		// Nothing to cut, parameters of its own, newer syntaxes.
		{sql: "SELECT a FROM t", noShape: true},
		{sql: "SELECT a FROM t WHERE b = $1 AND c = 2", noShape: true},
		{sql: "SELECT 0x1F, 1_000 FROM t", noShape: true},
		{sql: "SELECT U&'d\\0061t' FROM t", noShape: true},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			sh, ok := ShapeOf(tc.sql)
			if ok == tc.noShape {
				t.Fatalf("ShapeOf ok = %v", ok)
			}
			if !ok {
				return
			}
			tree, err := pg_query.Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			tm, ok := TemplateOf(tc.sql, tree, sh)
			if ok != (tc.template != "") {
				t.Fatalf("TemplateOf ok = %v (%q)", ok, tm.SQL)
			}
			if !ok {
				return
			}
			if tm.SQL != tc.template || !slices.Equal(tm.Types, tc.types) || !slices.Equal(tm.Fixed, tc.fixed) {
				t.Errorf("template %q %v %v, want %q %v %v", tm.SQL, tm.Types, tm.Fixed, tc.template, tc.types, tc.fixed)
			}
			if _, err := pg_query.Parse(tm.SQL); err != nil {
				t.Errorf("template does not parse: %v", err)
			}
		})
	}
}

// TestShapeKey: texts that differ only in cut constants share a key;
// anything else, including the kind of a constant, tells them apart, and
// fixed constants are compared.
func TestShapeKey(t *testing.T) {
	key := func(s string) string {
		sh, ok := ShapeOf(s)
		if !ok {
			t.Fatalf("no shape: %s", s)
		}
		return sh.Key
	}
	same := [][2]string{
		{"SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b = 123456"},
		{"SELECT a FROM t WHERE b = 'x'", "SELECT a FROM t WHERE b = 'it''s -- not a comment'"},
		{"SELECT a FROM t WHERE b = 'x' /* c */", "SELECT a FROM t WHERE b = $q$;DROP$q$ /* c */"},
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%q and %q have different keys", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b = 1.0"},
		{"SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b = '1'"},
		{"SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE c = 1"},
		{"SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b =  1"},
		{"SELECT a FROM t WHERE b = 1 AND c = 2", "SELECT a FROM t WHERE b = 0x1 AND c = 2"},
	}
	for _, p := range differ {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%q and %q share a key", p[0], p[1])
		}
	}
	src := "SELECT a, b FROM t WHERE c = 3 ORDER BY 2"
	sh, _ := ShapeOf(src)
	tree, _ := pg_query.Parse(src)
	tm, _ := TemplateOf(src, tree, sh)
	texts := FixedTexts(tm, src, sh)
	for other, want := range map[string]bool{
		"SELECT a, b FROM t WHERE c = 7 ORDER BY 2": true,
		"SELECT a, b FROM t WHERE c = 3 ORDER BY 1": false,
	} {
		osh, _ := ShapeOf(other)
		if osh.Key != sh.Key {
			t.Fatalf("%q: other key", other)
		}
		if got := SameFixedTexts(tm.Fixed, texts, other, osh); got != want {
			t.Errorf("SameFixedTexts(%q) = %v, want %v", other, got, want)
		}
	}
}

// TestFillRewrite: a template's rewrite gets each text's literals back,
// set apart so they cannot join a token, and a substitution the scanner
// would read otherwise is caught.
func TestFillRewrite(t *testing.T) {
	send := "SELECT q.c1 FROM (SELECT a FROM t WHERE b = $2 AND c = $1) q(c1) ORDER BY sha256('$1'::bytea)"
	f, ok := SplitParams(send, 2)
	if !ok {
		t.Fatal("SplitParams failed")
	}
	got, ok := f.Fill([]string{"7", "'it''s'"})
	want := "SELECT q.c1 FROM (SELECT a FROM t WHERE b =  'it''s'  AND c =  7 ) q(c1) ORDER BY sha256('$1'::bytea)"
	if !ok || got != want {
		t.Fatalf("Fill = %q, want %q", got, want)
	}
	if !FilledAsWritten(send, got) {
		t.Error("a correct fill is not read as written")
	}
	if _, ok := SplitParams("SELECT $3", 2); ok {
		t.Error("a parameter beyond the template's accepted")
	}
	if FilledAsWritten("SELECT a FROM t WHERE b = $1", "SELECT a FROM t WHERE b = 1 OR true") {
		t.Error("a fill that adds tokens is read as written")
	}
	if FilledAsWritten("SELECT a FROM t WHERE b = $1", "SELECT a FROM t WHERE b = c") {
		t.Error("a fill with a name for a literal is read as written")
	}
}
