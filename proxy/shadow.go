package proxy

import (
	"context"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
)

// Shadow mode (policy_shadow, docs/operations.md): a candidate policy is
// decided beside the enforced one on every statement of a restricted
// session, on the same parse and catalog, and every difference is counted
// and recorded; nothing of it is enforced. The candidate is compared on
// the static analysis's verdict (shadowOf, per statement) and on the
// decision for each column a result returns (buildPlan, per result), not
// on the server-side check, so shadow mode adds no round trip; a refusal
// only the server's plan would make is not predicted.

// shadowNow returns the candidate policy and the session's role in it
// (nil when none matches) with the candidate's generation; ok is false
// without a candidate.
func (s *session) shadowNow() (pol *policy.Policy, role *policy.Role, gen uint64, ok bool) {
	if s.srv.shadow == nil {
		return nil, nil, 0, false
	}
	st := s.srv.shadow.cur.Load()
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	if st.generation != s.shadowGen {
		role, err := st.pol.RoleFor(s.id.User, s.memberOf)
		if err != nil {
			role = nil
		}
		s.shadowRole, s.shadowGen = role, st.generation
	}
	return st.pol, s.shadowRole, s.shadowGen, true
}

// shadowGeneration is the candidate's generation (0 without one): part of
// the verdict key, since a verdict carries the candidate's differences.
func (s *Server) shadowGeneration() uint64 {
	if s.shadow == nil {
		return 0
	}
	return s.shadow.cur.Load().generation
}

// shadowOf decides q under the candidate, on the enforced analysis's
// parse, and returns what it would have done otherwise.
func (s *session) shadowOf(ctx context.Context, q string, res *analyze.Result, path, defaultPath []string, inTx bool) []audit.ShadowDifference {
	spol, srole, _, ok := s.shadowNow()
	if !ok || srole == nil || res.Tree == nil {
		// No candidate, or one that refuses the login (recorded then).
		return nil
	}
	sess := &analyze.Session{Policy: spol, Role: srole, Keywords: s.keywords, SearchPath: path, DefaultSearchPath: defaultPath, InTransaction: inTx}
	sres, err := analyze.AnalyzeParsed(ctx, sess, s.srv.catalog.ForAnalysis(s.id.Database, s.id.User), q, res.Tree)
	if err != nil {
		s.log.Debug("shadow policy: the statement could not be analysed", zap.Error(err))
		return nil
	}
	switch {
	case res.Refusal == nil && sres.Refusal != nil:
		d := audit.ShadowDifference{Kind: audit.ShadowRefuse, Rule: audit.FitCode(sres.Refusal.Code())}
		if sres.Refusal.Column != "" {
			d.Table, d.Column = audit.FitName(sres.Refusal.Table.Schema+"."+sres.Refusal.Table.Table), audit.FitName(sres.Refusal.Column)
		}
		return []audit.ShadowDifference{d}
	case res.Refusal != nil && sres.Refusal == nil:
		return []audit.ShadowDifference{{Kind: audit.ShadowAllow, Rule: audit.FitCode(res.Refusal.Code())}}
	}
	// Refused either way, or allowed either way: what the candidate would
	// send instead is compared on each result's columns (buildPlan), so
	// every column a result returns counts, stars and COPY included,
	// classified or not.
	return nil
}

// decisionDifference is how the candidate's decision sd on a result
// column differs from the enforced d, if it does.
func decisionDifference(t policy.TableName, column string, d, sd policy.Decision) (audit.ShadowDifference, bool) {
	if d.Action == sd.Action && (d.Action != policy.Tokenize && d.Action != policy.Mask || d.Spec == sd.Spec) {
		return audit.ShadowDifference{}, false
	}
	diff := audit.ShadowDifference{Kind: audit.ShadowRewrite, Column: audit.FitName(column),
		Enforced: rewrite.DecisionOf(d.Action), Candidate: rewrite.DecisionOf(sd.Action), Rule: audit.FitName(sd.Rule),
		EnforcedTransform: audit.FitName(d.TransformName()), CandidateTransform: audit.FitName(sd.TransformName())}
	if t.Table != "" {
		diff.Table = audit.FitName(t.Schema + "." + t.Table)
	}
	if withheldAction(sd.Action) && !withheldAction(d.Action) {
		diff.Kind = audit.ShadowWithhold
	}
	return diff, true
}

