package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// psqlODBC's Unicode driver from Debian's odbc-postgresql (make deps
// installs it, unixodbc and python3-pyodbc); PGPSEUDO_PSQLODBC_DRIVER
// points elsewhere.
const defaultPsqlODBCDriver = "/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so"

func psqlODBCDriver(t *testing.T) string {
	t.Helper()
	d := os.Getenv("PGPSEUDO_PSQLODBC_DRIVER")
	if d == "" {
		d = defaultPsqlODBCDriver
	}
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("psqlODBC driver missing (%v): `make deps` installs Debian's odbc-postgresql, unixodbc and python3-pyodbc", err)
	}
	return d
}

// TestODBC: psqlODBC (through pyodbc and unixODBC, a DSN-less connection
// with TLS required) reads tokens, joins on the customer token domain,
// runs a parameterised statement prepared on the server with two values,
// sees the refusal's SQLSTATE 42501 and goes on; with UseDeclareFetch=1
// the same rows come through its DECLARE … CURSOR / FETCH path.
func TestODBC(t *testing.T) {
	customers := kunden(t)
	driver := psqlODBCDriver(t)
	p := policyProxy(t, samplePolicy)
	ref := referenceFor(t, p, customers)
	script, err := filepath.Abs(filepath.Join("testdata", "odbc_probe.py"))
	if err != nil {
		t.Fatal(err)
	}
	// CommLog and Debug off: the driver writes no log files of what it
	// received.
	connstr := fmt.Sprintf("Driver={%s};Server=127.0.0.1;Port=%s;Database=%s;Uid=%s;Pwd={%s};SSLmode=require;CommLog=0;Debug=0",
		driver, p.port, dbKunden, userBI, samplePass)
	from := pgLogOffset(t)
	got := runClientProbe(t, "psqlODBC", "`make deps` installs odbc-postgresql, unixodbc and python3-pyodbc", customers, debianPython, script, connstr)
	checkCommonProbes(t, "psqlODBC", got, ref)

	for _, city := range []string{"Berlin", "Leipzig"} {
		checkCityRows(t, "psqlODBC parameterised city = "+city, got["param."+city], city, ref)
	}
	checkCityRows(t, "psqlODBC UseDeclareFetch parameterised", got["declarefetch.param"], "Berlin", ref)
	checkTokenRows(t, "psqlODBC UseDeclareFetch", got["declarefetch"], ref)

	all := serverStatements(t, from, userBI)
	var lines []string
	prepared, declared, fetched := false, false, false
	for _, s := range all {
		lower := strings.ToLower(s.Text)
		prepared = prepared || s.Portal != "" && strings.Contains(lower, "city = $1")
		// BEGIN;declare "SQL_CUR…" cursor with hold for SELECT …; FETCH …
		declared = declared || strings.Contains(lower, `declare "sql_cur`) && strings.Contains(lower, "cursor") && strings.Contains(lower, "full_name")
		fetched = fetched || strings.HasPrefix(lower, "fetch 7 in ")
		lines = append(lines, fmt.Sprintf("[%s] %s", s.Portal, shortStatement(s.Text)))
	}
	if !prepared || !declared || !fetched {
		t.Errorf("psqlODBC: prepared with $1 %v, DECLARE … CURSOR %v, FETCH 7 %v; the server ran:\n%s", prepared, declared, fetched, strings.Join(lines, "\n"))
	}
}

// checkCityRows checks rows of customer_id, email, city of a query for
// the customers in city: as many as the sample has there, each with the
// e-mail token pgx gets.
func checkCityRows(t *testing.T, what string, rows [][]*string, city string, ref probeReference) {
	t.Helper()
	if len(rows) == 0 || len(rows) != ref.cities[city] {
		t.Errorf("%s: %d rows, the sample has %d customers there", what, len(rows), ref.cities[city])
	}
	for _, r := range rows {
		if len(r) != 3 {
			t.Errorf("%s: row %q, want customer_id, email, city", what, rowStrings([][]*string{r}))
			return
		}
		want, ok := ref.customers[probeValue(r[0])]
		if !ok || probeValue(r[1]) != want[1] || probeValue(r[2]) != city || want[2] != city {
			t.Errorf("%s: row %q, want a customer in %s with its e-mail token (%q)", what, rowStrings([][]*string{r}), city, want)
		}
	}
}

// shortStatement is a logged statement's start and end.
func shortStatement(s string) string {
	if len(s) <= 240 {
		return s
	}
	return s[:120] + " … " + s[len(s)-120:]
}
