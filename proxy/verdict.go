package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"go.uber.org/zap"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/plancheck"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
)

// A restricted session's statement runs only when two independent lines
// allow it: the static analysis (policy/analyze: pgpseudo's parser and the
// catalog) and the server-side check (policy/plancheck: the session's own
// server's plan of the statement). Their combined verdict is cached by
// everything it depends on (verdictKey); the response side then trusts
// only the server's plan for computed result columns (docs/security.md).

// verdict is what the proxy decided about one Query's or Parse's SQL.
type verdict struct {
	// refusal is the ErrorResponse to answer instead (nil: forward).
	refusal []byte
	// auditRule, auditTable and auditColumn describe a refusal for the
	// audit log.
	auditRule, auditTable, auditColumn string
	// stmts are the statements (COPY facts, fingerprints, kinds).
	stmts []sqlinfo.Statement
	// send is the SQL to send upstream ("" : the client's text): the
	// digest ordering rewrites statements that group on pseudonymised
	// columns.
	send string
	// pathAfter is the search_path once the statements ran, when they
	// change it.
	pathAfter []string
	// results says, per statement, what its computed result columns may
	// carry.
	results []resultVerdict
	// cacheable: the verdict depends only on its key (not a transient
	// failure or a skipped check).
	cacheable bool
	// skipped: the server was skipping the client's batch when the check
	// ran; the statement would not run either.
	skipped bool
	// serverError: refusal is the server's own error for the statement
	// (the check's Parse or plan failed), not a policy refusal.
	serverError bool
	// fatal ends the session: the check lost step with the server.
	fatal error
}

// resultVerdict is what a statement's result columns without a table
// origin may carry: nothing when the statement returns no table data
// (SHOW, SET, EXPLAIN), otherwise what the server's plan proves for each
// output column (unknown: withheld).
type resultVerdict struct {
	noData  bool
	outputs []plancheck.Output
	checked bool
}

// clean reports whether computed column i may leave unchanged.
func (r resultVerdict) clean(i int) bool {
	if r.noData {
		return true
	}
	return r.checked && i < len(r.outputs) && r.outputs[i].Clean()
}

// verdictKey is everything a verdict depends on.
type verdictKey struct {
	db, user, role        string
	policyGen, catalogGen uint64
	path, defaultPath     string
	inTx                  bool
	typ                   byte
	types                 string
	sql                   string
}

// typesKey is parameter type OIDs as a compact key string.
func typesKey(types []uint32) string {
	if len(types) == 0 {
		return ""
	}
	b := make([]byte, 0, 4*len(types))
	for _, t := range types {
		b = binary.BigEndian.AppendUint32(b, t)
	}
	return string(b)
}

func verdictSize(k verdictKey, v *verdict) int64 {
	n := int64(len(k.sql)*2+len(k.path)+len(k.db)+len(k.user)+len(k.role)+len(k.types)) + int64(len(v.refusal)+len(v.send)) + 256
	for _, r := range v.results {
		n += int64(len(r.outputs)) * 64
	}
	return n
}

// noDataKinds return no table data, or none with columns of their own
// (their results cannot carry protected values).
func noDataKind(kind string) bool {
	switch kind {
	case "Select", "Fetch", "Execute", "Copy":
		return false
	}
	return true
}

