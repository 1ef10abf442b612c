package proxy

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
)

// sqlSession is the state the SQL analysis of a restricted session needs.
// It is guarded by session.sqlMu: the client side analyses with it, the
// upstream side confirms or rolls back search_path changes.
type sqlSession struct {
	// searchPath is what later statements are analysed with: it includes
	// changes not yet confirmed by the server.
	searchPath []string
	// confirmed is the search_path the server has acknowledged.
	confirmed   []string
	defaultPath []string
	// batchChanged reports a change in the batch not yet ended by
	// ReadyForQuery; batchFailed that the batch got an error (the server
	// rolled the change back with its implicit transaction).
	batchChanged, batchFailed bool
}

// endBatch runs at ReadyForQuery (sqlMu held): a failed batch's
// search_path change is undone, a successful one confirmed.
func (q *sqlSession) endBatch() {
	switch {
	case q.batchChanged && q.batchFailed:
		q.searchPath = q.confirmed
	case q.batchChanged:
		q.confirmed = q.searchPath
	}
	q.batchChanged, q.batchFailed = false, false
}

// checkSQL analyses a Query's or Parse's SQL for a restricted session.
// It returns the ErrorResponse to send instead when the statement must not
// run, and otherwise whether the statement's computed columns are proven
// safe (the analysis refuses every unsafe use of a protected column).
func (s *session) checkSQL(typ byte, body []byte, stmts []sqlinfo.Statement) ([]byte, []sqlinfo.Statement) {
	q, ok := protocol.QueryText(typ, body)
	if !ok {
		return refusal("malformed message"), stmts
	}
	pol, role, gen := s.policyNow()
	st := s.trk.Status()
	s.sqlMu.Lock()
	sess := &analyze.Session{Policy: pol, Role: role, SearchPath: s.sql.searchPath,
		DefaultSearchPath: s.sql.defaultPath, InTransaction: st == 'T' || st == 'E'}
	s.sqlMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), planTimeout)
	defer cancel()
	res, err := s.srv.analyses.Analyze(ctx, gen, sess, s.srv.analyzeCats.forDatabase(s.id.Database), q)
	if err != nil {
		s.log.Warn("statement refused: the catalog could not be read to check it", zap.Error(err))
		s.auditRefused(stmts, "catalog_unavailable", nil)
		return refusal("the statement cannot be checked now (catalog lookup failed); refused"), stmts
	}
	if res.Refusal != nil {
		s.auditRefused(stmts, "sql_analysis", res.Refusal)
		return errorFrame(codeInsufficientPriv, res.Refusal.Message()), stmts
	}
	if res.SearchPathChanged {
		s.sqlMu.Lock()
		s.sql.searchPath, s.sql.batchChanged = res.SearchPath, true
		s.sqlMu.Unlock()
	}
	// Every use of a protected column in an expression was refused above,
	// so computed columns of what remains cannot carry protected values.
	out := slices.Clone(stmts)
	for i := range out {
		out[i].ComputedSafe = true
	}
	return nil, out
}

// auditRefused records a statement the proxy refused before it ran.
func (s *session) auditRefused(stmts []sqlinfo.Statement, rule string, r *analyze.Refusal) {
	if s.srv.aud == nil {
		return
	}
	a := newStmtAudit("", "")
	if len(stmts) > 0 {
		a.fingerprint, a.kind = stmts[0].Fingerprint, stmts[0].Kind
	}
	a.refusal = &audit.Refusal{Rule: rule}
	if r != nil && r.Column != "" {
		a.refusal.Table = r.Table.Schema + "." + r.Table.Table
		a.refusal.Column = r.Column
	}
	_ = s.finishStmt(a, audit.OutcomeRefused, "42501")
}

// loadSearchPath asks the upstream session for its search_path (set by the
// server, the database, the role or the client's startup options) before
// the client's first statement, so names resolve as PostgreSQL will.
func (s *session) loadSearchPath() error {
	q, _ := (&pgproto3.Query{String: "SHOW search_path"}).Encode(nil)
	if _, err := s.uw.Write(q); err != nil {
		return err
	}
	if err := s.uw.Flush(); err != nil {
		return err
	}
	var value string
	for {
		m, err := s.ur.Next()
		if err != nil {
			return err
		}
		switch m.Type {
		case 'D':
			var row pgproto3.DataRow
			if err := row.Decode(m.Body()); err == nil && len(row.Values) == 1 {
				value = string(row.Values[0])
			}
		case 'E':
			return errors.New("SHOW search_path failed: " + errorMessage(m.Body()))
		case 'Z':
			s.sql.searchPath = analyze.ParseSearchPath(value)
			s.sql.confirmed, s.sql.defaultPath = s.sql.searchPath, s.sql.searchPath
			return nil
		}
	}
}
