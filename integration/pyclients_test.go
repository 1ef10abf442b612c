package integration

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runPyClient runs testdata/pyclients.py for one library with Debian's
// python3 (make deps installs the packages).
func runPyClient(t *testing.T, p *runningProxy, mode, pkg string, ref probeReference) probeRows {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "pyclients.py"))
	if err != nil {
		t.Fatal(err)
	}
	got := runClientProbe(t, mode, "`make deps` installs "+pkg, kunden(t), debianPython, script, mode, p.dsn(userBI, samplePass, dbKunden))
	checkCommonProbes(t, mode, got, ref)
	return got
}

// TestPsycopg2: psycopg2 reads tokens, joins on the customer token domain,
// sees the refusal's 42501 and goes on; a named (server-side) cursor
// fetched itersize rows at a time and copy_expert's COPY (SELECT …) TO
// STDOUT WITH CSV return the same rewritten rows as a plain query.
func TestPsycopg2(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ref := referenceFor(t, p, customers)
	from := pgLogOffset(t)
	got := runPyClient(t, p, "psycopg2", "python3-psycopg2", ref)

	named := got["named"]
	if len(named) != len(customers) {
		t.Errorf("named cursor: %d rows, want %d", len(named), len(customers))
	}
	for _, r := range named {
		if len(r) != 3 {
			t.Fatalf("named cursor: row %q", rowStrings([][]*string{r}))
		}
		if want, ok := ref.customers[probeValue(r[0])]; !ok || probeValue(r[1]) != want[1] || r[2] != nil {
			t.Errorf("named cursor: row %q, want customer %s with e-mail token %q and religion NULL", rowStrings([][]*string{r}), probeValue(r[0]), want)
		}
	}
	// It was a server-side cursor, fetched itersize (7) rows at a time.
	sawStatement(t, "named cursor", from, func(s loggedStatement) bool {
		return strings.HasPrefix(s.Text, "DECLARE probe_cur CURSOR FOR SELECT") // as the proxy deparsed it
	})
	sawStatement(t, "named cursor", from, func(s loggedStatement) bool {
		return s.Text == `FETCH FORWARD 7 FROM "probe_cur"`
	})

	checkTokenRows(t, "copy_expert CSV", got["copy"], ref)
}

// TestSQLAlchemy: SQLAlchemy (on psycopg2) reflects the sample schema
// through the proxy (its pg_catalog queries), and its Core select() of
// the reflected tables joins orders to customers on the customer token
// domain and groups by it; a Core where() on the blocked column is
// refused with 42501.
func TestSQLAlchemy(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ref := referenceFor(t, p, customers)
	got := runPyClient(t, p, "sqlalchemy", "python3-sqlalchemy and python3-psycopg2", ref)

	var tables []string
	for _, r := range rowStrings(got["tables"]) {
		tables = append(tables, r[0])
	}
	// Other tests add tables of their own: the sample's must be there.
	for _, want := range []string{"customers", "health_records", "orders", "payments", "support_tickets"} {
		if !slices.Contains(tables, want) {
			t.Errorf("get_table_names() = %q, without %q", tables, want)
		}
	}
	want := [][]string{
		{"customer_id", "INTEGER", "False"}, {"full_name", "TEXT", "False"}, {"email", "TEXT", "False"},
		{"phone", "TEXT", "True"}, {"street", "TEXT", "True"}, {"postal_code", "TEXT", "True"},
		{"city", "TEXT", "True"}, {"birth_date", "DATE", "True"}, {"iban", "TEXT", "True"},
		{"religion", "TEXT", "True"}, {"created_at", "TIMESTAMP", "False"}, {"newsletter", "BOOLEAN", "False"},
	}
	if cols := rowStrings(got["columns"]); !slices.EqualFunc(cols, want, slices.Equal) {
		t.Errorf("get_columns('customers') = %q, want %q", cols, want)
	}
}

// TestPandas: pandas.read_sql through SQLAlchemy gets tokens (with the
// key as int64), the join, a parameterised query and the refusal.
func TestPandas(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ref := referenceFor(t, p, customers)
	got := runPyClient(t, p, "pandas", "python3-pandas and python3-sqlalchemy", ref)

	for label, want := range map[string][][]string{
		"tokens.dtypes": {{"customer_id", "int64"}, {"full_name", "object"}, {"email", "object"}, {"city", "object"}, {"religion", "object"}},
		"join.dtypes":   {{"customer_id", "int64"}, {"n", "int64"}},
		"after.dtypes":  {{"count", "int64"}},
	} {
		if have := rowStrings(got[label]); !slices.EqualFunc(have, want, slices.Equal) {
			t.Errorf("%s = %q, want %q", label, have, want)
		}
	}
	checkCityRows(t, "read_sql with params city=Berlin", got["bycity"], "Berlin", ref)
}
