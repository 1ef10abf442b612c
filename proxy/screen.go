package proxy

import (
	"context"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// analyze parses the SQL of a Query or Parse and confirms that bare pg_*
// names are system catalogs; nil when the SQL does not parse (the upstream
// will say why) or a lookup fails (nothing is then taken as catalog-only).
// Results are cached per database and text: clients repeat statements.
func (s *session) analyze(typ byte, body []byte) []sqlinfo.Statement {
	q, ok := protocol.QueryText(typ, body)
	if !ok {
		return nil
	}
	key := s.id.Database + "\x00" + q
	if stmts, ok := s.srv.analysed.get(key); ok {
		return stmts
	}
	stmts, err := sqlinfo.Parse(q)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), planTimeout)
	defer cancel()
	for i := range stmts {
		for _, name := range stmts[i].CatalogNames {
			sys, err := s.srv.catalog.systemRelation(ctx, s.id.Database, name)
			if err != nil {
				return stmts // not cached: the lookup may work next time
			}
			if !sys {
				stmts[i].CatalogOnly = false
				break
			}
		}
	}
	s.srv.analysed.put(key, stmts)
	return stmts
}

// screened is the verdict on a Query, Parse or FunctionCall.
type screened struct {
	// refusal is the ErrorResponse to send instead (nil: forward).
	refusal []byte
	// stmts is the parse of a Query's or Parse's SQL (nil when it did not
	// parse).
	stmts []sqlinfo.Statement
	// pathAfter is the search_path once the statements have run, when
	// they change it.
	pathAfter []string
}

// screen decides whether a client message of a tracked session must be
// refused: everything while the audit log is down; for restricted roles,
// statements the SQL analysis refuses and fast-path function calls.
func (s *session) screen(m wire.Msg) screened {
	if s.srv.auditRefusing() {
		return screened{refusal: errorFrame(codeAuditFailure, auditRefusal)}
	}
	_, role := s.currentPolicy()
	if m.Type == 'F' {
		if role.Restricted() {
			return screened{refusal: refusal("fast-path function calls are not allowed for role " + role.Name)}
		}
		return screened{}
	}
	if !role.Restricted() {
		// Nothing to refuse: parse only to fingerprint audit records.
		if s.srv.aud == nil {
			return screened{}
		}
		q, ok := protocol.QueryText(m.Type, m.Body())
		if !ok {
			return screened{}
		}
		stmts, _ := sqlinfo.Light(q)
		return screened{stmts: stmts}
	}
	stmts := s.analyze(m.Type, m.Body())
	if s.srv.analyses == nil {
		return screened{stmts: stmts}
	}
	refused, stmts, path := s.checkSQL(m.Type, m.Body(), stmts)
	return screened{refusal: refused, stmts: stmts, pathAfter: path}
}
