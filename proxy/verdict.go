package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/plancheck"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
	"github.com/pgpseudo/pgpseudo/proxy/screen"
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
	// serverPath is set when the server-side check read another
	// search_path than the statement was analysed with: it must be
	// decided again with this one (never cached, never sent).
	serverPath []string
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
	// shadow is what the candidate policy would have done otherwise
	// (policy_shadow), reported each time the verdict is used.
	shadow []audit.ShadowDifference
	// template is set on the verdict of a shape's template
	// (shapeVerdict); a shape's entry without it marks a shape whose
	// texts are decided one by one.
	template *shapeTemplate
}

// resultVerdict is what a statement's result columns without a table
// origin may carry: nothing when the statement returns no table data
// (SHOW, SET, EXPLAIN), otherwise what the server's plan proves for each
// output column (unknown: withheld).
type resultVerdict struct {
	noData  bool
	outputs []plancheck.Output
	checked bool
	// lifts are the result columns the proxy computes on the column's
	// rewritten value (a cast or prefix the statement asked the server
	// for).
	lifts []sqlinfo.Lift
	// drillParams are the statement's parameters whose tokens the proxy
	// decodes at each Bind (sqlinfo.Drill).
	drillParams []sqlinfo.Drill
	// relations are every relation the analysis found the statement
	// reading (views and the base tables behind them, joins, subqueries),
	// and reads the classified columns it refers to, for its audit record:
	// its result columns alone may name none (count(DISTINCT x)), one side
	// of a join, or miss the columns it filters on.
	relations []string
	reads     []audit.ColumnDecision
}

// lift returns the PostOp of result column i.
func (r resultVerdict) lift(i int) (sqlinfo.PostOp, bool) {
	for _, l := range r.lifts {
		if l.Output == i {
			return l.Op, true
		}
	}
	return sqlinfo.PostOp{}, false
}

// clean reports whether computed column i may leave unchanged.
func (r resultVerdict) clean(i int) bool {
	if r.noData {
		return true
	}
	return r.checked && i < len(r.outputs) && r.outputs[i].Clean()
}

// bareSource returns the protected base column that column i passes on
// unchanged, as the server's plan shows it (a view's column over a table's).
func (r resultVerdict) bareSource(i int) (plancheck.Source, bool) {
	if !r.checked || i >= len(r.outputs) || !r.outputs[i].Bare || len(r.outputs[i].Sources) != 1 {
		return plancheck.Source{}, false
	}
	return r.outputs[i].Sources[0], true
}