// checkSQL decides on a Query's or Parse's SQL for a restricted session.
func (s *session) checkSQL(typ byte, body []byte) *verdict {
	q, ok := protocol.QueryText(typ, body)
	if !ok {
		return &verdict{refusal: refusal("malformed message")}
	}
	var types []uint32
	if typ == 'P' {
		types = parseTypes(body)
	}
	_, role, gen := s.policyNow()
	if why := s.lexingUnsafe(); why != "" {
		return s.refusedVerdict(nil, "lexing_settings", nil,
			refusal(why+"; role "+role.Name+" may not run statements until they are reset (rule: restricted sessions keep standard_conforming_strings on and client_encoding UTF8)"))
	}
	if s.keywords == nil {
		kw, err := s.srv.catalog.Keywords(s.ctx, s.id.Database, s.trk.Param("server_version"))
		if err != nil {
			s.log.Warn("statement refused: the server's keyword list could not be read", zap.Error(err))
			return s.refusedVerdict(nil, "catalog_unavailable", nil, refusal("the statement cannot be checked now (the server's keyword list could not be read); refused"))
		}
		s.keywords = kw
	}
	path, err := s.settledPath()
	if err != nil {
		s.log.Warn("statement refused: a search_path change did not settle", zap.Error(err))
		return &verdict{refusal: refusal("the statement cannot be checked now (a search_path change is still in flight); refused")}
	}
	st := s.trk.Status()
	s.sqlMu.Lock()
	defaultPath := s.sql.defaultPath
	s.sqlMu.Unlock()
	key := verdictKey{db: s.id.Database, user: s.id.User, role: role.Name, policyGen: gen, catalogGen: s.srv.catalog.Generation(s.id.Database),
		path: strings.Join(path, "\x00"), defaultPath: strings.Join(defaultPath, "\x00"), inTx: st == 'T' || st == 'E',
		typ: typ, types: typesKey(types), sql: q}
	if v, ok := s.srv.verdicts.Get(key); ok {
		if v.refusal != nil {
			s.auditRefusal(v)
		}
		return v
	}
	v := s.decide(q, typ, types, path, defaultPath, key.inTx)
	if v.refusal != nil {
		s.auditRefusal(v)
	}
	if v.cacheable {
		s.srv.verdicts.Put(key, v)
	}
	return v
}

// decide runs both lines on the SQL.
func (s *session) decide(q string, typ byte, types []uint32, path, defaultPath []string, inTx bool) *verdict {
	pol, role, _ := s.policyNow()
	ctx, cancel := context.WithTimeout(s.ctx, planTimeout)
	defer cancel()
	sess := &analyze.Session{Policy: pol, Role: role, Keywords: s.keywords, SearchPath: path, DefaultSearchPath: defaultPath, InTransaction: inTx}
	res, err := analyze.Analyze(ctx, sess, s.srv.catalog.ForAnalysis(s.id.Database, s.id.User), q)
	if err != nil {
		s.log.Warn("statement refused: the catalog could not be read to check it", zap.Error(err))
		return s.refusedVerdict(nil, "catalog_unavailable", nil, refusal("the statement cannot be checked now (catalog lookup failed); refused"))
	}
	var stmts []sqlinfo.Statement
	if res.Tree != nil {
		stmts, _ = sqlinfo.Describe(res.Tree, q)
	}
	if res.Refusal != nil {
		v := s.refusedVerdict(stmts, "sql_analysis", res.Refusal, errorFrame(codeInsufficientPriv, res.Refusal.Message()))
		v.cacheable = true
		return v
	}
	// Rows of a table whose values the role does not see in clear come
	// back in the proxy's digest order whatever plan the server picks
	// (its physical order, an index's, a merge join's follow the clear
	// values); the client's own ORDER BY stays first.
	digest := make([]bool, len(res.Statements))
	outs := make([]*sqlinfo.Outputs, len(res.Statements))
	for i, info := range res.Statements {
		if !returnsRows(info.Kind) || !info.DigestOrder && !protectsAny(pol, role, info.Relations) {
			continue // EXPLAIN, SHOW, SET…: no rows of tables to order
		}
		if o := info.DigestOutputs(); o != nil {
			if !info.DigestOrder && !slices.Contains(o.Hash, true) && len(o.RowsOf) == 0 {
				continue // every column withheld: the rows look all alike
			}
			digest[i], outs[i] = true, o
			continue
		}
		// Output names not known: hash by name and keep SELECT *, which
		// needs the client's ORDER BY to name output columns.
		names, ok := info.DigestColumns()
		if info.DigestOrder || ok && i < len(res.Tree.GetStmts()) && sqlinfo.KeepsOrder(res.Tree.GetStmts()[i], res.Tree.GetVersion()) {
			digest[i] = true
			if names != nil {
				outs[i] = &sqlinfo.Outputs{Names: names, ByName: true}
			}
			continue
		}
		// Without the digest its rows would come back in the server's
		// order; with it, in another order than the client asked for.
		v := s.refusedVerdict(stmts, "digest_order", nil, refusal("pgpseudo cannot give the statement's rows the digest order that hides the order of protected values (the names of its output columns are not known); role "+
			role.Name+" may not run it (rule: results over tables a restricted role does not see in clear come back in the proxy's digest order; name the output columns with AS)"))
		v.cacheable = true // it depends on the text alone
		return v
	}
	v, unordered := s.checkOnServer(ctx, q, typ, types, path, res, stmts, digest, outs)
	if unordered >= 0 && unordered < len(digest) && !digest[unordered] {
		// The server's plan orders rows by protected clear values (a
		// merge join, an index scan): the statement runs with the
		// digest ordering instead, checked again.
		digest[unordered], outs[unordered] = true, res.Statements[unordered].DigestOutputs()
		v, _ = s.checkOnServer(ctx, q, typ, types, path, res, stmts, digest, outs)
	}
	return v
}

