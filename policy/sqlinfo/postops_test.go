package sqlinfo

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestLiftable(t *testing.T) {
	for _, tt := range []struct {
		sql      string
		ok       bool
		in, want string
	}{
		{`SELECT CAST("customers"."email" AS TEXT)`, true, "tk1_abc", "tk1_abc"},
		{`SELECT email::varchar(5)`, true, "tk1_abcdef", "tk1_a"},
		{`SELECT customer_id::pg_catalog.text`, true, "-12345", "-12345"},
		{`SELECT substring(email, 1, 1234)`, true, "tk1_é@x", "tk1_é@x"},
		{`SELECT substring(email, 3, 2)`, true, "tk1_é@x", "1_"},
		{`SELECT substring(email, 0, 3)`, true, "tk1_é@x", "tk"},
		{`SELECT substring(email, -2, 3)`, true, "tk1", ""},
		{`SELECT substr(email, 5)`, true, "tk1_é@x", "é@x"},
		{`SELECT left(email, 2)`, true, "tk1", "tk"},
		{`SELECT pg_catalog.left(email, 0)`, true, "tk1", ""},
		{`SELECT left(email, -1)`, false, "", ""},
		{`SELECT substring(email, 1, -1)`, false, "", ""},
		{`SELECT substring(email, 1, length(email))`, false, "", ""},
		{`SELECT substring(email FROM 'a.*')`, false, "", ""},
		{`SELECT lower(email)`, false, "", ""},
		{`SELECT email::int`, false, "", ""},
		{`SELECT email::text[]`, false, "", ""},
		{`SELECT myschema.left(email, 2)`, false, "", ""},
		{`SELECT CAST(c.* AS TEXT) FROM customers c`, false, "", ""},
		{`SELECT left(email, 3) OVER ()`, false, "", ""},
	} {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		e := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
		_, op, ok := Liftable(e)
		if ok != tt.ok {
			t.Errorf("%s: liftable %v, want %v", tt.sql, ok, tt.ok)
			continue
		}
		if ok {
			if got := string(op.Apply(nil, []byte(tt.in), oidText)); got != tt.want {
				t.Errorf("%s of %q = %q, want %q", tt.sql, tt.in, got, tt.want)
			}
		}
	}
	op := PostOp{Kind: 'c', TypeOID: oidText}
	if got := string(op.Apply(nil, []byte("ab  "), oidBpchar)); got != "ab" {
		t.Errorf("char(n) to text: %q", got)
	}
}
