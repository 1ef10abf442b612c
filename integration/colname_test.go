package integration

import (
	"context"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// TestColumnNamesMatchServer: the names pgpseudo gives select-list items
// written without AS are the names the server puts in RowDescription.
// Name resolution of outer queries depends on them (a scalar subquery is
// named after its column), so where the port is certain it must agree
// with the server on every expression here; where it is not, the
// analysis treats the name as unknown.
func TestColumnNamesMatchServer(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	c := connect(t, directDSN(userBI, samplePass, dbKunden))
	exprs := []string{
		"email", "c.email", "public.customers.email", "(c).email", "(c.*).email", "email(c)",
		"email::text", "CAST(email AS varchar)", "email::varchar(10)::text", "email COLLATE \"C\"",
		"upper(email)", "pg_catalog.upper(email)", "lower(c.email)", "email || ''", "-customer_id", "customer_id + 1",
		"(SELECT email FROM customers LIMIT 1)", "(SELECT k.email FROM customers k LIMIT 1)",
		"(SELECT upper(email) FROM customers LIMIT 1)", "(SELECT 1)", "(SELECT * FROM (SELECT email) s)",
		"EXISTS (SELECT 1)", "ARRAY(SELECT email FROM customers)", "ARRAY[email]", "(ARRAY[email])[1]",
		"CASE WHEN true THEN email END", "CASE WHEN true THEN email ELSE city END::text", "coalesce(email, city)",
		"nullif(email, city)", "greatest(email, city)", "least(email, city)", "ROW(email, city)", "(email, city)",
		"(ROW(email, city)).f1", "email IS NULL", "email IS DISTINCT FROM city", "NOT newsletter", "newsletter AND true",
		"email = city", "email LIKE 'a%'", "email IN ('a')", "customer_id BETWEEN 1 AND 2", "1", "'x'", "'x'::text",
		"NULL", "true", "1.5", "$$x$$", "B'101'", "x'1f'", "interval '1 day'", "date '2020-01-01'",
		"current_date", "current_timestamp", "current_user", "session_user", "current_role", "user", "current_catalog",
		"current_schema", "localtime", "localtimestamp(2)", "current_time", "extract(year FROM birth_date)",
		"substring(email FROM 1 FOR 2)", "position('@' IN email)", "overlay(email PLACING 'x' FROM 1)", "trim(email)",
		"trim(both 'a' FROM email)", "email IS NFC NORMALIZED", "normalize(email)", "collation for (email)",
		"xmlelement(name a, email)", "xmlforest(email)", "xmlconcat(xmlelement(name a))", "xmlroot(xmlelement(name a), version '1.0')",
		"xmlparse(content email)", "xmlserialize(content xmlelement(name a) AS text)", "xmlexists('/a' PASSING xmlelement(name a))",
		"count(*)", "count(email)", "sum(customer_id)", "max(email) FILTER (WHERE true)", "string_agg(email, ',' ORDER BY email)",
		"row_number() OVER ()", "rank() OVER (ORDER BY email)", "percentile_disc(0.5) WITHIN GROUP (ORDER BY customer_id)",
		"grouping(email)", "email::json", "to_json(email)", "to_jsonb(c) ->> 'email'", "to_jsonb(c) -> 'email'",
		"(to_jsonb(c) ->> 'email')::text", "json_build_object('a', email)", "c", "c.*::text", "customers",
		"email(c)::text", "array_agg(email)", "(array_agg(email))[1]", "unnest(ARRAY[email])",
		"generate_series(1, 2)", "pg_catalog.generate_series(1, 2)", "U&\"\\0065mail\"", "\"email\"",
		"(email)", "((email))", "email::text::text", "+customer_id", "customer_id::int8 * 2", "@ customer_id",
		"customer_id IS NOT NULL", "email ~ 'a'", "email SIMILAR TO 'a'", "email NOT ILIKE 'a'", "OPERATOR(pg_catalog.||)(email, city)",
		"email AT TIME ZONE 'UTC'", "created_at AT TIME ZONE 'UTC'", "customer_id = ANY (ARRAY[1])", "customer_id > ALL (SELECT 1)",
		"email::regclass IS NULL", "(SELECT email) IS NULL", "(SELECT email)::text", "(SELECT (SELECT email))",
		"(WITH x AS (SELECT email) SELECT email FROM x)", "(SELECT email UNION SELECT city)", "(VALUES (email))",
		"(SELECT a FROM (VALUES (email)) v(a))", "(SELECT column1 FROM (VALUES (email)) v)", "system_user",
		"json_object('{a,b}')", "json_array_length('[]')", "xmltext('a')",
	}
	checked, certain := 0, 0
	for _, e := range exprs {
		q := "SELECT " + e + " FROM customers c"
		tree, err := pg_query.Parse(q)
		if err != nil {
			t.Errorf("%s: pgpseudo's parser: %v", q, err)
			continue
		}
		target := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget()
		ours, sure := sqlinfo.ColumnName(target.Val)
		sd, err := c.PgConn().Prepare(ctx, "", q, nil)
		if err != nil {
			// The server rejects the expression (not valid in 15): nothing to compare.
			continue
		}
		checked++
		theirs := string(sd.Fields[0].Name)
		if !sure {
			t.Logf("%s: uncertain %q, server %q", e, ours, theirs)
			continue
		}
		certain++
		if ours != theirs {
			t.Errorf("%s: pgpseudo names it %q, the server %q", e, ours, theirs)
		}
	}
	if certain < 100 {
		t.Errorf("only %d of %d expressions compared with a certain name", certain, checked)
	}
	t.Logf("%d expressions compared, %d with a certain name", checked, certain)
}
