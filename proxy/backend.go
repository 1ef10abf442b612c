package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// errNoDescription reports row data whose columns pgpseudo does not know:
// the session ends rather than forward it (research/protocol.md rule 11).
var errNoDescription = errors.New("row data without a known row description")

// planTimeout bounds the catalog and key lookups of one column plan.
const planTimeout = 30 * time.Second

// stmtMeta is what the proxy knows of a prepared statement's SQL
// (protocol.Statement.Meta).
type stmtMeta struct {
	// mu guards result and state: a Bind checks the statement again on
	// the client's goroutine while its rows are planned on the upstream's.
	mu sync.Mutex
	// result says what the statement's computed columns may carry.
	result resultVerdict
	// parse is the client's Parse (restricted sessions), sent the SQL the
	// server prepared, and state what the verdict was made under
	// (checkState): a Bind under another state checks it again.
	parse []byte
	sent  string
	state string
	// pathAfter is the search_path once the statement has run, when it
	// changes it.
	pathAfter []string
	// audited identifies the statement in audit records (fingerprint,
	// kind, text).
	audited sqlinfo.Statement
	// shadow is what the candidate policy would do otherwise, reported at
	// each Execute (guarded by mu: a Bind's recheck replaces it).
	shadow []audit.ShadowDifference
}

// shadowDiffs returns the candidate's differences as last checked.
func (m *stmtMeta) shadowDiffs() []audit.ShadowDifference {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shadow
}

// verdict is what the statement's computed columns may carry, as last
// checked.
func (m *stmtMeta) verdict() resultVerdict {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.result
}

// queryMeta is what the proxy knows of a simple query it forwarded
// (protocol.Request.Meta).
type queryMeta struct {
	// stmts is the parse of the query string (nil when it did not parse).
	stmts []sqlinfo.Statement
	// copies are the COPY statements by index, with their probes.
	copies map[int]*copyState
	// aud is the record of the statement at audIdx; next is when the next
	// statement's record starts: when the query arrived, then when the
	// statement before it ended (a result's first message may come only
	// at its end, as after pg_sleep).
	aud    *stmtAudit
	audIdx int
	next   time.Time
	// pathAfter is the search_path once the query has run, when it
	// changes it.
	pathAfter []string
	// results say what each statement's computed columns may carry.
	results []resultVerdict
}

// audit returns the record of statement idx, finishing none: callers
// finish records at the statement's end.
func (q *queryMeta) audit(idx int) *stmtAudit {
	if q.aud == nil || q.audIdx != idx {
		var st sqlinfo.Statement
		if idx < len(q.stmts) {
			st = q.stmts[idx]
		}
		q.aud, q.audIdx = newStmtAudit(st), idx
		if !q.next.IsZero() {
			q.aud.start = q.next
		}
		if idx < len(q.results) {
			q.aud.useVerdict(q.results[idx])
		}
	}
	return q.aud
}

// ended closes statement idx's record: the next one starts now.
func (q *queryMeta) ended() {
	q.aud, q.next = nil, time.Now()
}

// execMeta is the record of an Execute (protocol.Request.Meta).
type execMeta struct {
	sent time.Time
	aud  *stmtAudit
	// mayChangePath: the session has a statement that changes
	// search_path, which this Execute may run; counted in sqlSession until
	// answered.
	mayChangePath bool
}

// refusedMeta marks a statement the proxy replaced by one that fails on
// the server (protocol.Request.Meta): the server's error is replaced by
// the refusal, and the server skips the rest of the batch as the client
// expects after an error.
type refusedMeta struct{ frame []byte }

// substituteSQL fails on every server with a syntax error; refused
// statements are replaced by it so that the server, not the proxy, aborts
// the transaction and skips the rest of the batch.
const substituteSQL = "pgpseudo refused this statement"

// substitute returns the message that replaces a refused Query, Parse or
// FunctionCall.
func substitute(typ byte, body []byte) (byte, []byte) {
	if typ == 'P' {
		name, _, _ := protocol.MessageName('P', body)
		return 'P', wire.Frame('P', []byte(name), []byte{0}, []byte(substituteSQL), []byte{0, 0, 0})[5:]
	}
	return 'Q', append([]byte(substituteSQL), 0)
}

