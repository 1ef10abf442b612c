package analyze

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// corpusEntry is one statement of testdata/corpus.yaml.
type corpusEntry struct {
	SQL       string    `yaml:"sql"`
	Want      string    `yaml:"want"`
	Match     []string  `yaml:"match"`
	Role      string    `yaml:"role"`
	Path      *[]string `yaml:"path"`
	Tx        bool      `yaml:"tx"`
	PathAfter *[]string `yaml:"path_after"`
	Note      string    `yaml:"note"`

	file  string // the corpus file and position of the entry, for messages
	index int
}

func defaultPath() []string { return []string{"$user", "public"} }

// corpusFiles are the request-analysis corpora and the least number of
// statements each must hold: the hand-written corpus and the SQL that BI
// tools send (testdata/bi_tools.yaml).
var corpusFiles = []struct {
	name string
	min  int
}{
	{"testdata/corpus.yaml", 200},
	{"testdata/bi_tools.yaml", 150},
}

func loadCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	var all []corpusEntry
	for _, f := range corpusFiles {
		data, err := os.ReadFile(f.name)
		if err != nil {
			t.Fatal(err)
		}
		var entries []corpusEntry
		if err := yaml.Unmarshal(data, &entries); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if len(entries) < f.min {
			t.Fatalf("%s has %d statements, want at least %d", f.name, len(entries), f.min)
		}
		for i := range entries {
			entries[i].file, entries[i].index = f.name, i+1
		}
		all = append(all, entries...)
	}
	return all
}

func (e corpusEntry) session(t *testing.T, p *policy.Policy) *Session {
	r := e.Role
	if r == "" {
		r = "bi_analyst"
	}
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, r), SearchPath: defaultPath(), DefaultSearchPath: defaultPath(), InTransaction: e.Tx}
	if e.Path != nil {
		s.SearchPath = *e.Path
	}
	return s
}

// TestCorpus checks every statement of the corpus against its expected
// verdict.
func TestCorpus(t *testing.T) {
	entries := loadCorpus(t)
	p := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	allowed, refused := 0, 0
	for _, e := range entries {
		s := e.session(t, p)
		res, err := Analyze(context.Background(), s, cat, e.SQL)
		if err != nil {
			t.Errorf("%s#%d %q: error %v", e.file, e.index, e.SQL, err)
			continue
		}
		msg := ""
		if res.Refusal != nil {
			msg = res.Refusal.Message()
		}
		switch e.Want {
		case "allow":
			allowed++
			if res.Refusal != nil {
				t.Errorf("%s#%d [%s] want allow, refused:\n  sql: %s\n  msg: %s", e.file, e.index, s.Role.Name, e.SQL, msg)
			}
		case "refuse":
			refused++
			if res.Refusal == nil {
				t.Errorf("%s#%d [%s] want refuse %q, allowed:\n  sql: %s", e.file, e.index, s.Role.Name, e.Match, e.SQL)
				continue
			}
			for _, m := range e.Match {
				if !strings.Contains(msg, m) {
					t.Errorf("%s#%d [%s] refusal does not mention %q:\n  sql: %s\n  msg: %s", e.file, e.index, s.Role.Name, m, e.SQL, msg)
				}
			}
		default:
			t.Errorf("%s#%d: want must be allow or refuse, got %q", e.file, e.index, e.Want)
		}
		if e.PathAfter != nil && !slices.Equal(res.SearchPath, *e.PathAfter) {
			t.Errorf("%s#%d %q: search_path after = %q, want %q", e.file, e.index, e.SQL, res.SearchPath, *e.PathAfter)
		}
	}
	t.Logf("corpus: %d statements, %d allowed, %d refused", len(entries), allowed, refused)
}

