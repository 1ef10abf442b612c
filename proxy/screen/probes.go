// Package screen holds the request side's decisions that need no I/O:
// which statements of a restricted session's query string are planned on
// the server and as what text (Probes), which get the proxy's digest
// ordering and how (Ordering), and which startup parameters would set a
// locked setting (LockedStartup). The proxy runs them and does the I/O.
package screen

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Probe is one statement to plan on the server.
type Probe struct {
	// Text is the statement (the proxy prefixes EXPLAIN, or prepares it).
	Text string
	// Types are the parameter types of a Parse; NParams the number of
	// parameters the statement uses.
	Types   []uint32
	NParams int
	// Stmt is the statement's parse tree (for the check's syntax facts:
	// the analysis' parse serves them).
	Stmt *pg_query.Node
	// PlanOnly: the statement is explained, not run (EXPLAIN).
	PlanOnly bool
}

// Probes lists the statements of a query string to plan on the
// server, with their positions, or says why the string cannot be checked:
// a statement that changes the session (SET, DISCARD, transaction control
// other than BEGIN, PREPARE, …) before one that reads data would change
// how the server reads the latter, so it must run on its own.
func Probes(tree *pg_query.ParseResult, sql string, typ byte, types []uint32) ([]Probe, []int, string) {
	var out []Probe
	var idx []int
	changed := false
	for i, raw := range tree.GetStmts() {
		n := raw.GetStmt()
		text := stmtText(sql, raw)
		var c *Probe
		switch x := n.GetNode().(type) {
		case *pg_query.Node_SelectStmt, *pg_query.Node_DeclareCursorStmt, *pg_query.Node_ExecuteStmt:
			c = &Probe{Text: text, Stmt: n}
		case *pg_query.Node_CopyStmt:
			if q := x.CopyStmt.GetQuery(); q != nil {
				c = &Probe{Text: deparse(tree.GetVersion(), q), Stmt: q}
			} else if x.CopyStmt.GetRelation() != nil {
				c = &Probe{Text: copyProbeText(x.CopyStmt), Stmt: n}
			}
		case *pg_query.Node_ExplainStmt:
			if q := x.ExplainStmt.GetQuery(); q != nil && q.GetExecuteStmt() == nil {
				c = &Probe{Text: deparse(tree.GetVersion(), q), Stmt: q, PlanOnly: true}
			}
		case *pg_query.Node_TransactionStmt:
			if k := x.TransactionStmt.GetKind(); k != pg_query.TransactionStmtKind_TRANS_STMT_BEGIN && k != pg_query.TransactionStmtKind_TRANS_STMT_START {
				changed = true
			}
		case *pg_query.Node_VariableShowStmt:
		default:
			changed = true
		}
		if c == nil {
			continue
		}
		if c.Text == "" {
			return nil, nil, "the statement cannot be written for the server-side check"
		}
		if changed {
			return nil, nil, fmt.Sprintf("statement %d reads data after a statement that changes the session", i+1)
		}
		if typ == 'P' || len(types) > 0 {
			// (A simple query's types are those of a template's
			// parameters: sqlinfo.TemplateOf.)
			c.Types, c.NParams = types, maxParam(n)
		} else if p := maxParam(n); p > 0 {
			c.NParams = p // a simple query with $n fails on the server anyway
		}
		out = append(out, *c)
		idx = append(idx, i)
	}
	return out, idx, ""
}

// stmtText is one statement's text within sql.
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.GetStmtLocation())
	if start > len(sql) {
		return ""
	}
	if l := int(raw.GetStmtLen()); l > 0 && start+l <= len(sql) {
		return sql[start : start+l]
	}
	return sql[start:]
}

// deparse writes a statement's query as SQL ("" if it cannot).
func deparse(version int32, n *pg_query.Node) string {
	s, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: n}}})
	if err != nil {
		return ""
	}
	return s
}

// copyProbeText is the SELECT with the columns of COPY table (cols).
func copyProbeText(c *pg_query.CopyStmt) string {
	rv := c.GetRelation()
	cp := &sqlinfo.Copy{Relation: &sqlinfo.Relation{Schema: rv.GetSchemaname(), Name: rv.GetRelname()}}
	for _, a := range c.GetAttlist() {
		cp.Columns = append(cp.Columns, a.GetString_().GetSval())
	}
	return cp.ProbeQuery()
}

// maxParam is the highest $n a statement uses.
func maxParam(n *pg_query.Node) int {
	best := 0
	sqlinfo.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if p, ok := m.Interface().(*pg_query.ParamRef); ok && int(p.GetNumber()) > best {
			best = int(p.GetNumber())
		}
	})
	return best
}

// ParamTypes reads the parameter types of a Parse body.
func ParamTypes(body []byte) []uint32 {
	_, rest, ok := strings.Cut(string(body), "\x00")
	if !ok {
		return nil
	}
	_, rest, ok = strings.Cut(rest, "\x00")
	if !ok || len(rest) < 2 {
		return nil
	}
	b := []byte(rest)
	n := int(b[0])<<8 | int(b[1])
	if len(b) != 2+4*n {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		o := 2 + 4*i
		out[i] = uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3])
	}
	return out
}
