package sqlinfo

import (
	"slices"
	"testing"
)

func TestCatalogOnly(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT c.relname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid", true},
		{"SELECT pg_catalog.pg_get_viewdef('public.v'::pg_catalog.regclass)", true},
		{"WITH x AS (SELECT oid FROM pg_catalog.pg_class) SELECT * FROM x", true},
		{"SELECT table_name FROM information_schema.columns", true},
		{"SELECT 1", true},
		{"SELECT * FROM customers", false},
		{"SELECT * FROM public.customers", false},
		{"SELECT relname FROM pg_class", true}, // if pg_class is verified
		{"SELECT query_to_xml('select * from customers', true, true, '')", false},
		{"SELECT pg_catalog.query_to_xml('select 1', true, true, '')", false},
		{"SELECT * FROM pg_catalog.pg_stats", false},
		{"SELECT myschema.f()", false},
		{"SELECT pg_catalog.pg_read_file('/etc/passwd')", false},
		{"SELECT (SELECT full_name FROM customers LIMIT 1)", false},
		{"SELECT * FROM pg_catalog.pg_class WHERE relname IN (SELECT full_name FROM customers)", false},
		{"UPDATE customers SET x = 1", false},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Fatalf("%s: %v", tt.sql, err)
		}
		if st[0].CatalogOnly != tt.want || tt.sql == "SELECT relname FROM pg_class" && (len(st[0].CatalogNames) != 1 || st[0].CatalogNames[0] != "pg_class") {
			t.Errorf("CatalogOnly(%q) = %v, want %v", tt.sql, st[0].CatalogOnly, tt.want)
		}
	}
}

func TestCopy(t *testing.T) {
	tests := []struct {
		sql       string
		probe     string
		format    string
		delim     byte
		null      string
		header    bool
		unsupport bool
	}{
		{"COPY public.customers (customer_id, full_name) TO stdout;", `SELECT "customer_id", "full_name" FROM ONLY "public"."customers"`, "text", '\t', `\N`, false, false},
		{`COPY "Orders" TO STDOUT WITH (FORMAT csv, HEADER)`, `SELECT * FROM ONLY "Orders"`, "csv", ',', "", true, false},
		{"COPY (SELECT full_name FROM customers WHERE customer_id < 10) TO STDOUT (FORMAT binary)", "SELECT full_name FROM customers WHERE customer_id < 10", "binary", '\t', `\N`, false, false},
		{"COPY customers TO STDOUT (FORMAT csv, FORCE_QUOTE *)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, false},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER 'TRUE')", `SELECT * FROM ONLY "customers"`, "csv", ',', "", true, false},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER Off)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, false},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER yes)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, true},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER 0)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, false},
		{"COPY customers TO STDOUT (FORMAT text, HEADER 1)", `SELECT * FROM ONLY "customers"`, "text", '\t', `\N`, true, false},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER o)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, true},
		{"COPY customers TO STDOUT (FORMAT csv, HEADER match)", `SELECT * FROM ONLY "customers"`, "csv", ',', "", false, true},
		{"COPY customers TO STDOUT WITH DELIMITER '|' NULL 'nil'", `SELECT * FROM ONLY "customers"`, "text", '|', "nil", false, false},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		c := st[0].Copy
		if c == nil || st[0].Kind != "Copy" {
			t.Fatalf("%s: not a COPY TO STDOUT: %+v", tt.sql, st[0])
		}
		if c.ProbeQuery() != tt.probe || c.Format != tt.format || c.Delimiter != tt.delim || c.NullString != tt.null || c.Header != tt.header || (c.Unsupported != "") != tt.unsupport {
			t.Errorf("%s: %+v probe %q", tt.sql, c, c.ProbeQuery())
		}
	}
	st, _ := Parse("COPY customers (email, city) TO STDOUT (FORMAT csv, FORCE_QUOTE (email, \"City\"))")
	if c := st[0].Copy; c.ForceQuoteAll || !slices.Equal(c.ForceQuote, []string{"email", "City"}) {
		t.Errorf("FORCE_QUOTE (email, \"City\"): %v %v", c.ForceQuoteAll, c.ForceQuote)
	}
	st, _ = Parse("COPY customers FROM STDIN")
	if st[0].Copy != nil {
		t.Error("COPY FROM reported as COPY TO")
	}
	if _, err := Parse("SELEC 1"); err == nil {
		t.Error("syntax error not reported")
	}
	st, _ = Parse("SELECT 1; COPY t TO STDOUT")
	if len(st) != 2 || st[1].Copy == nil {
		t.Errorf("multi-statement: %+v", st)
	}
}

func TestComputedSafe(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT count(*) FROM customers", true},
		{"SELECT customer_id, full_name, count(*) FROM customers GROUP BY 1, 2", true},
		{"SELECT 1, now(), 'x' || 'y'", true},
		{"SELECT x FROM (SELECT customer_id AS x FROM customers) s", true},
		{"SELECT customer_id + 0 FROM customers", false},
		{"SELECT sum(amount) FROM orders", false},
		{"SELECT count(DISTINCT customer_id) FROM orders", false},
		{"SELECT x FROM (SELECT customer_id + 0 AS x FROM customers) s", false},
		{"SELECT (SELECT customer_id FROM customers LIMIT 1)", false},
		{"SELECT customer_id FROM customers UNION SELECT 0", false},
		{"SELECT * FROM unnest(ARRAY(SELECT customer_id FROM customers))", false},
		{"SELECT row_to_json(c) FROM customers c", false},
		{"SET search_path = public", true},
		{"EXECUTE p(1)", false},
		{"FETCH ALL FROM c", false},
		{"DECLARE c CURSOR FOR SELECT customer_id + 0 FROM customers", false},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		if st[0].ComputedSafe != tt.want {
			t.Errorf("ComputedSafe(%q) = %v, want %v", tt.sql, st[0].ComputedSafe, tt.want)
		}
	}
}

func TestLight(t *testing.T) {
	st, err := Light("/* c */ select 1; -- x\n  (SELECT 2); COPY t TO STDOUT")
	if err != nil {
		t.Fatal(err)
	}
	full, _ := Parse("select 1")
	if len(st) != 3 || st[0].Kind != "Select" || st[1].Kind != "Select" || st[2].Kind != "Copy" || st[0].Fingerprint != full[0].Fingerprint {
		t.Fatalf("Light = %+v", st)
	}
}
