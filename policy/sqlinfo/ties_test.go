package sqlinfo

import (
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TestTieSites: which queries of a statement decide among ties, and which
// of them the digest cannot break.
func TestTieSites(t *testing.T) {
	for _, tt := range []struct {
		sql   string
		want  string // per site: L (limit), D (DISTINCT ON), W (windows), ! (unbreakable), at its Select index
		calls int
	}{
		{"SELECT a FROM t LIMIT 3", "", 0},
		{"SELECT (SELECT a FROM t ORDER BY b LIMIT 1)", "1:L", 0},
		{"SELECT DISTINCT ON (a) a, b FROM t", "0:D", 0},
		{"SELECT a, row_number() OVER (ORDER BY b), rank() OVER (ORDER BY b) FROM t", "0:W", 1},
		{"SELECT sum(a) OVER (ROWS 1 PRECEDING), sum(a) OVER (GROUPS 1 PRECEDING) FROM t", "0:W", 1},
		{"SELECT row_number() OVER w FROM t WINDOW w AS (ORDER BY a)", "0:W!", 1},
		{"SELECT * FROM t, LATERAL (SELECT * FROM u LIMIT 1) x", "1:L!", 0},
		{"SELECT * FROM t WHERE a IN ((SELECT a FROM u) UNION (SELECT a FROM v) LIMIT 1)", "1:L!", 0},
		{"SELECT * FROM t WHERE a IN (SELECT DISTINCT a FROM u LIMIT 1)", "1:L!", 0},
	} {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		calls := 0
		for _, s := range TieSites(tree.GetStmts()[0].GetStmt()) {
			g := strconv.Itoa(s.Select) + ":"
			if s.Limit {
				g += "L"
			}
			if s.DistinctOn {
				g += "D"
			}
			if len(s.Windows) > 0 {
				g += "W"
			}
			if s.Unbreakable != "" {
				g += "!"
			}
			calls += len(s.Calls)
			got = append(got, g)
		}
		if g := strings.Join(got, " "); g != tt.want || calls != tt.calls {
			t.Errorf("%s: sites %q (%d calls), want %q (%d)", tt.sql, g, calls, tt.want, tt.calls)
		}
	}
}

// TestBreakTies: the digest of the hashed select list entries (and a
// window function's arguments) becomes the last key of each ordering
// that decides among ties; the client's own ORDER BY of the result stays
// first outside, DISTINCT ON's added keys do not move out.
func TestBreakTies(t *testing.T) {
	d := func(args ...string) string {
		for i, a := range args {
			args[i] = "''::pg_catalog.text, " + a
		}
		return "pg_catalog.sha256(pg_catalog.convert_to(ROW(" + strings.Join(args, ", ") + ")::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) E'\\\\x" + testKey + "'::pg_catalog.bytea)"
	}
	for _, tt := range []struct {
		in   string
		ties []Tie
		want string
	}{
		{"SELECT x.a FROM t, LATERAL (SELECT u.a, u.b FROM u ORDER BY u.c LIMIT 1) x", []Tie{{Select: 1, Hash: []int{0, 1}, Tags: []string{"", ""}}},
			"SELECT x.a FROM t, LATERAL (SELECT u.a, u.b FROM u ORDER BY u.c, " + d("u.a", "u.b") + " LIMIT 1) x"},
		{"SELECT (SELECT 1 FROM u LIMIT 1)", []Tie{{Select: 1}}, "SELECT (SELECT 1 FROM u LIMIT 1)"},
		{"SELECT a, sum(b) OVER (ORDER BY c ROWS 1 PRECEDING) FROM t", []Tie{{Select: 0, Hash: []int{0}, Tags: []string{""}}},
			"SELECT a, sum(b) OVER (ORDER BY c, " + d("a", "b") + " ROWS 1 PRECEDING) FROM t"},
		{"SELECT row_number() OVER () FROM t", []Tie{{Select: 0}}, "SELECT row_number() OVER () FROM t"},
		{"SELECT DISTINCT ON (a) a, b FROM t", []Tie{{Select: 0, Hash: []int{0, 1}, Tags: []string{"", ""}}},
			"SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, " + d("a", "b")},
	} {
		got, err := WithDigestOrderOf(tt.in, nil, nil, [][]Tie{tt.ties}, testKey)
		if err != nil || got != tt.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tt.in, got, err, tt.want)
		}
	}
	positional, err := WithDigestOrderOf("SELECT DISTINCT ON (a) a, b FROM t", []bool{true},
		[]*Outputs{{Names: []string{"a", "b"}, Hash: []bool{true, true}, Tags: []string{"", ""}}}, [][]Tie{{{Select: 0, Hash: []int{0, 1}, Tags: []string{"", ""}}}}, testKey)
	if err != nil || strings.Contains(positional, "ORDER BY pgpseudo_q.c1") {
		t.Errorf("DISTINCT ON's added keys moved out: %s (%v)", positional, err)
	}
	if _, err := WithDigestOrderOf("SELECT * FROM t, LATERAL (SELECT * FROM u LIMIT 1) x", nil, nil, [][]Tie{{{Select: 1}}}, testKey); err == nil {
		t.Error("a tie the digest cannot break was accepted")
	}
}