// copyProbe is an injected Parse/Describe/Sync that learns a COPY's
// columns in the session before the COPY runs.
type copyProbe struct{ cs *copyState }

// restrictedBackend forwards one upstream message of a session with a
// policy, rewriting rows by their column plan. Any reply it cannot tie to
// a known description ends the session (fail closed). It runs on the
// upstream-to-client goroutine; the tracker's lock is held only inside
// Receive, never across catalog or key lookups.
func (s *session) restrictedBackend(m wire.Msg, out *[]byte) error {
	rep, err := s.trk.Receive(m.Type, m.Body())
	if err != nil {
		return err
	}
	return s.backendReply(m, rep, out)
}

// backendReply is restrictedBackend for a message the tracker has tied to
// its request.
func (s *session) backendReply(m wire.Msg, rep protocol.Reply, out *[]byte) error {
	emit := func(frames ...[]byte) {
		for _, f := range frames {
			*out = append(*out, f...)
		}
	}
	code := ""
	if m.Type == 'E' {
		code = errorCode(m.Body())
	}
	if rep.Req != nil && rep.Req.Injected {
		if m.Type == 'E' {
			// The proxy's own request failed: the server fails the batch
			// as for the client's error, undoing its search_path changes
			// (round 24: a check that failed at plan time left the proxy
			// on a path the server had undone).
			s.sqlMu.Lock()
			s.sql.failed = true
			s.sqlMu.Unlock()
		}
		// The reply first: a check's error must be recorded before the
		// requests it made the server skip are counted.
		err := s.injectedReply(m, rep, emit)
		for _, r := range rep.Skipped {
			s.skipped(r, code)
		}
		return err
	}
	for _, r := range rep.Skipped {
		s.skipped(r, code)
	}
	switch m.Type {
	case '1', '2', '3', 't', 'n':
		emit(m.Raw)
	case 'T':
		return s.rowDescription(m, rep, emit)
	case 'D':
		r := rep.Result
		p, first, err := s.resultPlan(r)
		if err != nil {
			return err
		}
		a := s.resultAudit(r)
		if first {
			emit(p.Notice())
			s.startResult(a, p)
		}
		s.rows++
		a.rows++
		before := len(*out)
		if p.Passthrough {
			emit(m.Raw)
		} else {
			timed, start := timeRewrite(a.rows), time.Time{}
			if timed {
				start = time.Now()
			}
			if *out, err = rewrite.DataRow(*out, m.Body(), p); err != nil {
				return err
			}
			if timed {
				a.rewrote(start)
			}
		}
		a.bytes += uint64(len(*out) - before)
	case 'H', 'W', 'G':
		return s.copyOut(m, rep.Result, emit)
	case 'd':
		switch {
		case s.copyRaw:
			emit(m.Raw)
		case s.copyBlocked != "":
		case s.copy != nil:
			a := s.resultAudit(rep.Result)
			timed, start, before := timeRewrite(a.rows+1), time.Time{}, len(*out)
			if timed {
				start = time.Now()
			}
			var err error
			if *out, err = s.copy.rw.CopyData(*out, m.Body()); err != nil {
				// Rows already sent were rewritten; the rest is withheld.
				// The client learns nothing of why: the shape of a row
				// it may not see (how many delimiters a value holds)
				// is itself information about the value.
				s.log.Warn("COPY data withheld: a row does not split into its columns", zap.Error(err))
				s.copy, s.copyBlocked = nil, "COPY data could not be checked against the policy; role "+s.roleName()+" may not receive it (rule: COPY output is rewritten per column or withheld)"
				break
			}
			a.rows++
			a.bytes += uint64(len(*out) - before)
			if timed {
				a.rewrote(start)
			}
			s.rows++
		default:
			return fmt.Errorf("%w: COPY data", errNoDescription)
		}
	case 'c': // CopyDone
		if s.copyBlocked == "" {
			emit(m.Raw)
		}
	case 'C', 'I', 's':
		s.copy, s.copyRaw = nil, false
		s.executed(rep)
		if m.Type == 'C' && settingTags(m.Body()) {
			s.styleUnsure = true
		}
		if m.Type == 'C' && bytes.HasPrefix(m.Body(), []byte("ROLLBACK")) {
			// A rollback to a savepoint may undo a path change of the
			// transaction block.
			s.sqlMu.Lock()
			if s.sql.txSet {
				s.sql.uncertain = true
			}
			s.sqlMu.Unlock()
		}
		a := s.resultAudit(rep.Result)
		if s.copyBlocked != "" && m.Type == 'C' {
			a.refusal = &audit.Refusal{Rule: "copy_withheld"}
			_ = s.finishStmt(a, audit.OutcomeRefused, codeInsufficientPriv)
			emit(refusal(s.copyBlocked))
			s.copyBlocked = ""
			s.endAudit(rep.Result)
			return nil
		}
		if m.Type != 's' {
			// The record is written before the client hears of success.
			err := s.finishStmt(a, audit.OutcomeOK, "")
			s.endAudit(rep.Result)
			switch {
			case errors.Is(err, audit.ErrInvalidRecord):
				emit(errorFrame(codeInternalError, "pgpseudo: the statement's audit record could not be written; the statement is reported as failed"))
				return nil
			case err != nil:
				emit(errorFrame(codeAuditFailure, auditRefusal))
				return nil
			}
		}
		emit(m.Raw)
	case 'E':
		s.copy, s.copyBlocked, s.copyRaw = nil, "", false
		s.sqlMu.Lock()
		s.sql.failed = true
		if em, ok := reqMeta(rep.Req).(*execMeta); ok && em.mayChangePath {
			s.sql.answered()
		}
		s.sqlMu.Unlock()
		if rm, ok := reqMeta(rep.Req).(*refusedMeta); ok {
			emit(rm.frame) // the refusal instead of the substitute's error
			return nil
		}
		if rep.Req != nil {
			s.failed(rep.Req, code)
		}
		if rep.Req != nil && mayReadRows(rep.Req.Type) {
			emit(s.executionError(m))
			return nil
		}
		emit(s.scrubbedFor(m))
	case 'N':
		if _, role := s.currentPolicy(); role.Restricted() {
			// A notice raised while rows are read, one per row read
			// (to_tsquery's stop-word notice), counts the rows the server
			// read before it stopped: their order. A restricted role gets
			// no server notices once logged in (the proxy's own, naming
			// withheld columns, are not the server's).
			return nil
		}
		emit(s.scrubbedFor(m))
	case 'Z':
		s.styleUnsure = false // the changed settings were reported before it
		s.sqlMu.Lock()
		if q, ok := reqMeta(rep.Req).(*queryMeta); ok && q.pathAfter != nil {
			// A simple query is one implicit transaction: its change
			// stands unless it failed.
			if !s.sql.failed {
				s.sql.path = q.pathAfter
			}
			s.sql.answered()
		}
		status := byte(0)
		if b := m.Body(); len(b) == 1 {
			status = b[0]
		}
		s.sql.endBatch(rep.Req, rep.Skipped, status)
		s.sqlMu.Unlock()
		emit(m.Raw)
	case 'S':
		// The server reports every change of its lexing settings; one
		// that slipped past the analysis ends a restricted session.
		if _, role := s.currentPolicy(); role.Restricted() {
			if why := s.lexingUnsafe(); why != "" {
				return lexingRefusal(role.Name, why)
			}
		}
		emit(m.Raw)
	case 'V':
		emit(m.Raw)
	case 'A':
		// NOTIFY payloads can carry any value: not forwarded to restricted
		// roles.
		if _, role := s.currentPolicy(); !role.Restricted() {
			emit(m.Raw)
		}
	default:
		emit(m.Raw)
	}
	return nil
}

