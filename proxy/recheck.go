package proxy

import (
	"fmt"
	"strings"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
)

// A prepared statement is checked when it is parsed, but the server plans
// it again whenever what it names changes: DDL (a table replaced by a view
// over e-mails, a view given another source), or a new search_path, under
// which it resolves its names anew. A Bind of a restricted session's
// statement therefore checks it again when the state its verdict was made
// under has changed since, and the Bind fails if the statement is refused
// now or would have to be prepared differently.

// substituteStmt is the statement name a refused Bind is sent with: no
// such statement exists (clients may not use the reserved prefix), so the
// server fails it.
const substituteStmt = sqlinfo.ReservedPrefix + "_refused_bind"

// checkState is what a statement's verdict depends on besides its text:
// the policy, the catalog generation (DDL seen, or catalog_ttl passed)
// and the search_path.
func (s *session) checkState() string {
	_, _, gen := s.policyNow()
	s.sqlMu.Lock()
	path := strings.Join(s.sql.path, "\x00")
	s.sqlMu.Unlock()
	return fmt.Sprintf("%d/%d/%s", gen, s.srv.catalog.Generation(s.id.Database), path)
}

// recheckBind checks again the statement a Bind names when its verdict is
// stale, and returns the refusal frame when the Bind must fail (nil when
// it may go on).
func (s *session) recheckBind(body []byte) ([]byte, error) {
	_, name, err := protocol.MessageName('B', body)
	if err != nil {
		return nil, nil // the tracker reports the malformed message
	}
	st := s.trk.Statement(name)
	if st == nil {
		return nil, nil // parsed in this batch: its verdict is fresh
	}
	m := statementMeta(st)
	if m.parse == nil {
		return nil, nil // not a restricted session's statement
	}
	if _, err := s.settledPath(); err != nil {
		return refusal("the statement cannot be checked now (a search_path change is still in flight); refused"), nil
	}
	state := s.checkState()
	m.mu.Lock()
	fresh := m.state == state
	m.mu.Unlock()
	if fresh {
		return nil, nil
	}
	v := s.checkSQL('P', m.parse)
	switch {
	case v.fatal != nil:
		return nil, v.fatal
	case v.skipped:
		// The server skips the client's failed batch, this Bind with it.
		return nil, nil
	case v.refusal != nil:
		return v.refusal, nil
	}
	sent, _ := protocol.QueryText('P', m.parse)
	if v.send != "" {
		sent = v.send
	}
	if sent != m.sent {
		_, role := s.currentPolicy()
		return refusal("the prepared statement would be checked and sent differently now than when it was prepared (the objects or the search_path it names changed); role " +
			role.Name + " may not run it as prepared (rule: prepare it again)"), nil
	}
	m.mu.Lock()
	m.state = state
	if len(v.results) == 1 {
		m.result = v.results[0]
	}
	m.mu.Unlock()
	return nil, nil
}
