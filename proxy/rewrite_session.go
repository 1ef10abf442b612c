package proxy

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// planTimeout bounds the catalog and key lookups of one column plan.
const planTimeout = 30_000_000_000 // 30 s

// restrictedBackend forwards one upstream message of a restricted session,
// rewriting rows by their column plan. Any reply it cannot tie to a known
// description ends the session (fail closed).
func (s *session) restrictedBackend(m wire.Msg, out *[]byte) error {
	t := s.trk
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.head()
	emit := func(frames ...[]byte) {
		for _, f := range frames {
			*out = append(*out, f...)
		}
	}
	injected := h != nil && h.inject
	switch m.Type {
	case '1', '2': // ParseComplete, BindComplete
		if h != nil && (h.typ == 'P' || h.typ == 'B') {
			t.pop()
		}
		if !injected {
			emit(m.Raw)
		}
	case '3': // CloseComplete
		if h != nil && h.typ == 'C' {
			if h.kind == 'S' {
				delete(t.stmts, h.name)
			} else {
				delete(t.portals, h.name)
			}
			t.pop()
		}
		emit(m.Raw)
	case 't': // ParameterDescription
		if !injected {
			emit(m.Raw)
		}
	case 'T':
		return s.rowDescription(m, h, emit)
	case 'n': // NoData
		if h != nil && h.typ == 'D' {
			switch {
			case h.copy != nil:
				h.copy.probed = true
			case h.kind == 'S':
				if st := t.stmts[h.name]; st != nil {
					st.fields, st.described = nil, true
				}
			default:
				if pt := t.portals[h.name]; pt != nil {
					pt.fields, pt.described = nil, true
				}
			}
			t.pop()
		}
		if !injected {
			emit(m.Raw)
		}
	case 'D':
		var p *plan
		switch {
		case h != nil && h.typ == 'Q':
			p = t.cur
		case h != nil && h.typ == 'E' && h.portal != nil:
			var err error
			if p, err = s.portalPlan(h.portal); err != nil {
				return err
			}
			if !h.portal.noticed {
				h.portal.noticed = true
				emit(p.notice())
				h.aud.usePlan(p)
			}
		}
		if p == nil {
			return errNoDescription
		}
		t.rows++
		a := h.aud
		if h.typ == 'Q' {
			a = h.queryAudit()
		}
		a.rows++
		before := len(*out)
		if p.passthrough {
			emit(m.Raw)
		} else {
			var err error
			if *out, err = rewriteDataRow(*out, m.Body(), p); err != nil {
				return err
			}
		}
		a.bytes += uint64(len(*out) - before)
	case 'H', 'W': // CopyOutResponse, CopyBothResponse
		s.copyOut(m, h, emit)
	case 'd':
		switch {
		case t.copyRaw:
			emit(m.Raw)
		case t.copyBlocked != "":
		case t.copy != nil:
			var err error
			before := len(*out)
			if *out, err = t.copy.rewriteCopyData(*out, m.Body()); err == nil && h != nil && h.typ == 'Q' {
				a := h.queryAudit()
				a.rows++
				a.bytes += uint64(len(*out) - before)
				t.rows++
			}
			if err != nil {
				// Rows already sent were rewritten; the rest is withheld.
				t.copy, t.copyBlocked = nil, "COPY data could not be checked against the policy: "+err.Error()
			}
		default:
			return fmt.Errorf("%w: COPY data", errNoDescription)
		}
	case 'c': // CopyDone
		if t.copyBlocked == "" {
			emit(m.Raw)
		}
	case 'C', 'I', 's': // CommandComplete, EmptyQueryResponse, PortalSuspended
		t.copy, t.copyRaw = nil, false
		if h != nil && h.typ == 'Q' && h.refusal != nil {
			emit(h.refusal) // the empty query that replaced a refused one
			return nil
		}
		var a *stmtAudit
		if h != nil && h.typ == 'Q' {
			a = h.queryAudit()
		} else if h != nil && h.typ == 'E' {
			a = h.aud
		}
		if t.copyBlocked != "" && m.Type == 'C' {
			if a != nil {
				a.refusal = &audit.Refusal{Rule: "copy_withheld"}
			}
			_ = s.finishStmt(a, audit.OutcomeRefused, "42501")
			emit(refusal(t.copyBlocked))
			t.copyBlocked = ""
			if h != nil && h.typ == 'Q' {
				h.idx, h.aud = len(h.stmts), nil // the server goes on, the client saw an error
			}
			return nil
		}
		if m.Type != 's' {
			// The record is written before the client hears of success.
			if err := s.finishStmt(a, audit.OutcomeOK, ""); err != nil && s.srv.auditRefusing() {
				emit(errorFrame(codeAuditFailure, auditRefusal))
				if h != nil && h.typ == 'E' {
					t.pop()
				} else if h != nil && h.typ == 'Q' {
					h.idx, h.aud = h.idx+1, nil
				}
				return nil
			}
		}
		if h != nil && h.typ == 'E' {
			t.pop()
		} else if h != nil && h.typ == 'Q' {
			t.cur = nil
			h.idx, h.aud = h.idx+1, nil
		}
		emit(m.Raw)
	case 'E':
		t.copy, t.copyBlocked, t.copyRaw = nil, "", false
		if !injected {
			s.sql.batchFailed = true
		}
		code := errorCode(m.Body())
		switch {
		case injected:
			// A probe failed (the real statement will report it): skip to
			// the probe's Sync.
			for h := t.head(); h != nil && !(h.typ == 'S' && h.inject); h = t.head() {
				t.pop()
			}
			return nil
		case h != nil && h.typ == 'Q':
			_ = s.finishStmt(h.queryAudit(), audit.OutcomeError, code)
			h.idx, h.aud = len(h.stmts), nil
			t.cur = nil
		default:
			// The server skips everything up to the next Sync.
			for h := t.head(); h != nil && h.typ != 'S' && h.typ != 'Q'; h = t.head() {
				if h.typ == 'E' {
					_ = s.finishStmt(h.aud, audit.OutcomeError, code)
				}
				t.pop()
			}
		}
		emit(s.scrubbedFor(m))
	case 'N':
		emit(s.scrubbedFor(m))
	case 'Z':
		if b := m.Body(); len(b) == 1 {
			t.txStatus = b[0]
		}
		swallow := false
		for h := t.head(); h != nil; h = t.head() {
			t.pop()
			if h.typ == 'S' || h.typ == 'Q' {
				swallow = h.inject
				if !h.inject {
					s.sql.endBatch()
				}
				if h.typ == 'S' && h.refusal != nil {
					emit(h.refusal)
				}
				break
			}
		}
		t.cur = nil
		if !swallow {
			emit(m.Raw)
		}
	case 'V':
		// A fast-path function result (large objects) has no description.
		emit(refusal("fast-path function calls are not allowed for this role"))
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

// rowDescription handles a RowDescription: it records descriptions for
// statements and portals, answers COPY probes, and starts the plan of a
// simple-query result.
func (s *session) rowDescription(m wire.Msg, h *pending, emit func(...[]byte)) error {
	t := s.trk
	var rd pgproto3.RowDescription
	if err := rd.Decode(m.Body()); err != nil {
		return fmt.Errorf("upstream RowDescription: %w", err)
	}
	// Names alias the read buffer; descriptions outlive it.
	fields := append([]pgproto3.FieldDescription(nil), rd.Fields...)
	for i := range fields {
		fields[i].Name = bytes.Clone(fields[i].Name)
	}
	var (
		p          *plan
		err        error
		computedOK bool
	)
	switch {
	case h != nil && h.typ == 'D' && h.copy != nil:
		h.copy.probed = true
		h.copy.fields = fields
		t.pop()
		return nil
	case h != nil && h.typ == 'D' && h.kind == 'S':
		st := t.stmts[h.name]
		if st != nil {
			st.fields, st.described = fields, true
			computedOK = st.computedOK
		}
		t.pop()
	case h != nil && h.typ == 'D' && h.kind == 'P':
		pt := t.portals[h.name]
		if pt != nil {
			pt.fields, pt.described, pt.plan = fields, true, nil
			computedOK = pt.stmt.computedOK
		}
		inject := h.inject
		t.pop()
		if inject {
			return nil
		}
	case h != nil && h.typ == 'Q':
		if h.idx < len(h.stmts) {
			computedOK = statementComputedOK(h.stmts[h.idx])
		}
		if p, err = s.planFor(fields, nil, computedOK); err != nil {
			return err
		}
		t.cur = p
		h.queryAudit().usePlan(p)
		raw, err := rewriteRowDescription(m.Raw, p)
		if err != nil {
			return err
		}
		emit(raw, p.notice())
		return nil
	default:
		return fmt.Errorf("%w: unexpected RowDescription", errNoDescription)
	}
	if p, err = s.planFor(fields, nil, computedOK); err != nil {
		return err
	}
	raw, err := rewriteRowDescription(m.Raw, p)
	if err != nil {
		return err
	}
	emit(raw)
	return nil
}

// copyOut starts a COPY TO STDOUT: with a probed description its rows are
// rewritten by plan, otherwise its data is withheld and the statement
// fails.
func (s *session) copyOut(m wire.Msg, h *pending, emit func(...[]byte)) {
	t := s.trk
	if _, role := s.currentPolicy(); !role.Restricted() {
		// A role that sees everything gets COPY data as the server sends it.
		t.copyRaw = true
		emit(m.Raw)
		return
	}
	var cs *copyState
	if h != nil && h.typ == 'Q' && m.Type == 'H' {
		cs = h.copies[h.idx]
	}
	reason := "COPY output cannot be checked against the policy"
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
			p, err := s.planFor(cs.fields, formats, cs.computedOK)
			if err == nil {
				cs.plan = p
				t.copy = cs
				h.queryAudit().usePlan(p)
				emit(m.Raw, p.notice())
				return
			}
			reason += ": " + err.Error()
		}
	} else if cs != nil && cs.info.Unsupported != "" {
		reason = "COPY option " + cs.info.Unsupported + " is not supported for this role"
	}
	t.copyBlocked = reason
}