func withheldAction(a policy.Action) bool { return a == policy.Block || a == policy.Null }

// reportVerdictShadow reports a verdict's differences where the verdict
// is the statement's run: a simple query, or a refusal (which never runs).
// A prepared statement's are reported at each Execute (stmtMeta.shadow).
func (s *session) reportVerdictShadow(typ byte, v *verdict) {
	if typ == 'Q' || v.refusal != nil {
		var st sqlinfo.Statement
		if len(v.stmts) > 0 {
			st = v.stmts[0]
		}
		s.reportShadow(v.shadow, st)
	}
}

// reportShadow counts and records the candidate's differences on a
// statement about to run (or be refused). A record that cannot be written
// changes nothing for the client: shadow mode only observes.
func (s *session) reportShadow(diffs []audit.ShadowDifference, st sqlinfo.Statement) {
	if len(diffs) == 0 {
		return
	}
	for _, d := range diffs {
		s.srv.metrics.shadowDiffs.WithLabelValues(d.Kind).Inc()
	}
	if s.srv.aud == nil {
		return
	}
	ev := audit.Shadow{Session: s.auditSession(), PolicyHash: "sha256:" + s.srv.shadow.cur.Load().pol.Hash, Kind: "unknown", Differences: diffs,
		Fingerprint: audit.FitCode(st.Fingerprint)}
	if _, srole, _, _ := s.shadowNow(); srole != nil {
		ev.ShadowRole = audit.FitName(srole.Name)
	}
	if k := audit.FitCode(auditKind(st.Kind)); k != "" && st.Kind != "" {
		ev.Kind = k
	}
	if err := s.srv.auditWrite(ev); err != nil {
		s.log.Warn("shadow record not written", zap.Error(err))
	}
}

// startResult records that a result's rows follow plan p: its columns
// for the statement's audit record, and what the shadow candidate would
// send otherwise (once per result, whether the plan was built for it or
// reused).
func (s *session) startResult(a *stmtAudit, p *rewrite.Plan) {
	a.usePlan(p)
	if len(p.Shadow) > 0 {
		st := sqlinfo.Statement{}
		if a != nil {
			st.Fingerprint, st.Kind = a.fingerprint, a.kind
		}
		s.reportShadow(p.Shadow, st)
	}
}

// shadowLogin records the candidate's differences at login: no role for
// the user, or a restriction on a role that sees everything now (whose
// statements are not analysed, so nothing more is compared).
func (s *session) shadowLogin(role *policy.Role) {
	spol, srole, _, ok := s.shadowNow()
	if !ok {
		return
	}
	var d audit.ShadowDifference
	switch {
	case srole == nil:
		d = audit.ShadowDifference{Kind: audit.ShadowRefuseLogin, Rule: "no_role"}
	case !role.Restricted() && srole.Restricted():
		d = audit.ShadowDifference{Kind: audit.ShadowRestrict}
	default:
		return
	}
	s.srv.metrics.shadowDiffs.WithLabelValues(d.Kind).Inc()
	if s.srv.aud == nil {
		return
	}
	ev := audit.Shadow{Session: s.auditSession(), PolicyHash: "sha256:" + spol.Hash, Kind: "login", Differences: []audit.ShadowDifference{d}}
	if srole != nil {
		ev.ShadowRole = audit.FitName(srole.Name)
	}
	if err := s.srv.auditWrite(ev); err != nil {
		s.log.Warn("shadow record not written", zap.Error(err))
	}
}
