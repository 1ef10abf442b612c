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
// literals themselves; otherwise the text is decided as it is. A rewrite
// the verdict sends instead of the text (the digest ordering) is the
// template's, with each text's literals put back where its parameters are.

// shapeTemplate is what a template verdict was made from: which
// constants of the shape stayed in the template, and their texts.
type shapeTemplate struct {
	fixed []bool
	texts []string
	// fill is the verdict's rewrite split at the template's parameters
	// (nil when the statement goes out as the client wrote it): each
	// text of the shape is sent with its own literals in it.
	fill *sqlinfo.Fillable
}

// forText is the verdict t's shape has for q (of shape sh): v itself, or
// a copy whose rewrite carries q's literals.
func (t *shapeTemplate) forText(v *verdict, q string, sh sqlinfo.Shape) (*verdict, bool) {
	if t.fill == nil {
		return v, true
	}
	send, ok := t.fill.Fill(sqlinfo.Literals(t.fixed, q, sh))
	if !ok {
		return nil, false
	}
	c := *v
	c.send = send
	return &c, true
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
			return v.template.forText(v, q, sh)
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
	tmpl := &shapeTemplate{fixed: t.Fixed, texts: sqlinfo.FixedTexts(t, q, sh)}
	if v.send != "" {
		// The rewrite (the digest ordering) is shared when the literals
		// can be put back into it token for token.
		f, ok := sqlinfo.SplitParams(v.send, len(t.Types))
		filled, fok := f.Fill(sqlinfo.Literals(t.Fixed, q, sh))
		if !ok || !fok || !sqlinfo.FilledAsWritten(v.send, filled) {
			s.srv.verdicts.Put(key, &verdict{cacheable: true})
			return nil, false
		}
		tmpl.fill = &f
	}
	v.template = tmpl
	s.srv.verdicts.Put(key, v)
	return tmpl.forText(v, q, sh)
}

// usableTemplate reports whether a template's verdict holds for the texts
// of its shape: allowed, cacheable, and with nothing made from the
// statement's literals (drill-down values, computed columns, a search_path
// change, COPY data). A rewrite is shared by filling in each text's
// literals (shapeTemplate.fill).
func usableTemplate(v *verdict) bool {
	if v.refusal != nil || v.fatal != nil || v.skipped || v.serverPath != nil || !v.cacheable || v.pathAfter != nil {
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
// everything (sqlinfo.Light: a fingerprint per statement), cached for
// queries sent again (a dashboard's refresh, a Parse for each execution).
// A text in sqlinfo.LightKey's plain alphabet shares its entry with the
// texts that differ from it only in compared numbers (pgbench's
// "WHERE aid = 48213"), without a call into PostgreSQL's scanner: cutting
// the constants out with the scanner costs as much as Light (profiled).
// Other texts are cached by their exact text. The cached texts are the
// normalised ones the audit log shows, so the cache holds no literal
// beyond its key.
func (s *session) lightStatements(q string) []sqlinfo.Statement {
	if s.srv.verdicts == nil {
		stmts, _ := sqlinfo.Light(q)
		return stmts
	}
	key := verdictKey{typ: 'l', sql: q}
	if k, ok := sqlinfo.LightKey(q); ok {
		key.sql = k
	}
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