// injectedReply consumes the reply to a request the proxy added.
func (s *session) injectedReply(m wire.Msg, rep protocol.Reply, emit func(...[]byte)) error {
	if cr, ok := reqMeta(rep.Req).(*checkReq); ok {
		if m.Type == 'E' && cr.run.forward && cr.run.err == nil {
			// A check that ends with Flush failed: the server now skips
			// the client's batch, and its error stands in the place of the
			// reply to the client's statement.
			defer func() { emit(s.checkErrorFrame(cr.run)) }()
		}
		return s.checkReply(cr, m.Type, m.Body(), rep.Done)
	}
	if m.Type == 'E' {
		switch reqMeta(rep.Req).(type) {
		case nil:
			// The tracker's Describe before the client's Execute failed (a
			// portal that does not exist): the server skips the Execute,
			// so this error is its answer (red team round 43: the client
			// got ReadyForQuery and nothing else). A Describe runs nothing
			// and quotes no value.
			emit(s.scrubbedFor(m))
			return nil
		case *copyProbe:
			// The probe ends with its own Sync: the client's query still
			// runs and answers for itself.
		default:
			// A statement prepared again before the client's Bind: the
			// server skips the Bind. The error may quote the text the proxy
			// rewrote (drill-down values), so the client gets the generic
			// one.
			emit(s.executionError(m))
			return nil
		}
	}
	probe, ok := reqMeta(rep.Req).(*copyProbe)
	if !ok {
		return nil // the tracker's own Describe(P) before an Execute
	}
	switch m.Type {
	case 'T':
		fields, err := decodeFields(m.Body())
		if err != nil {
			return err
		}
		probe.cs.probed, probe.cs.fields = true, fields
	case 'n':
		probe.cs.probed = true
	}
	return nil
}

