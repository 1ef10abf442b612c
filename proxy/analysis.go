package proxy

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
)

// sqlSession is the search_path the SQL analysis of a restricted session
// resolves names with. It follows what the server does, not what the
// client sends: a change counts once the statement that makes it has run
// (its CommandComplete), never at Parse, and is undone when its batch
// fails. A statement is analysed only when the path it will run with is
// known: no change is still in flight, and no batch that made one has
// ended unconfirmed. So a pipeline cannot make the proxy resolve names
// with a path the server has left. Guarded by session.sqlMu.
type sqlSession struct {
	// path is what the server uses as far as it has answered;
	// defaultPath is what RESET and DISCARD ALL return to.
	path, defaultPath []string
	// batchStart is path at the last ReadyForQuery; failed reports an
	// error in the batch since.
	batchStart []string
	failed     bool
	// pathStmts: the client has prepared a statement that changes
	// search_path, so any Execute may change it.
	pathStmts bool
	// inflight counts forwarded requests that may change the path and
	// have not been answered.
	inflight int
	// dirty: such a request was forwarded in the batch now being sent;
	// barrier is the Sync (or simple query) that ended such a batch: until
	// its ReadyForQuery the batch may still fail and undo the change.
	dirty   bool
	barrier *protocol.Request
	// wake is closed (and replaced) whenever the upstream side answers one
	// of those requests.
	wake chan struct{}
}

// signal wakes analyses waiting for the path (sqlMu held).
func (q *sqlSession) signal() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// unsettled reports whether the path of the next statement is not known
// yet (sqlMu held).
func (q *sqlSession) unsettled() bool { return q.inflight > 0 || q.barrier != nil }

// answered records that a request that may change the path has been
// answered or skipped (sqlMu held).
func (q *sqlSession) answered() {
	if q.inflight > 0 {
		q.inflight--
	}
	q.signal()
}

// endBatch runs at ReadyForQuery for the request r it answers (and the
// requests skipped before it): a failed batch's changes are undone.
func (q *sqlSession) endBatch(r *protocol.Request, skipped []*protocol.Request) {
	if q.failed {
		q.path = q.batchStart
	}
	q.batchStart, q.failed = q.path, false
	if q.barrier != nil && (q.barrier == r || slices.Contains(skipped, q.barrier)) {
		q.barrier = nil
	}
	q.signal()
}

// sent records a forwarded Sync, simple query or Execute (sqlMu held):
// mayChange says whether it may change the path.
func (q *sqlSession) sent(r *protocol.Request, mayChange bool) {
	if r == nil {
		return
	}
	switch r.Type {
	case 'E':
		if mayChange {
			q.inflight++
			q.dirty = true
		}
	case 'Q':
		if mayChange {
			q.inflight++
			q.dirty = true
		}
		fallthrough
	case 'S':
		if q.dirty {
			q.barrier, q.dirty = r, false
		}
	}
}

// settledPath waits until the path of the next statement is known and
// returns it. What it waits for is always answered without the client's
// help: simple queries and Syncs end with ReadyForQuery, the proxy sends a
// Flush after an Execute that may change the path, and errors are sent at
// once.
func (s *session) settledPath() ([]string, error) {
	deadline := time.After(planTimeout)
	for {
		s.sqlMu.Lock()
		if !s.sql.unsettled() {
			p := s.sql.path
			s.sqlMu.Unlock()
			return p, nil
		}
		if s.sql.wake == nil {
			s.sql.wake = make(chan struct{})
		}
		ch := s.sql.wake
		s.sqlMu.Unlock()
		// What was forwarded must reach the server before waiting for
		// its answer (this runs on the goroutine that writes upstream).
		if err := s.uw.Flush(); err != nil {
			return nil, err
		}
		select {
		case <-ch:
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		case <-deadline:
			return nil, errors.New("a search_path change was not answered in time")
		}
	}
}

// checkSQL analyses a Query's or Parse's SQL for a restricted session.
// It returns the ErrorResponse to send instead when the statement must not
// run; otherwise the statements marked with whether their computed
// columns are proven safe (the analysis refuses every unsafe use of a
// protected column), and the search_path once they have run when they
// change it (nil otherwise).
func (s *session) checkSQL(typ byte, body []byte, stmts []sqlinfo.Statement) ([]byte, []sqlinfo.Statement, []string) {
	q, ok := protocol.QueryText(typ, body)
	if !ok {
		return refusal("malformed message"), stmts, nil
	}
	pol, role, gen := s.policyNow()
	if why := s.lexingUnsafe(); why != "" {
		s.auditRefused(stmts, "lexing_settings", nil)
		return refusal(why + "; role " + role.Name + " may not run statements until they are reset (rule: restricted sessions keep standard_conforming_strings on and a client_encoding in which no character can hide a quote or backslash)"), stmts, nil
	}
	if s.keywords == nil {
		kw, err := s.srv.catalog.keywords(s.ctx, s.id.Database, s.trk.Param("server_version"))
		if err != nil {
			s.log.Warn("statement refused: the server's keyword list could not be read", zap.Error(err))
			s.auditRefused(stmts, "catalog_unavailable", nil)
			return refusal("the statement cannot be checked now (the server's keyword list could not be read); refused"), stmts, nil
		}
		s.keywords = kw
	}
	path, err := s.settledPath()
	if err != nil {
		s.log.Warn("statement refused: a search_path change did not settle", zap.Error(err))
		return refusal("the statement cannot be checked now (a search_path change is still in flight); refused"), stmts, nil
	}
	st := s.trk.Status()
	s.sqlMu.Lock()
	sess := &analyze.Session{Policy: pol, Role: role, Keywords: s.keywords, SearchPath: path,
		DefaultSearchPath: s.sql.defaultPath, InTransaction: st == 'T' || st == 'E'}
	s.sqlMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), planTimeout)
	defer cancel()
	res, err := s.srv.analyses.Analyze(ctx, gen, sess, s.srv.analyzeCats.forDatabase(s.id.Database), q)
	if err != nil {
		s.log.Warn("statement refused: the catalog could not be read to check it", zap.Error(err))
		s.auditRefused(stmts, "catalog_unavailable", nil)
		return refusal("the statement cannot be checked now (catalog lookup failed); refused"), stmts, nil
	}
	if res.Refusal != nil {
		s.auditRefused(stmts, "sql_analysis", res.Refusal)
		return errorFrame(codeInsufficientPriv, res.Refusal.Message()), stmts, nil
	}
	// Every use of a protected column in an expression was refused above,
	// so computed columns of what remains cannot carry protected values.
	out := slices.Clone(stmts)
	for i := range out {
		out[i].ComputedSafe = true
	}
	if res.SearchPathChanged {
		return nil, out, res.SearchPath
	}
	return nil, out, nil
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
			s.sql.path = analyze.ParseSearchPath(value)
			s.sql.batchStart, s.sql.defaultPath = s.sql.path, s.sql.path
			return nil
		}
	}
}
