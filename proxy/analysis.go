package proxy

import (
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

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
	// txSet: the path changed inside the current transaction block, which
	// a rollback may undo; uncertain: a rollback (to a savepoint) or the
	// end of such a block came since. The path is then read from the
	// server before the next statement is analysed (verdict), and while
	// txSet no verdict is taken from the cache.
	txSet, uncertain bool
}

// pathUncertain reports that path may not be the server's (sqlMu held).
func (q *sqlSession) pathUncertain() bool { return q.txSet || q.uncertain }

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
func (q *sqlSession) endBatch(r *protocol.Request, skipped []*protocol.Request, status byte) {
	if q.failed {
		q.path = q.batchStart
	}
	switch {
	case (status == 'T' || status == 'E') && !slices.Equal(q.path, q.batchStart):
		q.txSet = true
	case status == 'I' && q.txSet:
		q.txSet, q.uncertain = false, true
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

// auditRefused records a statement the proxy refused before it ran.
func (s *session) auditRefused(stmts []sqlinfo.Statement, rule string, r *analyze.Refusal) {
	if s.srv.aud == nil {
		return
	}
	var st sqlinfo.Statement
	if len(stmts) > 0 {
		st = stmts[0]
	}
	a := newStmtAudit(st)
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