// meta returns the request's proxy data, nil for a nil request.
func reqMeta(r *protocol.Request) any {
	if r == nil {
		return nil
	}
	return r.Meta
}

// rowDescription handles a RowDescription: for a simple query it starts the
// result's plan; for a Describe it rewrites type modifiers the plan resets.
func (s *session) rowDescription(m wire.Msg, rep protocol.Reply, emit func(...[]byte)) error {
	if r := rep.Result; r != nil {
		p, _, err := s.resultPlan(r)
		if err != nil {
			return err
		}
		s.startResult(s.resultAudit(r), p)
		raw, err := rewrite.RowDescription(m.Raw, p)
		if err != nil {
			return err
		}
		emit(raw, p.Notice())
		return nil
	}
	var (
		fields []pgproto3.FieldDescription
		meta   *stmtMeta
	)
	switch {
	case rep.Stmt != nil:
		fields, meta = rep.Stmt.Fields, statementMeta(rep.Stmt)
	case rep.Portal != nil:
		// A portal of a statement the tracker does not know (SQL PREPARE
		// made it) has no verdict: its columns are planned with none.
		fields, meta = rep.Portal.Fields, statementMeta(rep.Portal.Stmt)
	default:
		emit(m.Raw) // a Describe of something the server just created
		return nil
	}
	p, err := s.planFor(fields, nil, meta.verdict())
	if err != nil {
		return err
	}
	raw, err := rewrite.RowDescription(m.Raw, p)
	if err != nil {
		return err
	}
	emit(raw)
	return nil
}

// statementMeta returns a statement's proxy data (never nil).
func statementMeta(st *protocol.Statement) *stmtMeta {
	if st != nil {
		if m, ok := st.Meta.(*stmtMeta); ok {
			return m
		}
	}
	return &stmtMeta{}
}

// resultPlan returns the plan of a result set; first reports that it was
// made for this result now (the notice is sent with the first row).
func (s *session) resultPlan(r *protocol.Result) (*rewrite.Plan, bool, error) {
	if r == nil {
		return nil, false, errNoDescription
	}
	if p, ok := r.Meta.(*rewrite.Plan); ok {
		// The rows of one result: nothing is reported between them.
		return p, false, nil
	}
	style := s.dateStyle()
	if !r.Known || r.Fields == nil {
		return nil, false, errNoDescription
	}
	gen := s.srv.policyGeneration()
	if pt := r.Portal; pt != nil {
		// A portal's columns never change: its plan serves every Execute.
		if p, ok := pt.Meta.(*rewrite.Plan); ok && p.Generation == gen && p.DateStyle == style {
			r.Meta = p
			return p, true, nil
		}
	}
	start := time.Now()
	p, err := s.planFor(r.Fields, r.Formats, s.resultVerdict(r))
	s.srv.metrics.observe(stagePlan, start)
	if err != nil {
		return nil, false, err
	}
	r.Meta = p
	if r.Portal != nil {
		r.Portal.Meta = p
	}
	return p, true, nil
}

