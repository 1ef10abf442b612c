package proxy

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/auth"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
)

// codeAuditFailure is sent when a statement cannot be audited (io_error).
const codeAuditFailure = "58030"

// auditRefusal is what a client is told while the audit log is down.
const auditRefusal = "pgpseudo: the audit log cannot be written; statements are refused until it recovers"

// auditWrite writes ev when auditing is on. A failure of the log itself
// (disk full, I/O error) marks it down so new statements are refused
// (on_failure: refuse; with continue the writer logs and returns nil). A
// record the writer rejects fails only the statement it describes: the
// records the proxy builds are valid by construction (fitted names and
// codes), so one is a bug, never a way for a client to stop the log.
func (s *Server) auditWrite(ev audit.Event) error {
	if s.aud == nil {
		return nil
	}
	ctx := context.Background()
	if s.aud.WaitsForFsync() { // (a timer per record costs 2% of a busy proxy's CPU otherwise)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	start := time.Now()
	err := s.aud.Write(ctx, ev)
	s.metrics.observe(stageAuditWrite, start)
	if err != nil {
		s.metrics.auditFailures.Inc()
		if errors.Is(err, audit.ErrInvalidRecord) {
			s.log.Error("audit record rejected; the statement fails", zap.Error(err))
			return err
		}
		if !s.auditDown.Swap(true) {
			s.log.Error("audit log write failed; new statements are refused", zap.Error(err))
		}
		return err
	}
	return nil
}

// auditRefusing reports whether statements must be refused now: the log
// failed, and a probe (at most one a second) finds it still failing.
func (s *Server) auditRefusing() bool {
	if s.aud == nil || !s.auditDown.Load() {
		return false
	}
	now := time.Now().UnixNano()
	last := s.auditProbe.Load()
	if now-last < int64(time.Second) || !s.auditProbe.CompareAndSwap(last, now) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.aud.Probe(ctx); err != nil {
		return true
	}
	if s.auditDown.Swap(false) {
		s.log.Warn("audit log writable again; statements are accepted")
	}
	return false
}

func (s *session) auditSession() audit.Session {
	role := ""
	if s.srv.policy != nil {
		_, r := s.currentPolicy()
		role = r.Name
	}
	return sessionRecord(s.connID, s.id.User, role, s.id.Database)
}

// sessionRecord is the session part of a record; the names come from the
// client and the policy and are fitted.
func sessionRecord(connID uint64, user, role, database string) audit.Session {
	return audit.Session{ConnID: connID, User: audit.FitName(user), Role: audit.FitName(role), Database: audit.FitName(database)}
}

func (s *session) clientAddrPort() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s.client.RemoteAddr().String())
	return ap
}

func (s *session) authMethod() string {
	if s.srv.cfg.Auth.Mode == config.AuthPassthrough {
		return "passthrough"
	}
	return "scram-sha-256"
}

// auditAuthFailure records a refused login.
func (s *session) auditAuthFailure(err error) {
	reason := "protocol"
	var ce *clientError
	switch {
	case errors.Is(err, policy.ErrNoRole):
		reason = "no_role"
	case errors.As(err, &ce) && ce.Code == codeInvalidPassword:
		reason = "bad_password"
	case errors.As(err, &ce) && ce.Code == codeInvalidAuthSpec:
		reason = "rejected"
	case errors.As(err, new(*auth.UpstreamRefusal)):
		reason = "upstream_refused"
	default:
		return // a connection that never got to authenticate
	}
	_ = s.srv.auditWrite(audit.AuthFailure{User: audit.FitName(s.id.User), Database: audit.FitName(s.id.Database),
		ClientAddr: s.clientAddrPort(), ApplicationName: audit.FitName(s.id.ApplicationName), TLSVersion: s.id.TLSVersion,
		AuthMethod: s.authMethod(), Reason: reason})
}

// stmtAudit accumulates one statement's audit record.
type stmtAudit struct {
	start       time.Time
	fingerprint string
	text        string // the statement's source, for its statement_text record; never logged as is
	kind        string
	unanalysed  bool // a role that sees everything: reads unknown
	rows, bytes uint64
	// rewriting is the time spent rewriting the rows timed, of
	// rewriteTimed rows (one in rewriteSample): the rewrite stage of
	// pgpseudo_stage_duration_seconds, scaled to all rows.
	rewriting    time.Duration
	rewriteTimed uint64
	cols         []audit.ColumnDecision
	reads        []audit.ColumnDecision // from the analysis; cols say more
	relations    []string
	refusal      *audit.Refusal
}

// auditedOnly keeps of a statement what its audit record needs, so a
// prepared statement does not hold the rest of the description.
func auditedOnly(st sqlinfo.Statement) sqlinfo.Statement {
	return sqlinfo.Statement{Fingerprint: st.Fingerprint, Kind: st.Kind, Text: st.Text, Unanalysed: st.Unanalysed}
}

// rewriteSample is how often a row's rewrite is timed: one row in 32, so
// the rewrite stage costs two clock reads per 32 rows rather than per row.
const rewriteSample = 32

// timeRewrite reports whether the statement's row number row (from 1) is
// one to time.
func timeRewrite(row uint64) bool { return row%rewriteSample == 1 }

// rewrote adds a timed row's rewrite, which started at start.
func (a *stmtAudit) rewrote(start time.Time) {
	a.rewriting += time.Since(start)
	a.rewriteTimed++
}

