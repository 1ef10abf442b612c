package proxy

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy"
)

// codeAuditFailure is sent when a statement cannot be audited (io_error).
const codeAuditFailure = "58030"

// auditRefusal is what a client is told while the audit log is down.
const auditRefusal = "pgpseudo: the audit log cannot be written; statements are refused until it recovers"

// auditWrite writes ev when auditing is on. A failure marks the log down so
// new statements are refused (on_failure: refuse; with continue the writer
// itself logs and returns nil).
func (s *Server) auditWrite(ev audit.Event) error {
	if s.aud == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.aud.Write(ctx, ev); err != nil {
		if !s.auditDown.Swap(true) {
			s.log.Error("audit log write failed; new statements are refused", zap.Error(err))
		}
		return err
	}
	return nil
}

// auditRefusing reports whether statements must be refused now.
func (s *Server) auditRefusing() bool { return s.aud != nil && s.auditDown.Load() }

func (s *session) auditSession() audit.Session {
	role := ""
	if s.srv.policy != nil {
		_, r := s.currentPolicy()
		role = r.Name
	}
	return audit.Session{ConnID: s.connID, User: s.id.User, Role: role, Database: s.id.Database}
}

func (s *session) clientAddrPort() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s.client.RemoteAddr().String())
	return ap
}

func (s *session) authMethod() string {
	if s.srv.cfg.Auth.Mode == AuthPassthrough {
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
	case errors.As(err, &ce) && ce.code == codeInvalidPassword:
		reason = "bad_password"
	case errors.As(err, &ce) && ce.code == codeInvalidAuthSpec:
		reason = "rejected"
	case isRefusal(err):
		reason = "upstream_refused"
	default:
		return // a connection that never got to authenticate
	}
	_ = s.srv.auditWrite(audit.AuthFailure{User: s.id.User, Database: s.id.Database, ClientAddr: s.clientAddrPort(),
		ApplicationName: s.id.ApplicationName, TLSVersion: s.id.TLSVersion, AuthMethod: s.authMethod(), Reason: reason})
}

// stmtAudit accumulates one statement's audit record.
type stmtAudit struct {
	start       time.Time
	fingerprint string
	kind        string
	rows, bytes uint64
	cols        []audit.ColumnDecision
	relations   []string
	refusal     *audit.Refusal
}

func newStmtAudit(fingerprint, kind string) *stmtAudit {
	return &stmtAudit{start: time.Now(), fingerprint: fingerprint, kind: kind}
}

// usePlan adds a result's column decisions.
func (a *stmtAudit) usePlan(p *plan) {
	if a == nil || p == nil {
		return
	}
	a.cols = append(a.cols, p.audit...)
	for _, r := range p.relations {
		seen := false
		for _, have := range a.relations {
			seen = seen || have == r
		}
		if !seen {
			a.relations = append(a.relations, r)
		}
	}
}

// finish writes the record; it returns an error only when the statement
// must not be reported as successful because its record is missing.
func (s *session) finishStmt(a *stmtAudit, outcome audit.Outcome, sqlstate string) error {
	if a == nil || s.srv.aud == nil {
		return nil
	}
	kind := a.kind
	if kind == "" {
		kind = "unknown"
	}
	return s.srv.auditWrite(audit.Statement{
		Session: s.auditSession(), Fingerprint: a.fingerprint, Kind: kind, Relations: a.relations,
		Columns: a.cols, Rows: a.rows, Bytes: a.bytes, Duration: time.Since(a.start),
		Outcome: outcome, SQLState: sqlstate, Refusal: a.refusal,
	})
}

// decisionOf maps a policy action to the audit vocabulary.
func decisionOf(a policy.Action) audit.Decision {
	switch a {
	case policy.Allow:
		return audit.DecisionAllowed
	case policy.Tokenize:
		return audit.DecisionTokenized
	case policy.Mask:
		return audit.DecisionMasked
	case policy.Null:
		return audit.DecisionNulled
	}
	return audit.DecisionBlocked
}