// resultVerdict says what a result's computed columns may carry: the
// server-side check of the statement that produced it (nothing proven:
// they are withheld).
func (s *session) resultVerdict(r *protocol.Result) resultVerdict {
	switch m := r.Req.Meta.(type) {
	case *queryMeta:
		if r.Index < len(m.results) {
			return m.results[r.Index]
		}
	case *execMeta:
		if r.Portal != nil && r.Portal.Stmt != nil {
			return statementMeta(r.Portal.Stmt).verdict()
		}
	}
	return resultVerdict{}
}

// resultAudit returns the audit record a result's rows count towards.
func (s *session) resultAudit(r *protocol.Result) *stmtAudit {
	if r == nil {
		return nil
	}
	switch m := r.Req.Meta.(type) {
	case *queryMeta:
		return m.audit(r.Index)
	case *execMeta:
		if m.aud == nil {
			var st sqlinfo.Statement
			var rv resultVerdict
			if r.Portal != nil && r.Portal.Stmt != nil {
				sm := statementMeta(r.Portal.Stmt)
				st, rv = sm.audited, sm.verdict()
				// Once per Execute the server runs: its first reply.
				s.reportShadow(sm.shadowDiffs(), st)
			}
			m.aud = newStmtAudit(st)
			m.aud.start = m.sent
			m.aud.useVerdict(rv)
		}
		return m.aud
	}
	return nil
}

// endAudit forgets a finished statement's record.
func (s *session) endAudit(r *protocol.Result) {
	if r == nil {
		return
	}
	switch m := r.Req.Meta.(type) {
	case *queryMeta:
		m.ended()
	case *execMeta:
		m.aud = nil
	}
}

// failed records the error of a request's statement.
func (s *session) failed(r *protocol.Request, code string) {
	switch m := r.Meta.(type) {
	case *queryMeta:
		_ = s.finishStmt(m.audit(r.Index()), audit.OutcomeError, code)
		m.ended()
	case *execMeta:
		a := m.aud
		if a == nil {
			a = newStmtAudit(sqlinfo.Statement{})
			a.start = m.sent
		}
		_ = s.finishStmt(a, audit.OutcomeError, code)
		m.aud = nil
	}
}

// skipped records a request the server skipped after an error.
func (s *session) skipped(r *protocol.Request, code string) {
	if cr, ok := r.Meta.(*checkReq); ok {
		s.checkSkipped(cr)
		return
	}
	if q, ok := r.Meta.(*queryMeta); ok && q.pathAfter != nil {
		s.sqlMu.Lock()
		s.sql.answered() // a simple query the server ignored changes nothing
		s.sqlMu.Unlock()
	}
	if r.Type == 'E' && !r.Injected {
		s.failed(r, code)
		if em, ok := r.Meta.(*execMeta); ok && em.mayChangePath {
			s.sqlMu.Lock()
			s.sql.answered()
			s.sqlMu.Unlock()
		}
	}
}

// executed applies the search_path change of an Execute that ran: the
// statement it ran is the one the server bound, as the tracker resolved
// it.
func (s *session) executed(rep protocol.Reply) {
	if rep.Type == 'C' && catalog.IsDDL(rep.Tag) {
		// Cached catalog facts of this database may now be wrong; DDL
		// run elsewhere is covered by limits.catalog_ttl.
		s.srv.catalog.Changed(s.id.Database)
	}
	em, ok := reqMeta(rep.Req).(*execMeta)
	if !ok || !em.mayChangePath || !rep.Done {
		return
	}
	s.sqlMu.Lock()
	defer s.sqlMu.Unlock()
	if r := rep.Result; rep.Type != 's' && r != nil && r.Portal != nil && r.Portal.Stmt != nil {
		if p := statementMeta(r.Portal.Stmt).pathAfter; p != nil {
			s.sql.path = p
		}
	}
	s.sql.answered()
}

// copyState is one COPY TO STDOUT of a restricted session.
type copyState struct {
	info *sqlinfo.Copy
	// probed: the in-session probe answered; fields is its description
	// (nil when it failed).
	probed bool
	fields []pgproto3.FieldDescription
	// result says what the COPY's computed columns may carry.
	result resultVerdict
	// rw rewrites the data once the COPY has started.
	rw *rewrite.Copy
}

