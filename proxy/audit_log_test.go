package proxy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// randomText returns strings of the kinds clients and catalogs produce:
// empty, long, invalid UTF-8, control characters, SQL.
func randomText(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("ä", r.IntN(400))
	case 2:
		b := make([]byte, r.IntN(600))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case 3:
		return "SELECT * FROM \"odd name\"; -- \x00\n\t"
	case 4:
		return strings.Repeat("x", 250+r.IntN(20))
	}
	return "customers"
}

// TestStatementRecordsAreValid: whatever the identity, statement, plan or
// server reply, the records the proxy builds are accepted by the audit
// writer (a client cannot stop the log by choosing its names).
func TestStatementRecordsAreValid(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	outcomes := []audit.Outcome{audit.OutcomeOK, audit.OutcomeRefused, audit.OutcomeError, audit.OutcomeCancelled}
	decisions := audit.Decisions()
	for i := 0; i < 5000; i++ {
		a := &stmtAudit{start: time.Now(), fingerprint: randomText(r), kind: randomText(r), rows: r.Uint64(), bytes: r.Uint64()}
		for j := r.IntN(4); j > 0; j-- {
			a.relations = append(a.relations, randomText(r))
			a.cols = append(a.cols, audit.ColumnDecision{Table: randomText(r), Column: randomText(r), Class: randomText(r),
				Decision: decisions[r.IntN(len(decisions))], Transformer: randomText(r), Domain: randomText(r), KeyVersion: r.Uint32()})
		}
		if r.IntN(2) == 0 {
			a.refusal = &audit.Refusal{Rule: randomText(r), Table: randomText(r), Column: randomText(r)}
		}
		sess := sessionRecord(r.Uint64(), randomText(r), randomText(r), randomText(r))
		ev := statementRecord(sess, a, outcomes[r.IntN(len(outcomes))], randomText(r), time.Duration(r.Int64()))
		if err := audit.Validate(ev); err != nil {
			t.Fatalf("record %d rejected: %v", i, err)
		}
	}
}

// TestAuditKind: statement kinds are written as docs/audit.md names them.
func TestAuditKind(t *testing.T) {
	for in, want := range map[string]string{"Select": "select", "Copy": "copy", "VariableSet": "set", "VariableShow": "show",
		"Transaction": "transaction", "DeclareCursor": "declare_cursor", "": "",
		// First words, for roles whose statements are not parsed.
		"Begin": "transaction", "Commit": "transaction", "Declare": "declare_cursor", "With": "select", "Table": "select"} {
		if got := auditKind(in); got != want {
			t.Errorf("auditKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUnanalysedStatementsAreMarked: a statement of a role that sees
// everything (described by sqlinfo.Light) is marked unanalysed in its
// record, so a report cannot take its empty column list for "read
// nothing"; an analysed one is not.
func TestUnanalysedStatementsAreMarked(t *testing.T) {
	light, err := sqlinfo.Light("SELECT email FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	full, err := sqlinfo.Parse("SELECT email FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	sess := audit.Session{ConnID: 1, User: "u", Role: "r", Database: "d"}
	if ev := statementRecord(sess, newStmtAudit(auditedOnly(light[0])), audit.OutcomeOK, "", time.Millisecond); !ev.Unanalysed {
		t.Error("a Light statement is not marked unanalysed")
	}
	if ev := statementRecord(sess, newStmtAudit(full[0]), audit.OutcomeOK, "", time.Millisecond); ev.Unanalysed {
		t.Error("an analysed statement is marked unanalysed")
	}
}
