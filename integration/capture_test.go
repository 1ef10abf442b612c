package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// The server log (log_statement = 'all', log_line_prefix '%m [%p] ') is
// where the statements clients really sent through the proxy are read
// from: every entry starts with a timestamped line and continues until
// the next one.
var (
	logEntryStart = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] ([A-Z]+\d?):  (.*)$`)
	logAuthorized = regexp.MustCompile(`^connection authorized: user=(\S+) database=(\S+)(?: application_name=(.*?))?(?: SSL enabled.*)?$`)
	logExecute    = regexp.MustCompile(`(?s)^execute (?:fetch from )?([^:]*): (.*)$`)
)

// loggedStatement is one statement the server logged for a client session.
type loggedStatement struct {
	PID, User, Database, App string
	// Portal is "" for the simple query protocol, else the prepared
	// statement's name ("<unnamed>", "S_1", …).
	Portal string
	Text   string
}

// pgLogOffset is the current end of the server log.
// proxyClientSettingsQuery is the query a restricted login asks the
// server which settings the startup packet set with.
const proxyClientSettingsQuery = "SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'client'"

func pgLogOffset(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(shared.stack.PG.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// serverStatements returns the statements the server logged after offset
// from in sessions authorised as user, in log order. The proxy's lookup
// connections log in as the auth user and so never count; what the proxy
// itself sends on a client's session (SHOW search_path before the client's
// first statement, and the server-side checks on its own portals) is left
// out.
func serverStatements(t testing.TB, from int64, user string) []loggedStatement {
	t.Helper()
	f, err := os.Open(shared.stack.PG.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	type entry struct{ pid, level, msg string }
	var entries []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := logEntryStart.FindStringSubmatch(line); m != nil {
			entries = append(entries, entry{m[1], m[2], m[3]})
		} else if len(entries) > 0 {
			// The server indents continuation lines with a tab.
			entries[len(entries)-1].msg += "\n" + strings.TrimPrefix(line, "\t")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sessions := map[string]*loggedStatement{} // pid → session of user
	seen := map[string]int{}
	var out []loggedStatement
	for _, e := range entries {
		if e.level != "LOG" {
			continue
		}
		if m := logAuthorized.FindStringSubmatch(e.msg); m != nil {
			if m[1] == user {
				sessions[e.pid] = &loggedStatement{PID: e.pid, User: m[1], Database: m[2], App: m[3]}
			} else {
				delete(sessions, e.pid)
			}
			continue
		}
		s := sessions[e.pid]
		if s == nil {
			continue
		}
		st := *s
		if text, ok := strings.CutPrefix(e.msg, "statement: "); ok {
			st.Text = text
		} else if m := logExecute.FindStringSubmatch(e.msg); m != nil {
			st.Portal, st.Text = m[1], m[2]
		} else {
			continue
		}
		seen[e.pid]++
		if seen[e.pid] <= 2 && st.Portal == "" && (st.Text == "SHOW search_path" || st.Text == proxyClientSettingsQuery) {
			// The proxy's own, at login: the settings the startup packet
			// set, and the search_path it tracks.
			continue
		}
		if strings.HasPrefix(st.Portal, "pgpseudo_") {
			continue // the proxy's server-side check of a statement
		}
		st.Text = strings.TrimSpace(st.Text)
		out = append(out, st)
	}
	return out
}

// The captured statements live beside the analysis corpus; PGPSEUDO_CAPTURE=1
// rewrites them.
const (
	capturedDir    = "../policy/analyze/testdata/captured"
	capturedSep    = "-- next"
	captureEnvVar  = "PGPSEUDO_CAPTURE"
	capturedHeader = `-- Statements %s sent to PostgreSQL through pgpseudo (%s),
