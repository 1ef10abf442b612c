package plancheck

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// The fixtures in testdata/plans.json are EXPLAIN (VERBOSE, COSTS OFF,
// FORMAT JSON) of statements over the sample schema, captured from
// PostgreSQL 15, with the verdict the check must reach for role
// bi_analyst of the sample policy.

type fixture struct {
	SQL  string          `json:"sql"`
	Want string          `json:"want"`
	Note string          `json:"note"`
	Plan json.RawMessage `json:"plan"`
}

type fixtures struct {
	Marker string    `json:"marker"`
	Cases  []fixture `json:"cases"`
}

// sampleCatalog classifies the sample tables for one role.
type sampleCatalog struct {
	pol     *policy.Policy
	role    *policy.Role
	cols    map[string][]string
	indexes map[string]map[string][]string // table → index → key columns
}

func newSampleCatalog(t *testing.T, roleName string) *sampleCatalog {
	t.Helper()
	pol, err := policy.Load("../../configs/sample/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := &sampleCatalog{pol: pol, cols: map[string][]string{}, indexes: map[string]map[string][]string{}}
	for _, r := range pol.Roles {
		if r.Name == roleName {
			c.role = r
		}
	}
	if c.role == nil {
		t.Fatalf("no role %s", roleName)
	}
	tree, err := pg_query.Parse(sample.Schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range tree.GetStmts() {
		cs := raw.GetStmt().GetCreateStmt()
		if cs == nil {
			continue
		}
		table := cs.GetRelation().GetRelname()
		c.indexes[table] = map[string][]string{}
		for _, e := range cs.GetTableElts() {
			cd := e.GetColumnDef()
			if cd == nil {
				continue
			}
			c.cols[table] = append(c.cols[table], cd.GetColname())
			// The indexes PostgreSQL makes for column constraints.
			for _, k := range cd.GetConstraints() {
				switch k.GetConstraint().GetContype() {
				case pg_query.ConstrType_CONSTR_PRIMARY:
					c.indexes[table][table+"_pkey"] = []string{cd.GetColname()}
				case pg_query.ConstrType_CONSTR_UNIQUE:
					c.indexes[table][table+"_"+cd.GetColname()+"_key"] = []string{cd.GetColname()}
				}
			}
		}
	}
	return c
}

func (c *sampleCatalog) Relation(_ context.Context, schema, name string) (*Relation, error) {
	tn := policy.TableName{Schema: schema, Table: name}
	rel := &Relation{Name: tn, Indexes: c.indexes[name]}
	cols, ok := c.cols[name]
	if schema != "public" || !ok {
		return rel, nil // a catalog relation: nothing protected
	}
	for _, col := range cols {
		rel.Columns = append(rel.Columns, Column{Name: col, Decision: c.pol.Decide(c.role, tn, col), Domain: c.pol.TokenDomain(tn, col)})
	}
	return rel, nil
}

func loadFixtures(t *testing.T) fixtures {
	t.Helper()
	data, err := os.ReadFile("testdata/plans.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func pg15Keywords(t *testing.T) sqlinfo.Keywords {
	t.Helper()
	data, err := os.ReadFile("../analyze/testdata/keywords-pg15.txt")
	if err != nil {
		t.Fatal(err)
	}
	kw := sqlinfo.Keywords{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		kw[f[0]] = f[1][0]
	}
	return kw
}

func TestCheckFixtures(t *testing.T) {
	fx := loadFixtures(t)
	cat := newSampleCatalog(t, "bi_analyst")
	kw := pg15Keywords(t)
	for i, f := range fx.Cases {
		res, err := Check(context.Background(), cat, Input{Plan: f.Plan, Syntax: ParseSyntax(f.SQL), Keywords: kw, DigestMarker: fx.Marker})
		if err != nil {
			t.Fatalf("#%d %s: %v", i, f.SQL, err)
		}
		got := "ok"
		switch {
		case res.Refusal != nil && res.Unordered:
			got = "unordered" // refused for its row order only
		case res.Refusal != nil:
			got = "refused"
		}
		if got != f.Want {
			msg := ""
			if res.Refusal != nil {
				msg = res.Refusal.Message()
			}
			t.Errorf("#%d %s (%s): %s, want %s %s", i, f.SQL, f.Note, got, f.Want, msg)
			continue
		}
		if want, ok := strings.CutPrefix(f.Note, "outputs: "); ok && got == "ok" {
			if g := describeOutputs(res.Outputs); g != want {
				t.Errorf("#%d %s: outputs %s, want %s", i, f.SQL, g, want)
			}
		}
	}
}

// describeOutputs writes outputs as the fixtures note them: [email, clean].
func describeOutputs(outs []Output) string {
	var parts []string
	for _, o := range outs {
		switch {
		case o.Clean():
			parts = append(parts, "clean")
		default:
			var cols []string
			for _, s := range o.Sources {
				cols = append(cols, s.Column)
			}
			p := strings.Join(cols, "+")
			if !o.Bare {
				p += " not bare"
			}
			parts = append(parts, p)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestRefusalsNameColumnRoleRule: the check's refusals say what, where and
// why.
func TestRefusalsNameColumnRoleRule(t *testing.T) {
	fx := loadFixtures(t)
	cat := newSampleCatalog(t, "bi_analyst")
	for _, f := range fx.Cases {
		if f.SQL != "SELECT md5(religion) FROM customers" {
			continue
		}
		res, err := Check(context.Background(), cat, Input{Plan: f.Plan, Syntax: ParseSyntax(f.SQL)})
		if err != nil || res.Refusal == nil {
			t.Fatalf("%v %+v", err, res)
		}
		res.Refusal.Role = "bi_analyst"
		msg := res.Refusal.Message()
		for _, want := range []string{"customers.religion", "special-category", "role bi_analyst", "rule:", "server's plan"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal %q lacks %q", msg, want)
			}
		}
	}
}

func TestPlaceholders(t *testing.T) {
	tests := map[string]string{
		"(SubPlan 1)":              "pgpseudo_subplan(1)",
		"(NOT (hashed SubPlan 2))": "(NOT pgpseudo_subplan(2))",
		"(alternatives: SubPlan 1 or hashed SubPlan 2)": "pgpseudo_subplan(1, 2)",
		"(c.x = (SubPlan 3).col2)":                      "(c.x = pgpseudo_subplan_col(3, 2))",
		"(InitPlan 1).col1":                             "pgpseudo_initplan_col(1, 1)",
		"row_number() OVER (?)":                         "row_number() OVER ()",
		"(ANY (c.x = (hashed SubPlan 1).col1))":         "(pgpseudo_any (c.x = pgpseudo_subplan_col(1, 1)))",
		"'(SubPlan 1)'::text":                           "'(SubPlan 1)'::text",
		`"SubPlan"`:                                     `"SubPlan"`,
		"(x.data ? 'key'::text)":                        "(x.data ? 'key'::text)",
	}
	for in, want := range tests {
		got, err := placeholders(in)
		if err != nil || got != want {
			t.Errorf("placeholders(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"SubPlan 1", "(InitPlan 1 (returns $0))"} {
		if _, err := placeholders(bad); err == nil {
			t.Errorf("placeholders(%q) accepted", bad)
		}
	}
}

// TestUnknownPropertiesAreExpressions: a property the check does not know
// is read as an expression, so a newer server's new property is checked
// rather than skipped.
func TestUnknownPropertiesAreExpressions(t *testing.T) {
	cat := newSampleCatalog(t, "bi_analyst")
	plan := `[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "customers", "Schema": "public", "Alias": "customers",
		"Output": ["customers.city"], "Some Future Condition": "(upper(customers.religion) = 'X'::text)"}}]`
	res, err := Check(context.Background(), cat, Input{Plan: []byte(plan), Syntax: &Syntax{}})
	if err != nil || res.Refusal == nil || !strings.Contains(res.Refusal.Message(), "religion") {
		t.Fatalf("%v %+v", err, res)
	}
	unreadable := `[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "customers", "Schema": "public", "Alias": "customers",
		"Output": ["customers.city"], "Remote SQL": "SELECT religion FROM customers"}}]`
	res, err = Check(context.Background(), cat, Input{Plan: []byte(unreadable), Syntax: &Syntax{}})
	if err != nil || res.Refusal == nil {
		t.Fatalf("an unreadable property passed: %v %+v", err, res)
	}
}
