package sqlinfo

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestGroupCompanions(t *testing.T) {
	const c = "pg_catalog.convert_to(pg_catalog.concat("
	for _, tc := range []struct{ in, want string }{
		{"SELECT v FROM t GROUP BY v", "SELECT v FROM t GROUP BY v, " + c + "v), 'UTF8')"},
		{"SELECT a + 1, count(*) FROM t GROUP BY 1", "SELECT a + 1, count(*) FROM t GROUP BY 1, " + c + "a + 1), 'UTF8')"},
		{"SELECT a + 1 AS w FROM t GROUP BY w", "SELECT a + 1 AS w FROM t GROUP BY w, " + c + "a + 1), 'UTF8')"},
		{"SELECT DISTINCT a, 2, lower(b) FROM t", "SELECT a, 2, lower(b) FROM t GROUP BY a, lower(b), " + c + "a), 'UTF8'), " + c + "lower(b)), 'UTF8')"},
		{"SELECT DISTINCT * FROM t", "SELECT DISTINCT * FROM t"},
		{"SELECT DISTINCT a, count(*) OVER () FROM t", "SELECT DISTINCT a, count(*) OVER () FROM t"},
		{"SELECT a FROM t GROUP BY ROLLUP (a, (b, c))",
			"SELECT a FROM t GROUP BY ROLLUP ((a, " + c + "a), 'UTF8')), (b, c, " + c + "b), 'UTF8'), " + c + "c), 'UTF8')))"},
		{"SELECT a FROM t GROUP BY GROUPING SETS ((a), ())", "SELECT a FROM t GROUP BY GROUPING SETS ((a, " + c + "a), 'UTF8')), ())"},
		{"SELECT x FROM (SELECT a x FROM t GROUP BY a) s GROUP BY x",
			"SELECT x FROM (SELECT a AS x FROM t GROUP BY a, " + c + "a), 'UTF8')) s GROUP BY x, " + c + "x), 'UTF8')"},
	} {
		tree, err := pg_query.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		groupCompanions(tree.GetStmts()[0].GetStmt(), nil, map[int][]string{0: {"w"}})
		got, err := pg_query.Deparse(tree)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
		// The server prints the companion back; CompanionOf reads it.
		if strings.Contains(got, "concat") {
			e, err := pg_query.Parse(`SELECT convert_to(concat(x.a), 'UTF8'::name)`)
			if err != nil {
				t.Fatal(err)
			}
			v := e.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
			if k := CompanionOf(v); k.GetColumnRef() == nil {
				t.Errorf("CompanionOf does not read the printed companion")
			}
		}
	}
}

func TestUnpairedDedup(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT a FROM t UNION SELECT b FROM u", ""},
		{"SELECT a + 1 FROM t UNION ALL SELECT 2", ""},
		{"SELECT a + 1 FROM t UNION SELECT b FROM u", "UNION without ALL"},
		{"SELECT a FROM t INTERSECT SELECT 1", "INTERSECT without ALL"},
		{"SELECT DISTINCT lower(a), count(*) OVER () FROM t", "SELECT DISTINCT"},
		{"SELECT DISTINCT lower(a) FROM t", ""},
	} {
		tree, err := pg_query.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, s := range Selects(tree.GetStmts()[0].GetStmt()) {
			if w := UnpairedDedup(s); w != "" {
				got = w
			}
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGroupingSets(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want int
	}{
		{"SELECT 1 FROM t GROUP BY a, b", 1},
		{"SELECT 1 FROM t GROUP BY ROLLUP (a, b, c)", 4},
		{"SELECT 1 FROM t GROUP BY CUBE (a, b, c)", 8},
		{"SELECT 1 FROM t GROUP BY a, ROLLUP (b, c), CUBE (d, e)", 12},
		{"SELECT 1 FROM t GROUP BY GROUPING SETS ((a), (b), ROLLUP (c, d), ())", 6},
		{"SELECT 1 FROM t GROUP BY CUBE (a, b, c, d, e, f, g)", 65},
		{"SELECT 1 FROM t GROUP BY CUBE (a, b, c, d, e, f), CUBE (g, h)", 65},
	} {
		tree, err := pg_query.Parse(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := GroupingSets(tree.GetStmts()[0].GetStmt().GetSelectStmt().GetGroupClause(), 64); got != tc.want {
			t.Errorf("%s: %d sets, want %d", tc.sql, got, tc.want)
		}
	}
}