// TestRefusalsNameRoleAndRule: every refusal message names the role and
// carries the rule.
func TestRefusalsNameRoleAndRule(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	n := 0
	for _, e := range loadCorpus(t) {
		if e.Want != "refuse" {
			continue
		}
		s := e.session(t, p)
		res, err := Analyze(context.Background(), s, cat, e.SQL)
		if err != nil || res.Refusal == nil {
			continue // TestCorpus reports it
		}
		n++
		r := res.Refusal
		msg := r.Message()
		switch {
		case r.Role != s.Role.Name || !strings.Contains(msg, "role "+s.Role.Name+" "):
			t.Errorf("%q: refusal does not name role %s: %s", e.SQL, s.Role.Name, msg)
		case r.Rule == "" || !strings.Contains(msg, "(rule: "+r.Rule+")"):
			t.Errorf("%q: refusal does not carry its rule: %s", e.SQL, msg)
		case !strings.HasPrefix(msg, "pgpseudo: "):
			t.Errorf("%q: message %q", e.SQL, msg)
		case r.Column == "" && r.Function == "" && r.Relation == "" && r.StatementKind == "":
			t.Errorf("%q: refusal names no column, function, relation or statement: %s", e.SQL, msg)
		}
		if r.Column != "" && r.Table.Table != "" && r.Clause == "" {
			t.Errorf("%q: column refusal without a clause: %s", e.SQL, msg)
		}
	}
	if n == 0 {
		t.Fatal("no refusals checked")
	}
}

func TestRefusalFields(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "bi_analyst"), SearchPath: defaultPath()}
	res, err := Analyze(context.Background(), s, newTestCatalog(t), "SELECT 1; SELECT customer_id FROM customers WHERE religion = 'x'")
	if err != nil {
		t.Fatal(err)
	}
	r := res.Refusal
	want := Refusal{StatementKind: "Select", Statement: 2, Table: policy.TableName{Schema: "public", Table: "customers"},
		Column: "religion", Role: "bi_analyst", Clause: "WHERE"}
	if r == nil || r.StatementKind != want.StatementKind || r.Statement != want.Statement || r.Table != want.Table ||
		r.Column != want.Column || r.Role != want.Role || r.Clause != want.Clause {
		t.Fatalf("refusal %+v, want %+v", r, want)
	}
	if got := r.Error(); !strings.HasPrefix(got, "pgpseudo: statement 2: customers.religion is special-category data; role bi_analyst may not use it in WHERE") {
		t.Fatalf("message %q", got)
	}
	if len(res.Statements) != 2 || res.Statements[1].Fingerprint == "" || !slices.Contains(res.Statements[1].Relations, want.Table) {
		t.Fatalf("statements %+v", res.Statements)
	}
}

func TestStatementInfo(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "bi_analyst"), SearchPath: defaultPath()}
	res, err := Analyze(context.Background(), s, cat, "SELECT city FROM overview_berlin WHERE city = 'x'; SHOW search_path")
	if err != nil || res.Refusal != nil {
		t.Fatal(err, res.Refusal)
	}
	if len(res.Statements) != 2 || res.Statements[0].Kind != "Select" || res.Statements[1].Kind != "VariableShow" {
		t.Fatalf("%+v", res.Statements)
	}
	var names []string
	for _, r := range res.Statements[0].Relations {
		names = append(names, r.String())
	}
	if want := []string{"public.overview_berlin", "public.customer_overview", "public.customers"}; !slices.Equal(names, want) {
		t.Fatalf("relations %q, want %q", names, want)
	}
	other, _ := Analyze(context.Background(), s, cat, "SELECT city FROM overview_berlin WHERE city = 'y'")
	if other.Statements[0].Fingerprint != res.Statements[0].Fingerprint {
		t.Fatal("fingerprints differ by a literal")
	}
}

