package proxy

import (
	"fmt"

	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// withinLimits ends a session whose client keeps sending requests without
// reading their replies: each awaits its reply in the tracker, so their
// number bounds what the proxy holds for the session.
func (s *session) withinLimits(m wire.Msg) error {
	switch m.Type {
	case 'd', 'c', 'f', 'H', 'X': // COPY data, Flush and Terminate get no reply of their own
		return nil
	}
	if limit := s.srv.cfg.Limits.MaxPendingRequests; s.trk.Pending() >= limit {
		return refuse(codeProgramLimit, fmt.Sprintf("pgpseudo: more than %d requests of this session await replies (limits.max_pending_requests); read the replies before sending more", limit), nil)
	}
	return nil
}

// heldLimit returns the error frame for a Parse or Bind that would make the
// session's statements or portals hold too much, or nil: one named
// statement or portal too many (a name in use is replaced, the unnamed
// ones do not count), or more bytes of statement text and result
// descriptions than the budget.
func (s *session) heldLimit(typ byte, body []byte) []byte {
	lim := s.srv.cfg.Limits
	portals, bytes := s.trk.Held(stmtMetaSize)
	if bytes >= int64(lim.MaxPreparedBytes) {
		return errorFrame(codeProgramLimit, fmt.Sprintf("pgpseudo: this session's prepared statements and portals hold %d bytes (limits.max_prepared_bytes); close some (Close, DEALLOCATE, end the transaction) before preparing or binding more", bytes))
	}
	name, _, err := protocol.MessageName(typ, body) // the statement of a Parse, the portal of a Bind
	switch {
	case err != nil:
		return nil
	case typ == 'P' && name != "":
		if known, n := s.trk.Statements(name); !known && n >= lim.MaxPreparedStatements {
			return errorFrame(codeProgramLimit, fmt.Sprintf("pgpseudo: this session already has %d prepared statements (limits.max_prepared_statements); close some (Close, DEALLOCATE) before preparing more", lim.MaxPreparedStatements))
		}
	case typ == 'B' && name != "" && portals >= lim.MaxPreparedStatements:
		return errorFrame(codeProgramLimit, fmt.Sprintf("pgpseudo: this session already has %d named portals (limits.max_prepared_statements); close some, or end the transaction, before binding more", lim.MaxPreparedStatements))
	}
	return nil
}

// stmtMetaSize is what the proxy keeps with a prepared statement: the
// client's Parse, the text sent, and the audited text.
func stmtMetaSize(meta any) int64 {
	m, ok := meta.(*stmtMeta)
	if !ok {
		return 0
	}
	return int64(len(m.parse) + len(m.sent) + len(m.state) + len(m.audited.Text) + len(m.audited.Fingerprint))
}