// copyOut starts a COPY TO STDOUT: with a probed description its rows are
// rewritten by plan, otherwise its data is withheld and the statement
// fails. COPY FROM STDIN and CopyBoth never start for a restricted role
// (the analysis refuses them; if one starts anyway the session ends).
func (s *session) copyOut(m wire.Msg, r *protocol.Result, emit func(...[]byte)) error {
	if _, role := s.currentPolicy(); !role.Restricted() {
		// A role that sees everything gets COPY data as the server sends it.
		s.copyRaw = true
		emit(m.Raw)
		return nil
	}
	if m.Type != 'H' {
		return fmt.Errorf("%w: COPY FROM STDIN or CopyBoth for a restricted role", errNoDescription)
	}
	var cs *copyState
	if q, ok := r.Req.Meta.(*queryMeta); ok {
		cs = q.copies[r.Index]
	}
	reason := "COPY output cannot be checked against the policy; role " + s.roleName() + " may not run it (rule: COPY output is rewritten per column or withheld)"
	if cs != nil && cs.probed && cs.fields != nil && cs.info.Unsupported == "" {
		var resp pgproto3.CopyOutResponse
		if err := resp.Decode(m.Body()); err == nil && len(resp.ColumnFormatCodes) == len(cs.fields) {
			format := int16(0)
			if resp.OverallFormat == 1 {
				format = 1
			}
			formats := make([]int16, len(cs.fields))
			for i := range formats {
				formats[i] = format
			}
			p, err := s.planFor(cs.fields, formats, cs.result)
			if err == nil && cs.info.NullSet && !p.Passthrough && resp.OverallFormat == 0 {
				// A value equal to the chosen NULL string is written
				// unchanged: it would confirm a guessed clear value.
				col := ""
				for i, c := range p.Cols {
					if c.Action != policy.Allow {
						col = string(cs.fields[i].Name)
						break
					}
				}
				s.copyBlocked = fmt.Sprintf("COPY option NULL with the protected column %s: a value equal to the NULL string would leave unchanged; role %s may not use it (rule: COPY of protected columns uses the default NULL string)",
					col, s.roleName())
				return nil
			}
			if err == nil {
				cs.rw = &rewrite.Copy{Info: cs.info, Plan: p, Quote: forceQuoted(cs.info, cs.fields)}
				s.copy = cs
				s.startResult(s.resultAudit(r), p)
				emit(m.Raw, p.Notice())
				return nil
			}
			reason += ": " + err.Error()
		}
	} else if cs != nil && cs.info.Unsupported != "" {
		reason = "COPY option " + cs.info.Unsupported + " is not supported; role " + s.roleName() + " may not use it (rule: COPY output is rewritten per column or withheld)"
	}
	s.copyBlocked = reason
	return nil
}

// forceQuoted marks the columns of a COPY that FORCE_QUOTE names (by the
// names the server gives its columns) or all of them (FORCE_QUOTE *).
func forceQuoted(info *sqlinfo.Copy, fields []pgproto3.FieldDescription) []bool {
	q := make([]bool, len(fields))
	for i, f := range fields {
		q[i] = info.ForceQuoteAll || slices.Contains(info.ForceQuote, string(f.Name))
	}
	return q
}

// roleName is the session's policy role, for messages.
func (s *session) roleName() string {
	_, role := s.currentPolicy()
	return role.Name
}

// planFor builds a plan with the session's current policy. The catalog
// and the key provider bound their own lookups (planTimeout): most plans
// need none, and a timer per result would cost more than the plan.
func (s *session) planFor(fields []pgproto3.FieldDescription, formats []int16, rv resultVerdict) (*rewrite.Plan, error) {
	key := planKey(fields, formats, rv, s.srv.policyGeneration(), s.srv.catalog.Generation(s.id.Database), s.srv.keyGen.Load(), s.srv.shadowGeneration(), s.dateStyle())
	if s.lastPlan.plan != nil && s.lastPlan.key == key {
		return s.lastPlan.plan, nil
	}
	p, err := s.buildPlan(s.ctx, fields, formats, rv)
	if err == nil {
		s.lastPlan = planMemo{key: key, plan: p}
	}
	return p, err
}

// planMemo is a session's last result plan. A statement parsed anew for
// each execution (pgbench -M extended, drivers that use the unnamed
// statement) describes the same columns each time; the memo holds one
// plan, keyed by everything buildPlan reads.
type planMemo struct {
	key  string
	plan *rewrite.Plan
}