// checkOnServer sends the statements of q (those marked in digest with the
// proxy's digest ordering over their outputs outs) through the
// server-side check. unordered is the statement refused only for the
// order of its rows, or -1.
func (s *session) checkOnServer(ctx context.Context, q string, typ byte, types []uint32, path []string, res *analyze.Result,
	stmts []sqlinfo.Statement, digest []bool, outs []*sqlinfo.Outputs) (v *verdict, unordered int) {
	pol, role, _ := s.policyNow()
	v = &verdict{stmts: stmts, cacheable: true}
	if res.SearchPathChanged {
		v.pathAfter = res.SearchPath
	}
	send, tree := q, res.Tree
	var err error
	ties := make([][]sqlinfo.Tie, len(res.Statements))
	anyTies := false
	for i, info := range res.Statements {
		// EXPLAIN returns no rows of the tables, and would print the
		// digest (and its key) in its plan.
		if returnsRows(info.Kind) {
			ties[i], anyTies = info.Ties, anyTies || len(info.Ties) > 0
		}
	}
	if anyTrue(digest) || anyTies {
		if send, err = sqlinfo.WithDigestOrderOf(q, digest, outs, ties, s.srv.digestKey); err != nil {
			return s.refusedVerdict(stmts, "digest_order", nil, refusal("the statement's rows would come back in an order that follows pseudonymised values and it cannot be given the proxy's digest ordering ("+err.Error()+"); role "+role.Name+" may not run it (rule: such rows are ordered by a keyed digest)")), -1
		}
		if tree, err = pg_query.Parse(send); err != nil {
			return s.refusedVerdict(stmts, "digest_order", nil, refusal("the statement's digest ordering does not parse; refused")), -1
		}
		v.send = send
	}
	checks, idx, ref := checkTexts(tree, send, typ, types)
	if ref != "" {
		return s.refusedVerdict(stmts, "server_check", nil, refusal(ref+"; role "+role.Name+" may not run it (rule: a statement pgpseudo checks on the server's plan must not follow one that changes the session in the same query string)")), -1
	}
	v.results = make([]resultVerdict, len(tree.GetStmts()))
	for i, raw := range tree.GetStmts() {
		v.results[i].noData = noDataKind(sqlinfo.KindOf(raw.GetStmt()))
	}
	if len(checks) == 0 {
		return v, -1
	}
	run, err := s.runCheck(checks, typ == 'Q')
	if err != nil {
		return &verdict{fatal: err}, -1
	}
	switch {
	case run.skipped:
		return &verdict{skipped: true, stmts: stmts}, -1
	case run.err != nil:
		// The server refused the statement itself (or its plan): the
		// client gets the server's own error, scrubbed.
		return &verdict{refusal: s.checkErrorFrame(run), serverError: true, stmts: stmts}, -1
	case len(run.plans) != len(checks):
		return &verdict{fatal: fmt.Errorf("server-side check: %d plans for %d statements", len(run.plans), len(checks))}, -1
	}
	if run.hasPath && !samePath(analyze.ParseSearchPath(run.path), path) {
		s.log.Error("analysis disagreement: the server's search_path is not the one pgpseudo analysed with; statement refused")
		s.sqlMu.Lock()
		s.sql.path = analyze.ParseSearchPath(run.path)
		s.sqlMu.Unlock()
		return &verdict{refusal: refusal("the session's search_path changed without pgpseudo seeing it; run the statement again"), stmts: stmts}, -1
	}
	views, err := s.srv.catalog.ViewSyntax(ctx, s.id.Database)
	if err != nil {
		s.log.Warn("statement refused: view definitions could not be read", zap.Error(err))
		return s.refusedVerdict(stmts, "catalog_unavailable", nil, refusal("the statement cannot be checked now (view definitions could not be read); refused")), -1
	}
	cc := s.srv.catalog.ForPlanCheck(s.id.Database, pol, role)
	for k, plan := range run.plans {
		i := idx[k]
		in := plancheck.Input{Plan: plan, Syntax: plancheck.SyntaxOf(checks[k].stmt).Merge(views), Keywords: s.keywords,
			DigestMarker: s.srv.digestKey, PrintsSubplanTests: s.serverVersionNum() >= 170000, PlanOnly: checks[k].planOnly}
		pr, err := plancheck.Check(ctx, cc, in)
		if err != nil {
			s.log.Warn("statement refused: the server-side check failed", zap.Error(err))
			return s.refusedVerdict(stmts, "server_check", nil, refusal("the statement cannot be checked now (the server-side check failed); refused")), -1
		}
		if pr.Refusal != nil {
			pr.Refusal.Role = role.Name
			rv := s.refusedVerdict(stmts, "server_check", pr.Refusal, errorFrame(codeInsufficientPriv, pr.Refusal.Message()))
			rv.cacheable = true
			if pr.Unordered {
				// The row order depends on the plan, which the static
				// analysis does not see: no disagreement.
				rv.auditRule = "digest_order"
				return rv, i
			}
			// The static analysis allowed what the server's plan refuses:
			// the two lines disagree, which is worth a look.
			s.log.Warn("analysis disagreement: the server's plan refuses a statement the analysis allowed",
				zap.String("rule", pr.Refusal.Rule), zap.String("column", pr.Refusal.Column))
			return rv, -1
		}
		v.results[i] = resultVerdict{outputs: pr.Outputs, checked: true}
	}
	return v, -1
}

