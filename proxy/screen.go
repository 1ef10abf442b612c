package proxy

import (
	"bytes"
	"strconv"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// screen decides on a Query, Parse or FunctionCall of a session with a
// policy: everything is refused while the audit log is down; a restricted
// role's statements get both lines' verdict (checkSQL) and fast-path
// function calls are refused; a role that sees everything is only parsed
// lightly for audit fingerprints.
func (s *session) screen(m wire.Msg) *verdict {
	if s.srv.auditRefusing() {
		return &verdict{refusal: errorFrame(codeAuditFailure, auditRefusal)}
	}
	_, role := s.currentPolicy()
	if m.Type == 'F' {
		if role.Restricted() {
			return &verdict{refusal: refusal("fast-path function calls are not allowed for role " + role.Name)}
		}
		return &verdict{}
	}
	if !role.Restricted() {
		if s.srv.aud == nil {
			return &verdict{}
		}
		q, ok := protocol.QueryText(m.Type, m.Body())
		if !ok {
			return &verdict{}
		}
		return &verdict{stmts: s.lightStatements(q)}
	}
	if m.Type == 'P' {
		if name, _, _ := bytes.Cut(m.Body(), []byte{0}); sqlinfo.ReservedName(string(name)) {
			return &verdict{refusal: refusal("the prepared statement name " + strconv.Quote(string(name)) + " is reserved for pgpseudo's server-side check; role " +
				role.Name + " may not use it (rule: names starting with " + sqlinfo.ReservedPrefix + " are pgpseudo's)")}
		}
	}
	return s.checkSQL(m.Type, m.Body())
}
