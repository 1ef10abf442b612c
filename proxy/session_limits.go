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

// statementLimit returns the error frame for a Parse that would make one
// prepared statement too many, or nil. The unnamed statement and a name
// already in use (replaced or refused by the server itself) do not count.
func (s *session) statementLimit(body []byte) []byte {
	name, _, err := protocol.MessageName('P', body)
	if err != nil || name == "" {
		return nil
	}
	limit := s.srv.cfg.Limits.MaxPreparedStatements
	if known, n := s.trk.Statements(name); known || n < limit {
		return nil
	}
	return errorFrame(codeProgramLimit, fmt.Sprintf("pgpseudo: this session already has %d prepared statements (limits.max_prepared_statements); close some (Close, DEALLOCATE) before preparing more", limit))
}