// returnsRows reports statement kinds whose rows the digest ordering
// wraps.
func returnsRows(kind string) bool {
	switch kind {
	case "Select", "DeclareCursor", "Copy", "Prepare":
		return true
	}
	return false
}

// protectsAny reports whether role sees any of rels other than in clear.
func protectsAny(pol *policy.Policy, role *policy.Role, rels []policy.TableName) bool {
	for _, t := range rels {
		if pol.Protects(role, t) {
			return true
		}
	}
	return false
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// refusedVerdict is a refusal, described for the audit log.
func (s *session) refusedVerdict(stmts []sqlinfo.Statement, rule string, r *analyze.Refusal, frame []byte) *verdict {
	v := &verdict{refusal: frame, auditRule: rule, stmts: stmts}
	if r != nil && r.Column != "" {
		v.auditTable, v.auditColumn = r.Table.Schema+"."+r.Table.Table, r.Column
	}
	return v
}

// checkTexts lists the statements of a query string to plan on the
// server, with their positions, or says why the string cannot be checked:
// a statement that changes the session (SET, DISCARD, transaction control
// other than BEGIN, PREPARE, …) before one that reads data would change
// how the server reads the latter, so it must run on its own.
func checkTexts(tree *pg_query.ParseResult, sql string, typ byte, types []uint32) ([]checkStmt, []int, string) {
	var out []checkStmt
	var idx []int
	changed := false
	for i, raw := range tree.GetStmts() {
		n := raw.GetStmt()
		text := stmtText(sql, raw)
		var c *checkStmt
		switch x := n.GetNode().(type) {
		case *pg_query.Node_SelectStmt, *pg_query.Node_DeclareCursorStmt, *pg_query.Node_ExecuteStmt:
			c = &checkStmt{text: text, stmt: n}
		case *pg_query.Node_CopyStmt:
			if q := x.CopyStmt.GetQuery(); q != nil {
				c = &checkStmt{text: deparse(tree.GetVersion(), q), stmt: q}
			} else if x.CopyStmt.GetRelation() != nil {
				c = &checkStmt{text: copyProbeText(x.CopyStmt), stmt: n}
			}
		case *pg_query.Node_ExplainStmt:
			if q := x.ExplainStmt.GetQuery(); q != nil && q.GetExecuteStmt() == nil {
				c = &checkStmt{text: deparse(tree.GetVersion(), q), stmt: q, planOnly: true}
			}
		case *pg_query.Node_TransactionStmt:
			if k := x.TransactionStmt.GetKind(); k != pg_query.TransactionStmtKind_TRANS_STMT_BEGIN && k != pg_query.TransactionStmtKind_TRANS_STMT_START {
				changed = true
			}
		case *pg_query.Node_VariableShowStmt:
		default:
			changed = true
		}
		if c == nil {
			continue
		}
		if c.text == "" {
			return nil, nil, "the statement cannot be written for the server-side check"
		}
		if changed {
			return nil, nil, fmt.Sprintf("statement %d reads data after a statement that changes the session", i+1)
		}
		if typ == 'P' {
			c.types, c.nparams = types, maxParam(n)
		} else if p := maxParam(n); p > 0 {
			c.nparams = p // a simple query with $n fails on the server anyway
		}
		out = append(out, *c)
		idx = append(idx, i)
	}
	return out, idx, ""
}

// stmtText is one statement's text within sql.
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.GetStmtLocation())
	if start > len(sql) {
		return ""
	}
	if l := int(raw.GetStmtLen()); l > 0 && start+l <= len(sql) {
		return sql[start : start+l]
	}
	return sql[start:]
}