// rewriteTime is the estimated time spent rewriting all the rows.
func (a *stmtAudit) rewriteTime() time.Duration {
	if a.rewriteTimed == 0 {
		return 0
	}
	return a.rewriting * time.Duration(a.rows) / time.Duration(a.rewriteTimed)
}

func newStmtAudit(st sqlinfo.Statement) *stmtAudit {
	return &stmtAudit{start: time.Now(), fingerprint: st.Fingerprint, text: st.Text, kind: st.Kind, unanalysed: st.Unanalysed}
}

// usePlan adds a result's column decisions and the tables its columns
// come from.
func (a *stmtAudit) usePlan(p *rewrite.Plan) {
	if a == nil || p == nil {
		return
	}
	a.cols = append(a.cols, p.Audit...)
	a.addRelations(p.Relations)
}

// useVerdict adds what the analysis found the statement reading.
func (a *stmtAudit) useVerdict(rv resultVerdict) {
	a.addRelations(rv.relations)
	a.reads = append(a.reads, rv.reads...)
}

// addRelations adds relations the statement reads, each once.
func (a *stmtAudit) addRelations(rels []string) {
	for _, r := range rels {
		if !slices.Contains(a.relations, r) {
			a.relations = append(a.relations, r)
		}
	}
}

// finish writes the record; it returns an error only when the statement
// must not be reported as successful because its record is missing.
func (s *session) finishStmt(a *stmtAudit, outcome audit.Outcome, sqlstate string) error {
	if a == nil {
		return nil
	}
	s.srv.metrics.statement(a, outcome)
	if s.srv.aud == nil {
		return nil
	}
	ev := statementRecord(s.auditSession(), a, outcome, sqlstate, time.Since(a.start))
	if ev.Fingerprint != "" && a.text != "" && s.srv.aud.NeedsText(ev.Fingerprint) {
		// The text is normalised only the first time a file meets the
		// fingerprint; a failure to write it fails like the statement's.
		if text := sqlinfo.NormalizedText(a.text); text != "" {
			if err := s.srv.auditWrite(audit.StatementText{Fingerprint: ev.Fingerprint, Text: text}); err != nil {
				return err
			}
		}
	}
	return s.srv.auditWrite(ev)
}

// auditKind writes a statement kind as the audit log names it: the parse
// node's name in snake case (Select → select, DeclareCursor →
// declare_cursor), with SET and SHOW by their SQL names.
func auditKind(kind string) string {
	switch kind {
	case "VariableSet":
		return "set"
	case "VariableShow":
		return "show"
	// Statements of roles that see everything are not parsed: their kind
	// is their first word, named here as the parse would name it.
	case "Begin", "Start", "Commit", "End", "Rollback", "Abort", "Savepoint", "Release":
		return "transaction"
	case "Declare":
		return "declare_cursor"
	case "With", "Table", "Values":
		return "select"
	}
	var b strings.Builder
	for i, c := range kind {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// statementRecord builds a statement's record. Everything a client or the
// database can influence is fitted (names, codes, the server's SQLSTATE),
// so the record is valid whatever the statement, plan or identity
// (TestStatementRecordsAreValid).
func statementRecord(sess audit.Session, a *stmtAudit, outcome audit.Outcome, sqlstate string, d time.Duration) audit.Statement {
	kind := audit.FitCode(auditKind(a.kind))
	if kind == "" {
		kind = "unknown"
	}
	fp := a.fingerprint
	if len(fp) > 64 || !utf8.ValidString(fp) {
		fp = audit.FitName(fp)
	}
	ev := audit.Statement{Session: sess, Fingerprint: fp, Kind: kind, Rows: a.rows, Bytes: a.bytes, Duration: d, Outcome: outcome, Unanalysed: a.unanalysed}
	for _, r := range a.relations {
		ev.Relations = append(ev.Relations, audit.FitName(r))
	}
	cols := a.cols
	for _, r := range a.reads {
		// A column the statement returns is described by its result
		// plan (transformer, domain, key version); one it only filters
		// or joins on by the analysis's decision.
		if !slices.ContainsFunc(cols, func(c audit.ColumnDecision) bool { return c.Table == r.Table && c.Column == r.Column }) {
			cols = append(cols, r)
		}
	}
	for _, c := range cols {
		c.Table, c.Column, c.Domain = audit.FitName(c.Table), audit.FitName(c.Column), audit.FitName(c.Domain)
		c.Class, c.Transformer = audit.FitCode(c.Class), audit.FitCode(c.Transformer)
		if c.Table == "" || c.Column == "" {
			continue // nothing to say about a column without a name
		}
		ev.Columns = append(ev.Columns, c)
	}
	switch {
	case outcome == audit.OutcomeOK:
	case audit.IsSQLState(sqlstate):
		ev.SQLState = sqlstate
	default:
		ev.SQLState = codeInternalError
	}
	if a.refusal != nil {
		r := *a.refusal
		r.Rule = audit.FitCode(r.Rule)
		if r.Rule == "" {
			r.Rule = "refused"
		}
		r.Table, r.Column = audit.FitName(r.Table), audit.FitName(r.Column)
		ev.Refusal = &r
	} else if outcome == audit.OutcomeRefused {
		ev.Refusal = &audit.Refusal{Rule: "refused"}
	}
	return ev
}