func TestParseSearchPath(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{``, nil},
		{`public`, []string{"public"}},
		{`"$user", public`, []string{"$user", "public"}},
		{` Analytics ,"Sales", "a""b" `, []string{"analytics", "Sales", `a"b`}},
		{`"with, comma",x`, []string{"with, comma", "x"}},
	} {
		if got := ParseSearchPath(c.in); !slices.Equal(got, c.want) {
			t.Errorf("ParseSearchPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCache(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	c := NewCache(2)
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "bi_analyst"), SearchPath: defaultPath()}
	ctx := context.Background()
	q := "SELECT email FROM customers WHERE city = 'Berlin'"
	r1, err := c.Analyze(ctx, 1, s, cat, q)
	if err != nil || r1.Refusal != nil {
		t.Fatal(err, r1.Refusal)
	}
	before := cat.lookups
	r2, _ := c.Analyze(ctx, 1, s, cat, q)
	if r2 != r1 || cat.lookups != before {
		t.Fatal("repeated statement was analysed again")
	}
	// Another role, search path or generation is another entry.
	dev := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "developer"), SearchPath: defaultPath()}
	if r, _ := c.Analyze(ctx, 1, dev, cat, q); r == r1 {
		t.Fatal("roles share a cache entry")
	}
	if r, _ := c.Analyze(ctx, 2, s, cat, q); r == r1 {
		t.Fatal("generations share a cache entry")
	}
	if c.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2 (bounded)", c.Len())
	}
	an := &Session{Keywords: pg15Keywords(t), Policy: p, Role: s.Role, SearchPath: []string{"analytics"}}
	r3, _ := c.Analyze(ctx, 2, an, cat, "SELECT * FROM customers WHERE customer_id < 1")
	r4, _ := c.Analyze(ctx, 2, s, cat, "SELECT * FROM customers WHERE customer_id < 1")
	if r3.Refusal != nil || r4.Refusal == nil {
		t.Fatal("search_path is not part of the cache key")
	}
}

func TestSessionWithoutRole(t *testing.T) {
	if _, err := Analyze(context.Background(), &Session{}, newTestCatalog(t), "SELECT 1"); err == nil {
		t.Fatal("no error without policy and role")
	}
}

func TestSamplePolicyCorpusSubset(t *testing.T) {
	// The sample policy file itself, unchanged, gives the same verdicts on
	// statements over the sample tables.
	p := loadPolicy(t, "../../configs/sample/policy.yaml")
	cat := newTestCatalog(t)
	for _, c := range []struct {
		role, sql string
		refuse    bool
	}{
		{"bi_analyst", "SELECT * FROM customers", false},
		{"bi_analyst", "SELECT customer_id FROM customers WHERE religion = 'muslimisch'", true},
		{"developer", "SELECT customer_id, count(*) FROM orders GROUP BY customer_id", false},
		{"developer", "SELECT lower(full_name) FROM customers", true},
		{"care_team", "SELECT * FROM health_records WHERE diagnosis = 'Asthma bronchiale'", false},
		{"care_team", "SELECT * FROM payments ORDER BY iban", false},
		{"care_team", "SELECT * FROM payments ORDER BY lower(iban)", true},
	} {
		s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, c.role), SearchPath: defaultPath()}
		res, err := Analyze(context.Background(), s, cat, c.sql)
		if err != nil {
			t.Fatal(err)
		}
		if (res.Refusal != nil) != c.refuse {
			t.Errorf("[%s] %s: refusal %v, want refused=%v", c.role, c.sql, res.Refusal, c.refuse)
		}
	}
}

// failingCatalog fails every lookup.
type failingCatalog struct{ calls int }

func (f *failingCatalog) Relation(context.Context, string, string, []string) (*Relation, bool, error) {
	f.calls++
	return nil, false, errors.New("connection refused")
}

func (f *failingCatalog) IsBuiltinFunction(context.Context, string, string, []string) (bool, error) {
	f.calls++
	return false, errors.New("connection refused")
}

// TestCatalogFailure: catalog failures are errors, not verdicts, and are
// not cached.
func TestCatalogFailure(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "bi_analyst"), SearchPath: defaultPath()}
	cat := &failingCatalog{}
	for _, q := range []string{"SELECT * FROM customers", "SELECT lower('x')"} {
		if res, err := Analyze(context.Background(), s, cat, q); err == nil {
			t.Errorf("%s: no error, result %+v", q, res)
		}
	}
	c := NewCache(10)
	for i := 0; i < 2; i++ {
		if _, err := c.Analyze(context.Background(), 1, s, cat, "SELECT * FROM customers"); err == nil {
			t.Fatal("no error")
		}
	}
	if c.Len() != 0 || cat.calls != 4 {
		t.Fatalf("failed analyses cached: len %d, calls %d", c.Len(), cat.calls)
	}
}

