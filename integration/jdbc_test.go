package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pgJDBC from Debian's libpostgresql-jdbc-java (make deps installs it);
// PGPSEUDO_PGJDBC_JAR points elsewhere.
const defaultPgJDBCJar = "/usr/share/java/postgresql.jar"

// jdbcRuns is how often JdbcMeta executes its PreparedStatement: more than
// pgJDBC's prepareThreshold (5), so the last runs use a named server-side
// statement and binary result formats.
const jdbcRuns = 7

func pgJDBCJar() string {
	if j := os.Getenv("PGPSEUDO_PGJDBC_JAR"); j != "" {
		return j
	}
	return defaultPgJDBCJar
}

// compileJdbcMeta compiles testdata/JdbcMeta.java and returns the class
// path to run it with. A missing JDK or driver fails the test: make deps
// installs the driver.
func compileJdbcMeta(t *testing.T) string {
	t.Helper()
	jar := pgJDBCJar()
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("pgJDBC driver missing (%v): `make deps` installs Debian's libpostgresql-jdbc-java", err)
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Fatalf("javac missing (%v): a JDK (17) is needed for the pgJDBC tests; `make deps` installs the driver", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := filepath.Abs(filepath.Join("testdata", "JdbcMeta.java"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, javac, "-cp", jar, "-d", dir, src).CombinedOutput(); err != nil {
		t.Fatalf("javac JdbcMeta.java: %v\n%s", err, out)
	}
	return jar + string(os.PathListSeparator) + dir
}

// runJdbcMeta runs JdbcMeta through the proxy as user and returns what it
// printed; it fails the test unless the program exits 0.
func runJdbcMeta(t *testing.T, classPath string, p *runningProxy, user string) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := fmt.Sprintf("jdbc:postgresql://127.0.0.1:%s/%s", p.port, dbKunden)
	// user.home keeps pgJDBC away from a real ~/.postgresql.
	cmd := exec.CommandContext(ctx, java, "-Duser.home="+t.TempDir(), "-cp", classPath, "JdbcMeta",
		url, user, samplePass, fmt.Sprint(jdbcRuns))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("JdbcMeta as %s: %v\nstderr:\n%s\nstdout (tail):\n%s", user, err, errb.String(), tail(out.String(), 3000))
	}
	return out.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// jdbcRow is one printed result row: column label → value.
type jdbcRow map[string]string

// parseJdbcOutput groups JdbcMeta's lines by label.
func parseJdbcOutput(t *testing.T, out string) map[string][]jdbcRow {
	t.Helper()
	res := map[string][]jdbcRow{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fields := strings.Split(line, "\t")
		row := jdbcRow{}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				t.Fatalf("JdbcMeta printed %q", line)
			}
			row[strings.ToUpper(k)] = v // labels are folded as PostgreSQL folds aliases
		}
		res[fields[0]] = append(res[fields[0]], row)
	}
	return res
}

func column(rows []jdbcRow, name string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[name])
	}
	return out
}

// TestJDBCMetadataAndPreparedStatements: pgJDBC's DatabaseMetaData calls
// work for a restricted role through the proxy, and a PreparedStatement
// run past prepareThreshold (server-side statement, binary formats) gives
// the same rewritten values as its first runs, with the special-category
// column as NULL and no personal value anywhere.
func TestJDBCMetadataAndPreparedStatements(t *testing.T) {
	customers := kunden(t)
	cp := compileJdbcMeta(t)
	p := policyProxy(t, samplePolicy)
	from := pgLogOffset(t)
	out := runJdbcMeta(t, cp, p, userBI)
	assertNoLeak(t, "JdbcMeta output", out, customers)
	got := parseJdbcOutput(t, out)

	// Each metadata call describes the sample database, completely: no
	// value withheld (a NOTICE, which pgJDBC reports as a warning).
	for _, tt := range []struct {
		label, column string
		want          []string
	}{
		{"tables", "TABLE_NAME", []string{"customers", "health_records", "orders", "payments", "support_tickets"}},
		{"columns", "COLUMN_NAME", []string{"customer_id", "full_name", "email", "phone", "street", "postal_code",
			"city", "birth_date", "iban", "religion", "created_at", "newsletter"}},
		{"primarykeys", "PK_NAME", []string{"customers_pkey"}},
		{"importedkeys", "FK_NAME", []string{"orders_customer_id_fkey"}},
		{"importedkeys", "PKTABLE_NAME", []string{"customers"}},
		{"indexinfo", "INDEX_NAME", []string{"customers_email_key", "customers_pkey"}},
		{"schemas", "TABLE_SCHEM", []string{"pg_catalog", "public"}},
		{"typeinfo", "TYPE_NAME", []string{"int4", "text", "date", "timestamptz", "bool"}},
	} {
		have := column(got[tt.label], tt.column)
		for _, w := range tt.want {
			if !slices.Contains(have, w) {
				t.Errorf("%s: %s %q missing; got %q", tt.label, tt.column, w, have)
			}
		}
		if w := got[tt.label+".warning"]; len(w) > 0 {
			t.Errorf("%s: notices %q", tt.label, column(w, "MESSAGE"))
		}
	}
	if cols := column(got["columns"], "COLUMN_NAME"); len(cols) != 12 {
		t.Errorf("getColumns(customers) returned %d columns, want 12: %q", len(cols), cols)
	}

	// Every run returns every customer, religion as NULL; the rows of the
	// text-format runs and the binary-format runs are the same.
	var first []string
	for run := 1; run <= jdbcRuns; run++ {
		rows := got[fmt.Sprintf("run%d", run)]
		if len(rows) != len(customers) {
			t.Fatalf("run %d: %d rows, want %d", run, len(rows), len(customers))
		}
		var lines []string
		for _, r := range rows {
			if r["RELIGION"] != "null" {
				t.Fatalf("run %d: religion = %q, want null", run, r["RELIGION"])
			}
			if r["EMAIL"] == "null" || r["CUSTOMER_ID"] == "null" || r["CITY"] == "null" {
				t.Fatalf("run %d: row %v lacks values", run, r)
			}
			lines = append(lines, fmt.Sprint(r))
		}
		slices.Sort(lines)
		if run == 1 {
			first = lines
		} else if !slices.Equal(lines, first) {
			t.Fatalf("run %d returned other values than run 1 (text vs. binary formats?):\n%s\nvs\n%s", run, lines[0], first[0])
		}
	}

	// The paged portal returns every customer, tokenized; the drill-down
	// on the first run's first token finds that customer.
	if f := got["fetch"]; len(f) != len(customers) || !strings.HasPrefix(f[0]["EMAIL"], "tk1_") {
		t.Errorf("fetchSize portal: %d rows, first %v", len(f), f[0])
	}
	token := got["token"][0]["VALUE"]
	if d := got["drill"]; len(d) != 1 || d[0]["CUSTOMER_ID"] != token {
		t.Errorf("drill-down on token %s through setInt: %v", token, d)
	}

	// The later runs really used a named server-side statement.
	named := 0
	for _, s := range serverStatements(t, from, userBI) {
		if strings.HasPrefix(s.Portal, "S_") && clientStatement(s.Text) == "SELECT * FROM customers" {
			named++
		}
	}
	if named == 0 || named >= jdbcRuns {
		t.Fatalf("server ran SELECT * FROM customers %d times as a named statement, want 1…%d (prepareThreshold crossed)", named, jdbcRuns-1)
	}
	t.Logf("%d of %d runs used the named server-side statement", named, jdbcRuns)
}