-- captured from the server log by integration/capture_test.go; run it
-- with PGPSEUDO_CAPTURE=1 to rewrite this file. Without that variable the
-- test fails when a client sends a statement missing here, and
-- policy/analyze/captured_test.go asserts that each one is allowed.
--
-- One statement (query string) per entry, each after a line "-- next",
-- deduplicated, in the order the client first sent it, so that session
-- state (search_path) evolves as it did; object OIDs are those of the
-- capturing run (entries differing only in them count as the same).
`
)

// readCaptured returns the entries of a captured file.
func readCaptured(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(b), "\n"+capturedSep+"\n")
	var out []string
	for _, p := range parts[1:] { // parts[0] is the header
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// clientStatement undoes the proxy's digest ordering in a statement the
// server ran, so that it reads as the client sent it (deparsed):
// SELECT * FROM (q) pgpseudo_q ORDER BY <digest> is q, COPY of such a
// query over ONLY a table is COPY of that table.
func clientStatement(s string) string {
	if !strings.Contains(s, sqlinfo.DigestAlias) {
		return s
	}
	tree, err := pg_query.Parse(s)
	if err != nil {
		return s
	}
	unwrap := func(n *pg_query.Node) *pg_query.Node {
		sel := n.GetSelectStmt()
		if sel == nil || len(sel.GetFromClause()) != 1 || len(sel.GetSortClause()) != 1 || sel.GetLimitCount() != nil {
			return nil
		}
		sub := sel.GetFromClause()[0].GetRangeSubselect()
		if sub == nil || sub.GetAlias().GetAliasname() != sqlinfo.DigestAlias {
			return nil
		}
		inner := sub.GetSubquery()
		if is := inner.GetSelectStmt(); is != nil {
			// The hidden columns the wrapper adds (sort keys, row positions).
			is.TargetList = slices.DeleteFunc(is.TargetList, func(t *pg_query.Node) bool {
				return strings.HasPrefix(t.GetResTarget().GetName(), sqlinfo.DigestAlias+"_")
			})
		}
		return inner
	}
	for _, raw := range tree.GetStmts() {
		if inner := unwrap(raw.GetStmt()); inner != nil {
			raw.Stmt = inner
			continue
		}
		c := raw.GetStmt().GetCopyStmt()
		if c == nil || c.GetQuery() == nil {
			continue
		}
		inner := unwrap(c.GetQuery())
		if inner == nil {
			continue
		}
		c.Query = inner
		sel := inner.GetSelectStmt()
		if rv := sel.GetFromClause()[0].GetRangeVar(); len(sel.GetFromClause()) == 1 && rv != nil && !rv.GetInh() {
			c.Query, c.Relation = nil, rv
			rv.Inh = true
			for _, t := range sel.GetTargetList() {
				if f := t.GetResTarget().GetVal().GetColumnRef().GetFields(); len(f) == 1 && f[0].GetString_() != nil {
					c.Attlist = append(c.Attlist, f[0])
				}
			}
		}
	}
	if out, err := pg_query.Deparse(tree); err == nil {
		return out
	}
	return s
}

// deparsed is s as PostgreSQL's deparser writes it.
func deparsed(s string) string {
	tree, err := pg_query.Parse(s)
	if err != nil {
		return s
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return s
	}
	return out
}

// oidLiteral matches numbers that may be object OIDs of the capturing
// cluster (FirstNormalObjectId is 16384): they differ between runs.
var oidLiteral = regexp.MustCompile(`\b\d{5,10}\b`)

// captureKey is a statement's identity for deduplication and comparison:
// its text with OIDs of user objects replaced.
func captureKey(stmt string) string {
	return oidLiteral.ReplaceAllStringFunc(stmt, func(n string) string {
		var v uint64
		fmt.Sscan(n, &v)
		if v >= 16384 && v < 1<<32 {
			return "<oid>"
		}
		return n
	})
}

// dedupe keeps the first statement of every key, in order.
func dedupe(stmts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range stmts {
		if k := captureKey(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// psqlEchoed returns the queries psql -E printed.
func psqlEchoed(out string) []string {
	var qs []string
	for _, block := range strings.Split(out, "********* QUERY **********\n")[1:] {
		q, _, ok := strings.Cut(block, "\n**************************\n")
		if ok {
			qs = append(qs, strings.TrimSpace(q))
		}
	}
	return qs
}

// TestCaptureClientQueries runs real clients through the proxy with the
// sample policy — psql's describe commands and pg_dump as dev_max, pgJDBC's
// DatabaseMetaData (JdbcMeta) as bi_jane — and reads the statements the
// server executed for their sessions from its log. With PGPSEUDO_CAPTURE=1
// it rewrites policy/analyze/testdata/captured/*.sql; otherwise every
// captured statement must already be there (a client that starts sending
// other queries is noticed, and its queries checked by the analysis tests
// once captured).
func TestCaptureClientQueries(t *testing.T) {
	customers := kunden(t)
	cp := compileJdbcMeta(t)
	p := policyProxy(t, samplePolicy)
	psqlCmds := []string{`\dt`, `\d customers`, `\d+ customers`, `\dv`, `\df`, `\l`, `\dn`}

	for _, c := range []struct {
		name, user string
		// run runs the client; it returns the client's version and
		// checks the client's own output against what was captured.
		run func(t *testing.T) (version string, check func(t *testing.T, captured []string))
	}{
		{"psql", userDev, func(t *testing.T) (string, func(*testing.T, []string)) {
			args := []string{"-X", "-E", "-v", "ON_ERROR_STOP=1"}
			for _, cmd := range psqlCmds {
				args = append(args, "-c", cmd)
			}
			out, errOut, err := runTool(t, time.Minute, "psql", libpqEnv(p.port, userDev, samplePass, dbKunden), args...)
			if err != nil {
				t.Fatalf("psql: %v\n%s", err, errOut)
			}
			assertNoLeak(t, "psql output", out, customers)
			echoed := psqlEchoed(out)
			return toolVersion(t, "psql"), func(t *testing.T, captured []string) {
				// The log holds exactly the queries psql says it sent.
				if len(echoed) < len(psqlCmds) || !slices.Equal(echoed, captured) {
					t.Fatalf("psql -E echoed %d queries, the server log has %d for the session; they differ:\n%q\n%q",
						len(echoed), len(captured), echoed, captured)
				}
			}
		}},
		{"pg_dump", userDev, func(t *testing.T) (string, func(*testing.T, []string)) {
			archive := filepath.Join(t.TempDir(), "kunden.dump")
			_, errOut, err := runTool(t, 5*time.Minute, "pg_dump", libpqEnv(p.port, userDev, samplePass, dbKunden), "-Fc", "-f", archive)
			if err != nil {
				t.Fatalf("pg_dump through the proxy: %v\n%s", err, errOut)
			}
			script, errOut, err := runTool(t, time.Minute, "pg_restore", nil, "-f", "-", archive)
			if err != nil {
				t.Fatalf("pg_restore -f -: %v\n%s", err, errOut)
			}
			assertNoLeak(t, "pg_dump archive", script, customers)
			return toolVersion(t, "pg_dump"), func(t *testing.T, captured []string) {
				if len(captured) < 20 || !strings.Contains(captured[0], "set_config('search_path', '', false)") ||
					!slices.ContainsFunc(captured, func(s string) bool { return strings.HasPrefix(s, "COPY public.customers") }) {
					t.Fatalf("pg_dump: %d statements captured, want its search_path reset first and the COPY of customers:\n%q", len(captured), captured)
				}
			}
		}},
		{"pgjdbc", userBI, func(t *testing.T) (string, func(*testing.T, []string)) {
			out := runJdbcMeta(t, cp, p, userBI)
			assertNoLeak(t, "JdbcMeta output", out, customers)
			version := "pgJDBC"
			if rows := parseJdbcOutput(t, out)["product"]; len(rows) == 1 {
				version = "pgJDBC " + rows[0]["DRIVER"]
			}
			return version, func(t *testing.T, captured []string) {
				if len(captured) < 8 || !slices.Contains(captured, "SELECT * FROM customers") {
					t.Fatalf("pgJDBC: %d statements captured, want the metadata queries and the SELECT:\n%q", len(captured), captured)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := pgLogOffset(t)
			version, check := c.run(t)
			var captured []string
			for _, s := range serverStatements(t, from, c.user) {
				captured = append(captured, clientStatement(s.Text))
			}
			check(t, captured)
			captured = dedupe(captured)
			path := filepath.Join(capturedDir, c.name+".sql")
			if os.Getenv(captureEnvVar) == "1" {
				writeCaptured(t, path, c.name, version, captured)
				return
			}
			have, err := readCaptured(path)
			if err != nil {
				t.Fatalf("%v (run with %s=1 to capture)", err, captureEnvVar)
			}
			known := map[string]bool{}
			for _, s := range have {
				known[captureKey(s)] = true
				known[captureKey(deparsed(s))] = true // as clientStatement writes it
			}
			missing := 0
			for _, s := range captured {
				if !known[captureKey(s)] {
					missing++
					t.Errorf("%s sent a statement that %s lacks:\n%s", c.name, path, s)
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d statements are new (%s); run with %s=1, review the diff, and run go test ./policy/analyze/",
					missing, len(captured), version, captureEnvVar)
			}
			t.Logf("%s (%s): %d distinct statements, all in %s", c.name, version, len(captured), path)
		})
	}
}

// writeCaptured rewrites a captured file. Entries whose key an existing
// entry already has keep that entry's text, so a rerun only shows what
// changed.
func writeCaptured(t *testing.T, path, client, version string, stmts []string) {
	t.Helper()
	old, _ := readCaptured(path)
	prev := map[string]string{}
	for _, s := range old {
		prev[captureKey(s)] = s
	}
	var b strings.Builder
	fmt.Fprintf(&b, capturedHeader, client, version)
	for _, s := range stmts {
		if strings.Contains("\n"+s+"\n", "\n"+capturedSep+"\n") {
			t.Fatalf("statement contains the separator line: %q", s)
		}
		if o, ok := prev[captureKey(s)]; ok {
			s = o
		}
		b.WriteString(capturedSep + "\n" + s + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d statements of %s to %s", len(stmts), version, path)
}

// toolVersion is the first line of a PostgreSQL client's --version.
func toolVersion(t *testing.T, name string) string {
	t.Helper()
	out, errOut, err := runTool(t, time.Minute, name, nil, "--version")
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", name, err, errOut)
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}