// planFor builds a plan with the session's current policy.
func (s *session) planFor(fields []pgproto3.FieldDescription, formats []int16, computedOK bool) (*plan, error) {
	ctx, cancel := context.WithTimeout(context.Background(), planTimeout)
	defer cancel()
	return s.buildPlan(ctx, fields, formats, computedOK)
}

// portalPlan returns (and caches) the plan for a portal's rows.
func (s *session) portalPlan(pt *portalInfo) (*plan, error) {
	if pt.plan != nil && pt.plan.generation == s.srv.policyGeneration() {
		return pt.plan, nil
	}
	var (
		p   *plan
		err error
	)
	switch {
	case pt.described:
		if pt.fields == nil {
			return nil, errNoDescription
		}
		p, err = s.planFor(pt.fields, nil, pt.stmt.computedOK)
	case pt.stmt.described:
		if pt.stmt.fields == nil {
			return nil, errNoDescription
		}
		p, err = s.planFor(pt.stmt.fields, pt.formats, pt.stmt.computedOK)
	default:
		return nil, errNoDescription
	}
	if err != nil {
		return nil, err
	}
	pt.plan = p
	return p, nil
}

// errorCode returns the SQLSTATE of an ErrorResponse body.
func errorCode(body []byte) string {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return ""
	}
	return e.Code
}

// scrubbedFor scrubs an error or notice for restricted roles only.
func (s *session) scrubbedFor(m wire.Msg) []byte {
	if _, role := s.currentPolicy(); !role.Restricted() {
		return m.Raw
	}
	return scrubbed(m)
}

// scrubbed removes the fields of an error or notice that can quote values
// (detail, hint, where, internal query) for restricted roles.
func scrubbed(m wire.Msg) []byte {
	var e pgproto3.ErrorResponse
	if err := e.Decode(m.Body()); err != nil {
		return refusal("an upstream message could not be checked and was withheld")
	}
	if e.Detail == "" && e.Hint == "" && e.Where == "" && e.InternalQuery == "" {
		return m.Raw
	}
	e.Detail, e.Hint, e.Where, e.InternalQuery, e.InternalPosition = "", "", "", "", 0
	var b []byte
	if m.Type == 'N' {
		b, _ = (*pgproto3.NoticeResponse)(&e).Encode(nil)
	} else {
		b, _ = e.Encode(nil)
	}
	return b
}
