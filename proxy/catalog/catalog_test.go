package catalog

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgpseudo/pgpseudo/policy"
)

func TestIsDDL(t *testing.T) {
	for tag, want := range map[string]bool{
		"CREATE VIEW": true, "DROP TABLE": true, "ALTER TABLE": true, "GRANT": true, "REVOKE": true,
		"COMMENT": true, "REFRESH MATERIALIZED VIEW": true, "SECURITY LABEL": true,
		"SELECT 3": false, "INSERT 0 1": false, "SET": false, "BEGIN": false, "COPY 5": false, "": false,
	} {
		if got := IsDDL(tag); got != want {
			t.Errorf("IsDDL(%q) = %v, want %v", tag, got, want)
		}
	}
}

func TestEffectivePath(t *testing.T) {
	tests := []struct {
		schema string
		path   []string
		want   []string
	}{
		{"", []string{"$user", "public"}, []string{"pg_catalog", "bi_jane", "public"}},
		{"", []string{"public", "pg_catalog"}, []string{"public", "pg_catalog"}},
		{"", []string{"", "public"}, []string{"pg_catalog", "public"}},
		{"sales", []string{"$user", "public"}, []string{"sales"}},
		{"", nil, []string{"pg_catalog"}},
	}
	for _, tt := range tests {
		if got := EffectivePath(tt.schema, tt.path, "bi_jane"); !slices.Equal(got, tt.want) {
			t.Errorf("EffectivePath(%q, %q) = %q, want %q", tt.schema, tt.path, got, tt.want)
		}
	}
}

// TestGenerations: a fact is fetched again after DDL seen in its database
// and after the TTL, and never shared between databases.
func TestGenerations(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	c := New(func(context.Context, string) (*pgxpool.Pool, error) { return nil, nil }, 30*time.Second)
	c.now = func() time.Time { return now }
	fetches := 0
	get := func(db string) int {
		v, err := cached(ctx, c, db, 'x', "k", func(context.Context, *pgxpool.Pool) (int, error) {
			fetches++
			return fetches, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		do     func()
		db     string
		wantV  int
		reason string
	}{
		{nil, "a", 1, "first fetch"},
		{nil, "a", 1, "cached"},
		{nil, "b", 2, "another database"},
		{func() { c.Changed("a") }, "a", 3, "DDL seen in a"},
		{nil, "b", 2, "DDL in a leaves b cached"},
		{func() { now = now.Add(31 * time.Second) }, "b", 4, "TTL passed"},
		{nil, "b", 4, "cached again"},
		{func() { c.ChangedAll() }, "b", 5, "every database changed (SIGHUP)"},
		{nil, "a", 6, "every database changed, a too"},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		if got := get(st.db); got != st.wantV {
			t.Errorf("%s: got fetch #%d, want #%d", st.reason, got, st.wantV)
		}
	}
}

func TestDecisionOfSystemCatalogs(t *testing.T) {
	pol, err := policy.Parse("p.yaml", []byte(`version: 1
columns:
  public.t:
    secret: {category: special}
roles:
  r:
    match: {users: [u]}
    actions: {special: block}
    unclassified: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	role := pol.Roles[0]
	tests := []struct {
		rel    policy.TableName
		column string
		want   policy.Action
	}{
		{policy.TableName{Schema: "pg_catalog", Table: "pg_class"}, "relname", policy.Allow},
		{policy.TableName{Schema: "pg_catalog", Table: "pg_statistic"}, "stavalues1", policy.Block},
		{policy.TableName{Schema: "pg_catalog", Table: "pg_stat_activity"}, "query", policy.Block},
		{policy.TableName{Schema: "public", Table: "t"}, "secret", policy.Block},
		{policy.TableName{Schema: "public", Table: "t"}, "other", policy.Allow},
	}
	for _, tt := range tests {
		if got := Decision(pol, role, &Relation{Root: tt.rel, Name: tt.rel}, tt.column); got.Action != tt.want {
			t.Errorf("%s.%s: %v, want %v", tt.rel, tt.column, got.Action, tt.want)
		}
	}
}