// planKey is everything a result plan depends on: the columns (origin,
// type, modifier, format, name), the requested formats, which computed
// columns the server's plan proved clean and the base columns it shows
// view columns to be, the columns the proxy computes itself, the policy,
// catalog and key generations (a rotation picked up must reach the next
// result), the shadow candidate's generation (the plan carries its
// differences), and the session's DateStyle.
func planKey(fields []pgproto3.FieldDescription, formats []int16, rv resultVerdict, policyGen, catalogGen, keyGen, shadowGen uint64, dateStyle string) string {
	b := make([]byte, 0, 48+len(fields)*24+len(dateStyle))
	b = append(append(b, dateStyle...), 0)
	b = binary.BigEndian.AppendUint64(b, policyGen)
	b = binary.BigEndian.AppendUint64(b, shadowGen)
	b = binary.BigEndian.AppendUint64(b, catalogGen)
	b = binary.BigEndian.AppendUint64(b, keyGen)
	b = binary.BigEndian.AppendUint32(b, uint32(len(formats)))
	for _, f := range formats {
		b = binary.BigEndian.AppendUint16(b, uint16(f))
	}
	for i, f := range fields {
		b = binary.BigEndian.AppendUint32(b, f.TableOID)
		b = binary.BigEndian.AppendUint16(b, f.TableAttributeNumber)
		b = binary.BigEndian.AppendUint32(b, f.DataTypeOID)
		b = binary.BigEndian.AppendUint32(b, uint32(f.TypeModifier))
		b = binary.BigEndian.AppendUint16(b, uint16(f.Format))
		clean := byte(0)
		if rv.clean(i) {
			clean = 1
		}
		b = append(b, clean)
		if src, ok := rv.bareSource(i); ok {
			// A view's column takes this source's decision.
			b = fmt.Appendf(b, "%s\x00%s\x00%s\x00%s\x00", src.Table, src.Column, src.Domain, src.Decision.Action)
		}
		if op, ok := rv.lift(i); ok {
			b = fmt.Appendf(b, "lift %c %d %d %d %d\x00", op.Kind, op.TypeOID, op.Max, op.From, op.For)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.Name)))
		b = append(b, f.Name...)
	}
	return string(b)
}

// errorCode returns the SQLSTATE of an ErrorResponse body.
func errorCode(body []byte) string {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return ""
	}
	return e.Code
}

// decodeFields decodes a RowDescription into fields that outlive the read
// buffer.
func decodeFields(body []byte) ([]pgproto3.FieldDescription, error) {
	var rd pgproto3.RowDescription
	if err := rd.Decode(body); err != nil {
		return nil, fmt.Errorf("upstream RowDescription: %w", err)
	}
	fields := append([]pgproto3.FieldDescription(nil), rd.Fields...)
	for i := range fields {
		fields[i].Name = append([]byte(nil), fields[i].Name...)
	}
	return fields, nil
}

// executionError is the error a restricted role gets when its statement
// fails while the server reads rows. The statement passed the
// server-side check, so the server planned it; what fails now fails on a
// row. The server's message names that row's values ("invalid input
// syntax for type integer: \"95029x\""), and which row fails first, or
// which kind of error comes first, shows the order in which the server
// reads rows (physical, a sort's over clear values). Only errors that
// name no value and do not depend on the rows keep their code and text.
func (s *session) executionError(m wire.Msg) []byte {
	_, role := s.currentPolicy()
	if !role.Restricted() {
		return m.Raw
	}
	return executionErrorFor(role.Name, m.Raw)
}

// executionErrorFor is what a restricted role is told of the server's
// error frame raised while rows may have been read. A row-independent
// code stays (clients retry serialization failures, and know a
// shutdown) with pgpseudo's text, never the server's; anything else is
// the generic error.
func executionErrorFor(role string, frame []byte) []byte {
	var e pgproto3.ErrorResponse
	if len(frame) > 5 && e.Decode(frame[5:]) == nil {
		if text, ok := rowIndependent[e.Code]; ok {
			return errorResponse(errorSeverity(frame[5:]), e.Code, "pgpseudo: "+text)
		}
	}
	return withheldExecutionError(role)
}

