package analyze

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// testCatalog is an in-memory Catalog built from DDL: the sample
// database's schema plus testdata/schema.sql. Every pg_catalog name
// starting with pg_ and every information_schema name exists (with
// unknown columns, except pg_namespace); functions are built-ins unless
// listed in userFuncs.
type testCatalog struct {
	rels      map[policy.TableName]*Relation
	userFuncs map[string]bool
	lookups   int
}

func newTestCatalog(t testing.TB) *testCatalog {
	t.Helper()
	extra, err := os.ReadFile("testdata/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCatalog{rels: map[policy.TableName]*Relation{},
		userFuncs: map[string]bool{"safe_fn": true, "evil_fn": true, "fmt_price": true, "my_udf": true}}
	for _, ddl := range []string{sample.Schema, string(extra)} {
		if err := c.load(ddl); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func rangeVarName(rv *pg_query.RangeVar) policy.TableName {
	s := rv.GetSchemaname()
	if s == "" {
		s = "public"
	}
	return policy.TableName{Schema: s, Table: rv.GetRelname()}
}

func (c *testCatalog) load(ddl string) error {
	tree, err := pg_query.Parse(ddl)
	if err != nil {
		return err
	}
	for _, raw := range tree.GetStmts() {
		n := raw.GetStmt()
		switch {
		case n.GetCreateStmt() != nil:
			cs := n.GetCreateStmt()
			rel := &Relation{Name: rangeVarName(cs.GetRelation()), Kind: 'r'}
			if cs.GetPartspec() != nil {
				rel.Kind = 'p'
			}
			for _, e := range cs.GetTableElts() {
				if cd := e.GetColumnDef(); cd != nil {
					rel.Columns = append(rel.Columns, cd.GetColname())
				}
			}
			if inh := cs.GetInhRelations(); len(inh) > 0 {
				parent := c.rels[rangeVarName(inh[0].GetRangeVar())]
				if parent == nil {
					return fmt.Errorf("no parent for %s", rel.Name)
				}
				rel.Columns = append(slices.Clone(parent.Columns), rel.Columns...)
				rel.Root = parent.root()
			}
			c.rels[rel.Name] = rel
		case n.GetViewStmt() != nil:
			vs := n.GetViewStmt()
			if err := c.addView(rangeVarName(vs.GetView()), 'v', vs.GetQuery(), tree.GetVersion()); err != nil {
				return err
			}
		case n.GetCreateTableAsStmt() != nil:
			ct := n.GetCreateTableAsStmt()
			if err := c.addView(rangeVarName(ct.GetInto().GetRel()), 'm', ct.GetQuery(), tree.GetVersion()); err != nil {
				return err
			}
		case n.GetCreateSeqStmt() != nil:
			name := rangeVarName(n.GetCreateSeqStmt().GetSequence())
			c.rels[name] = &Relation{Name: name, Kind: 'S', Columns: []string{"last_value", "log_cnt", "is_called"}}
		}
	}
	return nil
}

func (c *testCatalog) addView(name policy.TableName, kind byte, q *pg_query.Node, version int32) error {
	sql, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: q}}})
	if err != nil {
		return err
	}
	rel := &Relation{Name: name, Kind: kind, ViewSQL: sql}
	for _, t := range q.GetSelectStmt().GetTargetList() {
		name, _ := outputName(t.GetResTarget())
		rel.Columns = append(rel.Columns, name)
	}
	c.rels[name] = rel
	return nil
}

func (c *testCatalog) get(schema, name string) (*Relation, bool) {
	switch {
	case schema == "pg_catalog" && name == "pg_namespace":
		return &Relation{Name: policy.TableName{Schema: schema, Table: name}, Kind: 'r',
			Columns: []string{"oid", "nspname", "nspowner", "nspacl"}}, true
	case schema == "pg_catalog" && strings.HasPrefix(name, "pg_"):
		return &Relation{Name: policy.TableName{Schema: schema, Table: name}, Kind: 'r'}, true
	case schema == "information_schema":
		return &Relation{Name: policy.TableName{Schema: schema, Table: name}, Kind: 'v'}, true
	}
	r, ok := c.rels[policy.TableName{Schema: schema, Table: name}]
	return r, ok
}

func (c *testCatalog) Relation(_ context.Context, schema, name string, path []string) (*Relation, bool, error) {
	c.lookups++
	if schema != "" {
		r, ok := c.get(schema, name)
		return r, ok, nil
	}
	order := path
	if !slices.Contains(path, "pg_catalog") {
		order = append([]string{"pg_catalog"}, path...)
	}
	for _, s := range order {
		if r, ok := c.get(s, name); ok {
			return r, true, nil
		}
	}
	return nil, false, nil
}

func (c *testCatalog) IsBuiltinFunction(_ context.Context, schema, name string, _ []string) (bool, error) {
	if schema != "" && schema != "pg_catalog" {
		return false, nil
	}
	return !c.userFuncs[name], nil
}

func loadPolicy(t testing.TB, path string) *policy.Policy {
	t.Helper()
	p, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func role(t testing.TB, p *policy.Policy, name string) *policy.Role {
	t.Helper()
	for _, r := range p.Roles {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no role %q", name)
	return nil
}

// TestSamplePolicyUnchanged: the test policy decides every sample column
// and role exactly as configs/sample/policy.yaml does.
func TestSamplePolicyUnchanged(t *testing.T) {
	sp := loadPolicy(t, "../../configs/sample/policy.yaml")
	tp := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	for _, r := range sp.Roles {
		tr := role(t, tp, r.Name)
		for _, table := range []string{"customers", "orders", "payments", "support_tickets", "health_records"} {
			rel, ok := cat.get("public", table)
			if !ok {
				t.Fatalf("no table %s", table)
			}
			for _, col := range rel.Columns {
				a, b := sp.Decide(r, rel.Name, col), tp.Decide(tr, rel.Name, col)
				if a.Action != b.Action || a.Category != b.Category || a.Spec.Domain != b.Spec.Domain {
					t.Errorf("%s %s.%s: sample %v, test %v", r.Name, table, col, a, b)
				}
			}
		}
	}
}

// pg15Keywords returns pg_get_keywords() of a PostgreSQL 15 server
// (testdata/keywords-pg15.txt: word, category, bare label).
func pg15Keywords(t testing.TB) sqlinfo.Keywords {
	t.Helper()
	data, err := os.ReadFile("testdata/keywords-pg15.txt")
	if err != nil {
		t.Fatal(err)
	}
	kw := sqlinfo.Keywords{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("keywords-pg15.txt: %q", line)
		}
		kw[f[0]] = f[1][0]
	}
	return kw
}