// verdictKey is everything a verdict depends on.
type verdictKey struct {
	db, user, role        string
	policyGen, catalogGen uint64
	shadowGen             uint64
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
	for _, st := range v.stmts {
		n += int64(len(st.Text)+len(st.Fingerprint)) + 64
	}
	if v.template != nil {
		for _, t := range v.template.texts {
			n += int64(len(t)) + 16
		}
		if v.template.fill != nil {
			n += int64(len(v.send)) + 64
		}
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
		types = screen.ParamTypes(body)
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
	if path, err = s.confirmedPath(path, typ == 'Q'); err != nil {
		return &verdict{fatal: err}
	}
	st := s.trk.Status()
	s.sqlMu.Lock()
	defaultPath, uncertain := s.sql.defaultPath, s.sql.pathUncertain()
	s.sqlMu.Unlock()
	key := verdictKey{db: s.id.Database, user: s.id.User, role: role.Name, policyGen: gen, catalogGen: s.srv.catalog.Generation(s.id.Database), shadowGen: s.srv.shadowGeneration(),
		path: strings.Join(path, "\x00"), defaultPath: strings.Join(defaultPath, "\x00"), inTx: st == 'T' || st == 'E',
		typ: typ, types: typesKey(types), sql: q}
	if !uncertain {
		// (While the path may not be the server's, every statement is
		// decided afresh: its check reads the server's path.)
		if v, ok := s.srv.verdicts.Get(key); ok {
			s.reportVerdictShadow(typ, v)
			if v.refusal != nil {
				s.auditRefusal(v)
			}
			return v
		}
	}
	if !uncertain {
		if v, ok := s.shapeVerdict(key, q, role, path, defaultPath); ok {
			s.reportVerdictShadow(typ, v)
			return v
		}
	}
	// A role's subset turns pg_dump's COPY of a table into a COPY of the
	// rows it keeps: that statement is the one decided and sent.
	run := q
	if typ == 'Q' {
		var err error
		if run, err = s.subsetCopy(s.ctx, q, role); err != nil {
			s.log.Warn("statement refused: the role's subset could not be applied", zap.Error(err))
			return s.refusedVerdict(nil, "catalog_unavailable", nil, refusal("the statement cannot be checked now (the foreign keys for the role's subset could not be read); refused"))
		}
	}
	v := s.decide(run, typ, types, path, defaultPath, key.inTx)
	if v.serverPath != nil {
		// The server's path is not the one the statement was analysed
		// with (a rollback undid a change): decide again with it, once.
		path = v.serverPath
		key.path = strings.Join(path, "\x00")
		if v = s.decide(run, typ, types, path, defaultPath, key.inTx); v.serverPath != nil {
			v = &verdict{refusal: refusal("the session's search_path changed while the statement was checked; run it again"), stmts: v.stmts}
		}
	}
	if run != q && v.send == "" && v.refusal == nil {
		v.send = run
	}
	s.reportVerdictShadow(typ, v)
	if v.refusal != nil {
		s.auditRefusal(v)
	}
	if v.cacheable {
		s.srv.verdicts.Put(key, v)
	}
	return v
}

// confirmedPath returns the server's search_path when a rollback may have
// undone a change the session made (sqlSession.uncertain): read by the
// server-side check's own probe, before the statement is analysed.
// Otherwise, or when the server cannot answer (an aborted transaction,
// whose statements fail anyway), path stands.
func (s *session) confirmedPath(path []string, simple bool) ([]string, error) {
	s.sqlMu.Lock()
	uncertain := s.sql.uncertain
	s.sqlMu.Unlock()
	if !uncertain {
		return path, nil
	}
	run, err := s.runCheck(nil, simple, false)
	if err != nil {
		return nil, err
	}
	if run.skipped || run.err != nil || !run.hasPath {
		return path, nil
	}
	server := analyze.ParseSearchPath(run.path)
	s.sqlMu.Lock()
	s.sql.path, s.sql.batchStart, s.sql.uncertain = server, server, false
	s.sqlMu.Unlock()
	return server, nil
}

// decide runs both lines on the SQL.
func (s *session) decide(q string, typ byte, types []uint32, path, defaultPath []string, inTx bool) (v *verdict) {
	pol, role, _ := s.policyNow()
	ctx, cancel := context.WithTimeout(s.ctx, planTimeout)
	defer cancel()
	sess := &analyze.Session{Policy: pol, Role: role, Keywords: s.keywords, SearchPath: path, DefaultSearchPath: defaultPath, InTransaction: inTx}
	start := time.Now()
	tree, res, err := analyze.Parse(sess, q)
	s.srv.metrics.observe(stageParse, start)
	if tree != nil {
		start = time.Now()
		res, err = analyze.AnalyzeParsed(ctx, sess, s.srv.catalog.ForAnalysis(s.id.Database, s.id.User), q, tree)
		s.srv.metrics.observe(stageAnalyse, start)
	}
	if err != nil {
		s.log.Warn("statement refused: the catalog could not be read to check it", zap.Error(err))
		return s.refusedVerdict(nil, "catalog_unavailable", nil, refusal("the statement cannot be checked now (catalog lookup failed); refused"))
	}
	defer func() {
		// After everything that reads the enforced analysis's parse: the
		// candidate is analysed on the same one.
		if v != nil && v.serverPath == nil && v.fatal == nil && !v.skipped && s.srv.shadow != nil {
			v.shadow = s.shadowOf(ctx, q, res, path, defaultPath, inTx)
		}
	}()
	var stmts []sqlinfo.Statement
	if res.Tree != nil {
		stmts, _ = sqlinfo.Describe(res.Tree, q)
	}
	if res.Refusal != nil {
		v = s.refusedVerdict(stmts, res.Refusal.Code(), res.Refusal, errorFrame(codeInsufficientPriv, res.Refusal.Message()))
		v.cacheable = true
		return v
	}
	digest, outs, ties, why := screen.Ordering(res, pol, role)
	if why != "" {
		v = s.refusedVerdict(stmts, "digest_order", nil, refusal(why))
		v.cacheable = true // it depends on the text alone
		return v
	}
	start = time.Now()
	defer s.srv.metrics.observe(stageServerCheck, start)
	v, unordered := s.checkOnServer(ctx, q, typ, types, path, res, stmts, digest, outs, ties)
	if unordered >= 0 && unordered < len(digest) && !digest[unordered] {
		// The server's plan orders rows by protected clear values (a
		// merge join, an index scan): the statement runs with the
		// digest ordering instead, checked again.
		digest[unordered], outs[unordered] = true, res.Statements[unordered].DigestOutputs()
		v, _ = s.checkOnServer(ctx, q, typ, types, path, res, stmts, digest, outs, ties)
	}
	return v
}

// checkOnServer sends the statements of q (those marked in digest with the
// proxy's digest ordering over their outputs outs) through the
// server-side check. unordered is the statement refused only for the
// order of its rows, or -1.
func (s *session) checkOnServer(ctx context.Context, q string, typ byte, types []uint32, path []string, res *analyze.Result,
	stmts []sqlinfo.Statement, digest []bool, outs []*sqlinfo.Outputs, ties [][]sqlinfo.Tie) (v *verdict, unordered int) {
	pol, role, _ := s.policyNow()
	v = &verdict{stmts: stmts, cacheable: true}
	if res.SearchPathChanged {
		v.pathAfter = res.SearchPath
	}
	send, tree := q, res.Tree
	var err error
	anyTies := slices.ContainsFunc(ties, func(t []sqlinfo.Tie) bool { return len(t) > 0 })
	lifts := make([][]sqlinfo.Lift, len(res.Statements))
	anyLifts := false
	for i, st := range res.Statements {
		lifts[i], anyLifts = st.Lifts, anyLifts || len(st.Lifts) > 0
	}
	drills, why, err := s.drillValues(ctx, pol, role, res, types)
	switch {
	case err != nil:
		s.log.Warn("statement refused: drill-down values could not be decoded", zap.Error(err))
		return s.refusedVerdict(stmts, "drill_down", nil, refusal("the statement's drill-down cannot be decoded now; refused")), -1
	case why != "":
		return s.refusedVerdict(stmts, "drill_down", nil, refusal(why)), -1
	}
	if anyTrue(digest) || anyTies || anyLifts || drills != nil {
		if send, err = sqlinfo.Rewritten(q, digest, outs, ties, lifts, drills, s.srv.DigestKeyFor(role.Name)); err != nil {
			return s.refusedVerdict(stmts, "digest_order", nil, refusal("the statement's rows would come back in an order that follows pseudonymised values and it cannot be given the proxy's digest ordering ("+err.Error()+"); role "+role.Name+" may not run it (rule: such rows are ordered by a keyed digest)")), -1
		}
		if tree, err = pg_query.Parse(send); err != nil {
			return s.refusedVerdict(stmts, "digest_order", nil, refusal("the statement's digest ordering does not parse; refused")), -1
		}
		v.send = send
	}
	checks, idx, ref := screen.Probes(tree, send, typ, types)
	if ref != "" {
		return s.refusedVerdict(stmts, "server_check", nil, refusal(ref+"; role "+role.Name+" may not run it (rule: a statement pgpseudo checks on the server's plan must not follow one that changes the session in the same query string)")), -1
	}
	v.results = make([]resultVerdict, len(tree.GetStmts()))
	for i, raw := range tree.GetStmts() {
		v.results[i].noData = noDataKind(sqlinfo.KindOf(raw.GetStmt()))
		if i < len(lifts) {
			v.results[i].lifts = lifts[i]
		}
		if i < len(res.Statements) {
			for _, t := range res.Statements[i].Relations {
				v.results[i].relations = append(v.results[i].relations, t.Schema+"."+t.Table)
			}
			for _, r := range res.Statements[i].Reads {
				v.results[i].reads = append(v.results[i].reads, audit.ColumnDecision{Table: r.Table.Schema + "." + r.Table.Table,
					Column: r.Column, Class: r.Decision.Category, Decision: rewrite.DecisionOf(r.Decision.Action), Referred: true})
			}
		}
		if i < len(drills) {
			v.results[i].drillParams = paramDrills(drills[i])
		}
	}
	if len(checks) == 0 {
		return v, -1
	}
	run, err := s.runCheck(checks, typ == 'Q', drills != nil)
	if err != nil {
		return &verdict{fatal: err}, -1
	}
	switch {
	case run.skipped:
		return &verdict{skipped: true, stmts: stmts}, -1
	case run.err != nil:
		// The server refused the statement itself (or its plan): the
		// client gets the server's own error, scrubbed (without its
		// position when clear drill-down values are in the text).
		return &verdict{refusal: s.checkErrorFrame(run), serverError: true, stmts: stmts}, -1
	case len(run.plans) != len(checks):
		return &verdict{fatal: fmt.Errorf("server-side check: %d plans for %d statements", len(run.plans), len(checks))}, -1
	}
	if run.hasPath {
		server := analyze.ParseSearchPath(run.path)
		s.sqlMu.Lock()
		expected := s.sql.pathUncertain()
		if !samePath(server, path) {
			s.sql.path, s.sql.batchStart = server, server
		}
		if !s.sql.txSet {
			s.sql.uncertain = false // confirmed by the server
		}
		s.sqlMu.Unlock()
		if !samePath(server, path) {
			if !expected {
				s.log.Error("analysis disagreement: the server's search_path is not the one pgpseudo analysed with; statement decided again")
			}
			return &verdict{serverPath: server, stmts: stmts}, -1
		}
	}
	views, err := s.srv.catalog.ViewSyntax(ctx, s.id.Database)
	if err != nil {
		s.log.Warn("statement refused: view definitions could not be read", zap.Error(err))
		return s.refusedVerdict(stmts, "catalog_unavailable", nil, refusal("the statement cannot be checked now (view definitions could not be read); refused")), -1
	}
	cc := s.srv.catalog.ForPlanCheck(s.id.Database, pol, role)
	for k, plan := range run.plans {
		i := idx[k]
		var drillParams map[int]string
		if i < len(drills) {
			for _, d := range paramDrills(drills[i]) {
				if drillParams == nil {
					drillParams = map[int]string{}
				}
				drillParams[d.Param] = d.Domain
			}
		}
		in := plancheck.Input{Plan: plan, Syntax: plancheck.SyntaxOf(checks[k].Stmt).WithViews(views), Keywords: s.keywords, DrillParams: drillParams,
			DigestMarker: s.srv.DigestKeyFor(role.Name), PrintsSubplanTests: s.serverVersionNum() >= 170000, PlanOnly: checks[k].PlanOnly}
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
		v.results[i] = resultVerdict{outputs: pr.Outputs, checked: true, lifts: v.results[i].lifts, drillParams: v.results[i].drillParams, relations: v.results[i].relations, reads: v.results[i].reads}
	}
	return v, -1
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
