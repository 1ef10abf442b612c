package proxy

import (
	"fmt"
	"strings"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// A prepared statement is checked when it is parsed, but the server plans
// it again whenever what it names changes: DDL (a table replaced by a view
// over e-mails, a view given another source), or a new search_path, under
// which it resolves its names anew. A Bind of a restricted session's
// statement therefore checks it again when the state its verdict was made
// under has changed since: the Bind fails if the statement is refused now,
// and the statement is prepared again first if it must be sent
// differently.

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
// stale. It returns the refusal frame when the Bind must fail, or the
// statement as it must be prepared now when the check would send it
// differently (a policy reload changed the digest's tags): the proxy then
// prepares it again under the client's name before the Bind (rebind).
func (s *session) recheckBind(body []byte) (refused []byte, again *rebind, err error) {
	_, name, err := protocol.MessageName('B', body)
	if err != nil {
		return nil, nil, nil // the tracker reports the malformed message
	}
	st := s.trk.Statement(name)
	if st == nil {
		return nil, nil, nil // parsed in this batch: its verdict is fresh
	}
	m := statementMeta(st)
	if m.parse == nil {
		return nil, nil, nil // not a restricted session's statement
	}
	if _, err := s.settledPath(); err != nil {
		return refusal("the statement cannot be checked now (a search_path change is still in flight); refused"), nil, nil
	}
	state := s.checkState()
	s.sqlMu.Lock()
	uncertain := s.sql.pathUncertain()
	s.sqlMu.Unlock()
	m.mu.Lock()
	fresh := m.state == state && !uncertain
	m.mu.Unlock()
	if fresh {
		return nil, nil, nil
	}
	v := s.checkSQL('P', m.parse)
	switch {
	case v.fatal != nil:
		return nil, nil, v.fatal
	case v.skipped:
		// The server skips the client's failed batch, this Bind with it.
		return nil, nil, nil
	case v.refusal != nil:
		return v.refusal, nil, nil
	}
	sent, _ := protocol.QueryText('P', m.parse)
	if v.send != "" {
		sent = v.send
	}
	state = s.checkState() // the check may have confirmed another path
	if sent != m.sent {
		nm := &stmtMeta{result: m.result, parse: m.parse, sent: sent, state: state, pathAfter: m.pathAfter, audited: m.audited, shadow: v.shadow}
		if len(v.results) == 1 {
			nm.result = v.results[0]
		}
		// Under the name the Bind uses: the client's, or the proxy's own
		// for a statement with drill-down parameters (m.parse names the
		// client's, which the server does not hold then).
		return nil, &rebind{name: name, meta: nm, parse: renameStmt('P', replaceSQL('P', m.parse, sent), name)}, nil
	}
	m.mu.Lock()
	m.state, m.shadow = state, v.shadow
	if len(v.results) == 1 {
		m.result = v.results[0]
	}
	m.mu.Unlock()
	return nil, nil, nil
}

// rebind is a statement the proxy prepares again, under the client's
// name, before the client's Bind of it: its Close and Parse are the
// proxy's (their replies go to no one).
type rebind struct {
	name  string
	meta  *stmtMeta
	parse []byte
}

// send injects the Close and the Parse.
func (r *rebind) send(s *session) error {
	if err := s.inject('C', append([]byte{'S'}, append([]byte(r.name), 0)...), r); err != nil {
		return err
	}
	return s.inject('P', r.parse, r.meta)
}

// inject sends one message of the proxy's own, whose reply goes to no
// one (nothing is sent when the server would skip it).
func (s *session) inject(typ byte, body []byte, meta any) error {
	sent, err := s.trk.Send(typ, body, true, meta, 0)
	if err != nil || sent.Skipped {
		return err
	}
	if sent.Before != nil {
		if _, err := s.uw.Write(sent.Before); err != nil {
			return err
		}
	}
	_, err = s.uw.Write(wire.Frame(typ, body))
	return err
}
