package proxy

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Statements that differ only in their literals (pgbench -M simple, a BI
// tool's filter values) share one verdict: the verdict of their template,
// the statement with those literals turned into parameters, decided by
// both lines as a client's prepared statement is (the analysis holds a
// parameter to be any value; the server-side check reads the generic
// plan, which keeps every use of a parameter). A verdict that holds for
// every value of the parameters holds for the literals a text puts there.
// The template is used only where nothing in the verdict depends on the
// literals themselves; otherwise the text is decided as it is.

// shapeTemplate is what a template verdict was made from: which
// constants of the shape stayed in the template, and their texts.
type shapeTemplate struct {
	fixed []bool
	texts []string
}

// shapeVerdict returns the verdict of q's template (simple query only, in
// a session at rest: a template that fails on the server must not abort
// the client's transaction, and the check's Sync must not commit an
// implicit transaction the client's batch left open). ok is false when q must be decided
// as it is. The shape's verdict is cached under the shape's key, in the
// same cache and with the same key parts as every verdict; a shape whose
// template cannot be used is cached as such, so it is tried once.
func (s *session) shapeVerdict(key verdictKey, q string, role *policy.Role, path, defaultPath []string) (*verdict, bool) {
	if key.typ != 'Q' || key.inTx || len(role.Subset) > 0 || !s.trk.BetweenBatches() {
		return nil, false
	}
	sh, ok := sqlinfo.ShapeOf(q)
	if !ok {
		return nil, false
	}
	key.sql = sh.Key
	if v, ok := s.srv.verdicts.Get(key); ok {
		if v.template == nil {
			return nil, false // the shape's template cannot be used
		}
		if sqlinfo.SameFixedTexts(v.template.fixed, v.template.texts, q, sh) {
			return v, true
		}
	}
	tree, err := pg_query.Parse(q)
	if err != nil {
		return nil, false // decided (and refused) as it is
	}
	t, ok := sqlinfo.TemplateOf(q, tree, sh)
	if !ok {
		s.srv.verdicts.Put(key, &verdict{cacheable: true})
		return nil, false
	}
	v := s.decide(t.SQL, key.typ, t.Types, path, defaultPath, key.inTx)
	if !usableTemplate(v) {
		if v.cacheable && v.fatal == nil && !v.skipped && v.serverPath == nil {
			s.srv.verdicts.Put(key, &verdict{cacheable: true})
		}
		return nil, false
	}
	v.template = &shapeTemplate{fixed: t.Fixed, texts: sqlinfo.FixedTexts(t, q, sh)}
	s.srv.verdicts.Put(key, v)
	return v, true
}

// usableTemplate reports whether a template's verdict holds for the texts
// of its shape as they are: allowed, cacheable, and with nothing that is
// made from the statement's literals or sent instead of its text (a
// rewrite, drill-down values, computed columns, a search_path change, COPY
// data).
func usableTemplate(v *verdict) bool {
	if v.refusal != nil || v.fatal != nil || v.skipped || v.serverPath != nil || !v.cacheable || v.send != "" || v.pathAfter != nil {
		return false
	}
	for _, r := range v.results {
		if len(r.drillParams) > 0 || len(r.lifts) > 0 {
			return false
		}
	}
	for _, st := range v.stmts {
		if st.Copy != nil {
			return false
		}
	}
	return true
}

// lightStatements describes q for the audit records of a role that sees
// everything (sqlinfo.Light: a fingerprint per statement), cached by text
// for queries (a Parse sent again for each execution, a dashboard's
// refresh). Texts are not grouped by shape here: cutting the constants
// out with PostgreSQL's scanner costs as much as Light (profiled). The
// cached texts are the normalised ones the audit log shows, so the cache
// holds no literal beyond its key.
func (s *session) lightStatements(q string) []sqlinfo.Statement {
	if s.srv.verdicts == nil {
		stmts, _ := sqlinfo.Light(q)
		return stmts
	}
	key := verdictKey{typ: 'l', sql: q}
	if v, ok := s.srv.verdicts.Get(key); ok {
		return v.stmts
	}
	stmts, _ := sqlinfo.Light(q)
	for _, st := range stmts {
		if st.Fingerprint == "" || st.Kind != "Select" && st.Kind != "With" {
			return stmts
		}
	}
	cached := make([]sqlinfo.Statement, len(stmts))
	for i, st := range stmts {
		st.Text = sqlinfo.NormalizedText(st.Text)
		cached[i] = st
	}
	s.srv.verdicts.Put(key, &verdict{stmts: cached})
	return cached
}
