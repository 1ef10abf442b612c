package analyze

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The introspection statements real clients send, captured from the
// server log by integration/capture_test.go (PGPSEUDO_CAPTURE=1 rewrites
// them): testdata/captured/<client>.sql, one query string after each line
// "-- next", in the order the client first sent it.
var capturedClients = []struct {
	file string
	min  int // fewer statements means the file was not read right
}{
	{"psql.sql", 15},
	{"pg_dump.sql", 50},
	{"pgjdbc.sql", 10},
}

func loadCaptured(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captured", file))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "\n-- next\n")
	var out []string
	for _, p := range parts[1:] { // parts[0] is the header
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// txState follows BEGIN/COMMIT/ROLLBACK as the proxy follows
// ReadyForQuery's transaction status.
func txState(t *testing.T, sql string, in bool) bool {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	for _, raw := range tree.GetStmts() {
		ts := raw.GetStmt().GetTransactionStmt()
		if ts == nil {
			continue
		}
		switch ts.GetKind() {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
			in = true
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK,
			pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			in = false
		}
	}
	return in
}

// TestCapturedClientQueries: every statement psql's describe commands,
// pg_dump and pgJDBC's DatabaseMetaData sent is allowed for the
// restricted roles, analysed in order in one session each, so that
// search_path (pg_dump empties it first) and the transaction block evolve
// as they did.
func TestCapturedClientQueries(t *testing.T) {
	cat := newTestCatalog(t)
	for _, pf := range []string{"testdata/policy.yaml", "../../configs/sample/policy.yaml"} {
		p := loadPolicy(t, pf)
		for _, roleName := range []string{"bi_analyst", "developer"} {
			for _, c := range capturedClients {
				t.Run(filepath.Base(filepath.Dir(pf))+"/"+roleName+"/"+c.file, func(t *testing.T) {
					stmts := loadCaptured(t, c.file)
					if len(stmts) < c.min {
						t.Fatalf("%d statements, want at least %d", len(stmts), c.min)
					}
					s := &Session{Keywords: pg15Keywords(t), Policy: p, Role: role(t, p, roleName), SearchPath: defaultPath(), DefaultSearchPath: defaultPath()}
					for i, sql := range stmts {
						res, err := Analyze(context.Background(), s, cat, sql)
						if err != nil {
							t.Fatalf("#%d: %v\n  sql: %s", i+1, err, sql)
						}
						if res.Refusal != nil {
							t.Errorf("#%d refused:\n  sql: %s\n  msg: %s", i+1, sql, res.Refusal.Message())
							continue
						}
						if res.SearchPathChanged {
							s.SearchPath = res.SearchPath
						}
						s.InTransaction = txState(t, sql, s.InTransaction)
					}
					t.Logf("%d statements allowed, search_path at the end %q", len(stmts), s.SearchPath)
				})
			}
		}
	}
}