// deparse writes a statement's query as SQL ("" if it cannot).
func deparse(version int32, n *pg_query.Node) string {
	s, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: n}}})
	if err != nil {
		return ""
	}
	return s
}

// copyProbeText is the SELECT with the columns of COPY table (cols).
func copyProbeText(c *pg_query.CopyStmt) string {
	rv := c.GetRelation()
	cp := &sqlinfo.Copy{Relation: &sqlinfo.Relation{Schema: rv.GetSchemaname(), Name: rv.GetRelname()}}
	for _, a := range c.GetAttlist() {
		cp.Columns = append(cp.Columns, a.GetString_().GetSval())
	}
	return cp.ProbeQuery()
}

// maxParam is the highest $n a statement uses.
func maxParam(n *pg_query.Node) int {
	best := 0
	sqlinfo.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if p, ok := m.Interface().(*pg_query.ParamRef); ok && int(p.GetNumber()) > best {
			best = int(p.GetNumber())
		}
	})
	return best
}

// parseTypes reads the parameter types of a Parse body.
func parseTypes(body []byte) []uint32 {
	_, rest, ok := strings.Cut(string(body), "\x00")
	if !ok {
		return nil
	}
	_, rest, ok = strings.Cut(rest, "\x00")
	if !ok || len(rest) < 2 {
		return nil
	}
	b := []byte(rest)
	n := int(b[0])<<8 | int(b[1])
	if len(b) != 2+4*n {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		o := 2 + 4*i
		out[i] = uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3])
	}
	return out
}

func samePath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serverVersionNum is the server's version as a number (150008).
func (s *session) serverVersionNum() int {
	v := s.trk.Param("server_version")
	major, rest, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	minor := 0
	if m := strings.TrimLeft(rest, "0123456789"); len(m) < len(rest) {
		minor, _ = strconv.Atoi(rest[:len(rest)-len(m)])
	}
	return n*10000 + minor
}

// auditRefusal records a refused statement.
func (s *session) auditRefusal(v *verdict) {
	if v.auditRule == "" {
		return
	}
	var r *analyze.Refusal
	if v.auditColumn != "" {
		r = &analyze.Refusal{Column: v.auditColumn}
		if schema, table, ok := strings.Cut(v.auditTable, "."); ok {
			r.Table.Schema, r.Table.Table = schema, table
		}
	}
	s.auditRefused(v.stmts, v.auditRule, r)
}
