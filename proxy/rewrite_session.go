package proxy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

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
	switch m.Type {
	case '1', '2': // ParseComplete, BindComplete
		if h != nil && (h.typ == 'P' || h.typ == 'B') {
			t.pop()
		}
		emit(m.Raw)
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
	case 'T':
		var rd pgproto3.RowDescription
		if err := rd.Decode(m.Body()); err != nil {
			return fmt.Errorf("upstream RowDescription: %w", err)
		}
		fields := append([]pgproto3.FieldDescription(nil), rd.Fields...)
		switch {
		case h != nil && h.typ == 'D' && h.kind == 'S':
			st := t.stmts[h.name]
			if st != nil {
				st.fields, st.described = fields, true
			}
			t.pop()
			p, err := s.planFor(fields, nil)
			if err != nil {
				return err
			}
			raw, err := rewriteRowDescription(m.Raw, p)
			if err != nil {
				return err
			}
			emit(raw)
		case h != nil && h.typ == 'D' && h.kind == 'P':
			if pt := t.portals[h.name]; pt != nil {
				pt.fields, pt.described, pt.plan = fields, true, nil
			}
			inject := h.inject
			t.pop()
			if inject {
				return nil
			}
			p, err := s.planFor(fields, nil)
			if err != nil {
				return err
			}
			raw, err := rewriteRowDescription(m.Raw, p)
			if err != nil {
				return err
			}
			emit(raw)
		case h != nil && h.typ == 'Q':
			p, err := s.planFor(fields, nil)
			if err != nil {
				return err
			}
			t.cur = p
			raw, err := rewriteRowDescription(m.Raw, p)
			if err != nil {
				return err
			}
			emit(raw, p.notice())
		default:
			return fmt.Errorf("%w: unexpected RowDescription", errNoDescription)
		}
	case 'n': // NoData
		if h != nil && h.typ == 'D' {
			if h.kind == 'S' {
				if st := t.stmts[h.name]; st != nil {
					st.fields, st.described = nil, true
				}
			} else if pt := t.portals[h.name]; pt != nil {
				pt.fields, pt.described = nil, true
			}
			inject := h.inject
			t.pop()
			if inject {
				return nil
			}
		}
		emit(m.Raw)
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
			}
		}
		if p == nil {
			return errNoDescription
		}
		if p.passthrough {
			emit(m.Raw)
			return nil
		}
		var err error
		if *out, err = rewriteDataRow(*out, m.Body(), p); err != nil {
			return err
		}
	case 'C', 'I', 's': // CommandComplete, EmptyQueryResponse, PortalSuspended
		if t.copyBlocked != "" && m.Type == 'C' {
			emit(refusal(t.copyBlocked))
			t.copyBlocked = ""
			return nil
		}
		if h != nil && h.typ == 'E' {
			t.pop()
		} else if h != nil && h.typ == 'Q' {
			t.cur = nil
		}
		emit(m.Raw)
	case 'E':
		t.copyBlocked = ""
		if h != nil && h.typ == 'Q' {
			t.cur = nil
		} else {
			// The server skips everything up to the next Sync.
			for h := t.head(); h != nil && h.typ != 'S' && h.typ != 'Q'; h = t.head() {
				t.pop()
			}
		}
		emit(scrubbed(m))
	case 'N':
		emit(scrubbed(m))
	case 'Z':
		for h := t.head(); h != nil; h = t.head() {
			t.pop()
			if h.typ == 'S' || h.typ == 'Q' {
				break
			}
		}
		t.cur = nil
		emit(m.Raw)
	case 'H', 'W':
		// COPY TO and CopyBoth carry rows without a RowDescription. Until
		// pgpseudo can plan a COPY, its data does not leave: swallow it and
		// fail the statement instead of its CommandComplete.
		t.copyBlocked = "COPY output cannot be checked against the policy yet"
	case 'd', 'c':
		if t.copyBlocked == "" {
			emit(m.Raw)
		}
	case 'V':
		// A fast-path function result (large objects) has no description.
		emit(refusal("fast-path function calls are not allowed for this role"))
	case 'A':
		// NOTIFY payloads can carry any value: not forwarded to restricted
		// roles.
	default:
		emit(m.Raw)
	}
	return nil
}

// planFor builds a plan with the session's current policy.
func (s *session) planFor(fields []pgproto3.FieldDescription, formats []int16) (*plan, error) {
	ctx, cancel := context.WithTimeout(context.Background(), planTimeout)
	defer cancel()
	return s.buildPlan(ctx, fields, formats)
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
		p, err = s.planFor(pt.fields, nil)
	case pt.stmt.described:
		if pt.stmt.fields == nil {
			return nil, errNoDescription
		}
		p, err = s.planFor(pt.stmt.fields, pt.formats)
	default:
		return nil, errNoDescription
	}
	if err != nil {
		return nil, err
	}
	pt.plan = p
	return p, nil
}

// refusal builds the ErrorResponse for something the policy withholds.
func refusal(msg string) []byte {
	b, _ := (&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "42501", Message: "pgpseudo: " + msg}).Encode(nil)
	return b
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