// withheldExecutionError is what a restricted role is told instead of an
// error raised while the server read rows.
func withheldExecutionError(role string) []byte {
	return errorFrame(codeDataException, "pgpseudo: the statement failed (on a value, or cancelled or timed out) while the server read rows; for role "+role+
		" the server's error is withheld (rule: errors during execution can quote values and show the order in which rows are read)")
}

// mayReadRows reports whether the server may read rows while it answers a
// request of this type: Query and Execute run statements, and a Sync
// commits the implicit transaction, which persists WITH HOLD cursors (it
// runs their query) and fires deferred triggers. Parse, Bind, Describe
// and Close only parse, plan and look up.
func mayReadRows(typ byte) bool {
	switch typ {
	case 'P', 'B', 'D', 'C':
		return false
	}
	return true
}

// rowIndependent are the SQLSTATEs a restricted role gets as they are,
// with a fixed text: shutdown, transaction state, serialization failure
// and deadlock, which a statement cannot raise from a value it reads.
// Every other execution error is the generic 22000: a catch-all code
// such as 0A000 is raised per row by functions that quote their argument
// (to_regclass of a three-part name), and which row fails first shows the
// order rows are read in.
var rowIndependent = map[string]string{
	"57P01": "terminating connection due to administrator command",
	"57P02": "terminating connection because of crash of another server process",
	"57P03": "the database system is not accepting connections",
	"57P04": "terminating connection: the database was dropped",
	"57P05": "terminating connection due to idle-session timeout",
	"25P02": "current transaction is aborted, commands ignored until end of transaction block",
	"25P03": "terminating connection due to idle-in-transaction timeout",
	"25001": "the statement cannot run inside a transaction block",
	"25006": "the statement cannot run in a read-only transaction",
	"40001": "could not serialize access due to a concurrent transaction",
	"40P01": "deadlock detected",
}

// scrubbedFor scrubs an error or notice for restricted roles only.
func (s *session) scrubbedFor(m wire.Msg) []byte {
	_, role := s.currentPolicy()
	if !role.Restricted() {
		return m.Raw
	}
	return scrubbed(m, s.srv.digestKey, s.srv.DigestKeyFor(role.Name))
}

// scrubbed removes the fields of an error or notice that can quote values
// or measure them (detail, hint, where, internal query, positions) for
// restricted roles. LOG and
// DEBUG notices do not reach them at all (they show statements as the
// proxy rewrote them, plans and sort traces; the settings that ask for
// them are locked, this holds whatever the server was told), and a
// message that quotes the digest key is replaced.
func scrubbed(m wire.Msg, digestKeys ...string) []byte {
	var e pgproto3.ErrorResponse
	if err := e.Decode(m.Body()); err != nil {
		return refusal("an upstream message could not be checked and was withheld")
	}
	sev := e.SeverityUnlocalized
	if sev == "" {
		sev = e.Severity
	}
	if m.Type == 'N' && (sev == "LOG" || strings.HasPrefix(sev, "DEBUG")) {
		return nil
	}
	quotesKey := false
	for _, k := range digestKeys {
		quotesKey = quotesKey || k != "" && bytes.Contains(m.Raw, []byte(k))
	}
	if quotesKey {
		e.Message = "pgpseudo: a server message that quotes the proxy's rewriting of the statement was withheld"
	}
	if e.Detail == "" && e.Hint == "" && e.Where == "" && e.InternalQuery == "" && e.Position == 0 && !quotesKey {
		return m.Raw
	}
	// A position counts in the text the server got, which the proxy may
	// have rewritten: its offset tells the length of what the proxy put
	// in, such as a drill-down's clear value (red team round 44).
	e.Detail, e.Hint, e.Where, e.InternalQuery, e.InternalPosition, e.Position = "", "", "", "", 0, 0
	var b []byte
	if m.Type == 'N' {
		b, _ = (*pgproto3.NoticeResponse)(&e).Encode(nil)
	} else {
		b, _ = e.Encode(nil)
	}
	return b
}

// appendProbe appends Parse, Describe and Sync of query on the unnamed
// statement, which the following simple query destroys anyway.
func appendProbe(dst []byte, query string) []byte {
	dst = append(dst, wire.Frame('P', []byte{0}, []byte(query), []byte{0, 0, 0})...)
	dst = append(dst, wire.Frame('D', []byte{'S', 0})...)
	return append(dst, wire.Frame('S')...)
}