// TestStoredGroupKeys: queries that group only by stored columns need no
// companions; a computed key, an ordinal or alias naming one, or a
// subquery column computed inside makes the query get them.
func TestStoredGroupKeys(t *testing.T) {
	p := loadPolicy(t, "testdata/policy.yaml")
	cat := newTestCatalog(t)
	s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, "bi_analyst"), SearchPath: defaultPath()}
	for _, tc := range []struct {
		sql    string
		stored []int
	}{
		{"SELECT city, count(*) FROM customers GROUP BY city", []int{0}},
		{"SELECT DISTINCT city, postal_code FROM customers", []int{0}},
		{"SELECT c.city AS town FROM customers c GROUP BY 1", []int{0}},
		{"SELECT date_trunc('month', created_at), count(*) FROM customers GROUP BY 1", nil},
		{"SELECT lower(city) AS city FROM customers GROUP BY city", []int{0}},
		{"SELECT lower(city) AS town FROM customers GROUP BY town", nil},
		{"SELECT v FROM (SELECT round(1.0, extract(day FROM created_at)::int) v FROM customers) t GROUP BY v", []int{1}},
		{"SELECT x FROM (SELECT city x FROM customers) t GROUP BY x", []int{0, 1}},
		{"SELECT city FROM customers GROUP BY ROLLUP (city, (postal_code, city))", nil},
	} {
		res, err := Analyze(context.Background(), s, cat, tc.sql)
		if err != nil || res.Refusal != nil {
			t.Fatalf("%s: %v %v", tc.sql, err, res.Refusal)
		}
		var got []int
		found := false
		for _, tie := range res.Statements[0].Ties {
			if tie.Select == sqlinfo.GroupingsTie {
				got, found = tie.StoredKeys, true
			}
		}
		if !found || !slices.Equal(got, tc.stored) {
			t.Errorf("%s: stored-key queries %v (found %v), want %v", tc.sql, got, found, tc.stored)
		}
	}
}

// TestRefusalCode: each kind of refusal gets its own audit rule code.
func TestRefusalCode(t *testing.T) {
	for _, tc := range []struct {
		r    Refusal
		want string
	}{
		{Refusal{Column: "religion", Action: policy.Block, Category: "special"}, "column_blocked"},
		{Refusal{Column: "email", Action: policy.Tokenize, Category: "contact"}, "column_pseudonymised"},
		{Refusal{Column: "iban", Action: policy.Mask, Category: "financial"}, "column_pseudonymised"},
		{Refusal{Column: "note", Action: policy.Null, Category: "x"}, "column_nulled"},
		{Refusal{Column: "c", Action: policy.Block}, "column_unclassified"},
		// Names in the rule text do not change the code (a role called
		// "unclassified_readers").
		{Refusal{Column: "c", Action: policy.Tokenize, Category: "contact", Rule: `category "contact" is tokenized for role "unclassified_readers"`}, "column_pseudonymised"},
		{Refusal{Column: "t.c", Rule: ruleUnresolvedRef}, "unresolved"},
		{Refusal{Relation: "t", Rule: ruleUnresolvedRef}, "unresolved"},
		{Refusal{Column: "c", Rule: "a drill-down parameter may only be compared for equality with columns of its token domain"}, "column_use"},
		{Refusal{Function: "query_to_xml"}, "function"},
		{Refusal{Relation: "pg_stat_activity"}, "relation"},
		{Refusal{Setting: "search_path"}, "setting"},
		{Refusal{Word: "json_table"}, "keyword_mismatch"},
		{Refusal{StatementKind: "unparseable"}, "unparseable"},
		{Refusal{StatementKind: "Delete"}, "statement_kind"},
		{Refusal{Reason: "ARRAY(subquery) collects rows in the order in which the server reads them, which …"}, "read_order"},
		{Refusal{Reason: "a subquery inside an expression is not supported"}, "unanalysable"},
	} {
		if got := tc.r.Code(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
}
