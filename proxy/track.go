package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// errNoDescription reports row data whose columns pgpseudo does not know:
// the session ends rather than forward it (research/protocol.md rule 11).
var errNoDescription = errors.New("row data without a known row description")

// stmtInfo is a prepared statement's result shape once described.
type stmtInfo struct {
	described bool
	fields    []pgproto3.FieldDescription // nil: no result (NoData)
	// computedOK: the statement's computed columns cannot carry table data.
	computedOK bool
	// fingerprint and kind identify the statement in audit records.
	fingerprint, kind string
}

// portalInfo is a bound portal.
type portalInfo struct {
	stmt    *stmtInfo
	formats []int16
	// fields from Describe(P), which already carry the result formats.
	fields    []pgproto3.FieldDescription
	described bool
	plan      *plan
	// noticed is set once the withheld-columns notice went out for the
	// current execution.
	noticed bool
}

// pending is a request whose reply has not arrived yet; replies come back
// in request order (research/protocol.md rule 13).
type pending struct {
	typ    byte // P, B, D, E, C, S, Q, F
	kind   byte // for D and C: 'S' or 'P'
	name   string
	inject bool // a message pgpseudo added: swallow its reply
	portal *portalInfo
	// For Q: the parsed statements (nil when unparsable), the index of the
	// one whose results are streaming, and COPY probes by index.
	stmts  []sqlinfo.Statement
	idx    int
	copies map[int]*copyState
	// For an injected Describe: the COPY it probes.
	copy *copyState
	// aud accumulates the audit record of an Execute, or of the Q
	// statement at idx.
	aud *stmtAudit
	// refusal replaces the reply: for Q the EmptyQueryResponse of the empty
	// query sent instead, for S the ReadyForQuery (sent after it).
	refusal []byte
}

// queryAudit returns the record of the Q statement now streaming.
func (p *pending) queryAudit() *stmtAudit {
	if p.aud == nil {
		fp, kind := "", ""
		if p.idx < len(p.stmts) {
			fp, kind = p.stmts[p.idx].Fingerprint, p.stmts[p.idx].Kind
		}
		p.aud = newStmtAudit(fp, kind)
	}
	return p.aud
}

// tracker follows the extended protocol so every DataRow can be matched to
// its column plan. The client-to-upstream goroutine adds requests, the
// upstream-to-client goroutine consumes replies.
type tracker struct {
	mu      sync.Mutex
	stmts   map[string]*stmtInfo
	portals map[string]*portalInfo
	queue   []pending
	// cur is the plan of the simple-protocol result being streamed.
	cur *plan
	// copyBlocked is set while COPY output is being withheld: the reason.
	copyBlocked string
	// copy is the COPY whose rows are being rewritten; copyRaw passes a
	// COPY through unchanged for a role that sees everything.
	copy    *copyState
	copyRaw bool
	// rows counts result rows sent to the client.
	rows uint64
	// discarding drops an extended-protocol batch up to its Sync: the
	// batch was refused.
	discarding []byte
	// txStatus is the last ReadyForQuery's transaction status.
	txStatus byte
}

// endDiscard stops dropping a refused batch.
func (t *tracker) endDiscard() {
	t.mu.Lock()
	t.discarding = nil
	t.mu.Unlock()
}

// isDiscarding reports whether a refused extended batch is being dropped.
func (t *tracker) isDiscarding() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.discarding != nil
}

func newTracker() *tracker {
	return &tracker{stmts: map[string]*stmtInfo{}, portals: map[string]*portalInfo{}}
}

func cstr(b []byte) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: unterminated string", errMalformed)
	}
	return string(b[:i]), b[i+1:], nil
}

var errMalformed = errors.New("malformed message")

// frontend records a client message. It returns an extra frame to send
// upstream before the message (an injected Describe), or nil.
//
// stmts is the analysis of a Query's or Parse's SQL (nil if it did not
// parse).
func (t *tracker) frontend(typ byte, body []byte, stmts []sqlinfo.Statement) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch typ {
	case 'P':
		name, _, err := cstr(body)
		if err != nil {
			return nil, err
		}
		st := &stmtInfo{}
		if len(stmts) == 1 {
			st.computedOK, st.fingerprint, st.kind = statementComputedOK(stmts[0]), stmts[0].Fingerprint, stmts[0].Kind
		}
		t.stmts[name] = st
		t.queue = append(t.queue, pending{typ: 'P'})
	case 'B':
		var b pgproto3.Bind
		if err := b.Decode(body); err != nil {
			return nil, fmt.Errorf("%w: Bind: %v", errMalformed, err)
		}
		st := t.stmts[b.PreparedStatement]
		if st == nil {
			st = &stmtInfo{} // unknown statement: the server will refuse it
		}
		t.portals[b.DestinationPortal] = &portalInfo{stmt: st, formats: append([]int16{}, b.ResultFormatCodes...)}
		t.queue = append(t.queue, pending{typ: 'B'})
	case 'D', 'C':
		if len(body) < 2 {
			return nil, fmt.Errorf("%w: Describe/Close", errMalformed)
		}
		name, _, err := cstr(body[1:])
		if err != nil {
			return nil, err
		}
		t.queue = append(t.queue, pending{typ: typ, kind: body[0], name: name})
	case 'E':
		name, _, err := cstr(body)
		if err != nil {
			return nil, err
		}
		p := t.portals[name]
		var inject []byte
		if p != nil && !p.described && !p.stmt.described {
			// Execute never returns a RowDescription: ask for one.
			inject = frame('D', []byte{'P'}, []byte(name), []byte{0})
			t.queue = append(t.queue, pending{typ: 'D', kind: 'P', name: name, inject: true})
		}
		ex := pending{typ: 'E', name: name, portal: p}
		if p != nil {
			p.noticed = false
			ex.aud = newStmtAudit(p.stmt.fingerprint, p.stmt.kind)
		} else {
			ex.aud = newStmtAudit("", "")
		}
		t.queue = append(t.queue, ex)
		return inject, nil
	case 'S':
		t.queue = append(t.queue, pending{typ: 'S'})
	case 'Q':
		// A simple query destroys the unnamed statement and portal.
		delete(t.stmts, "")
		delete(t.portals, "")
		q := pending{typ: 'Q', stmts: stmts}
		var inject []byte
		for i, st := range stmts {
			if st.Copy == nil {
				continue
			}
			// Learn the COPY's columns in this session, before it runs.
			cs := &copyState{info: st.Copy, computedOK: statementComputedOK(st)}
			if q.copies == nil {
				q.copies = map[int]*copyState{}
			}
			q.copies[i] = cs
			inject = appendProbe(inject, st.Copy.ProbeQuery())
			t.queue = append(t.queue, pending{typ: 'P', inject: true}, pending{typ: 'D', kind: 'S', inject: true, copy: cs}, pending{typ: 'S', inject: true})
		}
		t.queue = append(t.queue, q)
		return inject, nil
	case 'F':
		t.queue = append(t.queue, pending{typ: 'F'})
	}
	return nil, nil
}

// appendProbe appends Parse, Describe and Sync of query on the unnamed
// statement, which the following simple query destroys anyway.
func appendProbe(dst []byte, query string) []byte {
	dst = append(dst, frame('P', []byte{0}, []byte(query), []byte{0, 0, 0})...)
	dst = append(dst, frame('D', []byte{'S', 0})...)
	return append(dst, frame('S')...)
}

func (t *tracker) head() *pending {
	if len(t.queue) == 0 {
		return nil
	}
	return &t.queue[0]
}

func (t *tracker) pop() { t.queue = t.queue[1:] }

// queryText returns the SQL of a Query or Parse message body.
func queryText(typ byte, body []byte) (string, bool) {
	if typ == 'P' {
		_, rest, err := cstr(body)
		if err != nil {
			return "", false
		}
		body = rest
	}
	q, _, err := cstr(body)
	return q, err == nil
}

// emptyQuery replaces a refused simple query: PostgreSQL answers it with
// EmptyQueryResponse and ReadyForQuery, keeping replies in order.
var emptyQuery = []byte{'Q', 0, 0, 0, 5, 0}

// refuse handles a client message while statements are refused: a Query
// becomes an empty query whose reply is replaced by errFrame; an extended
// batch is dropped up to its Sync, whose ReadyForQuery gets errFrame
// first. It returns the frame to send upstream instead (nil: nothing).
func (t *tracker) refuse(typ byte, errFrame []byte) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch typ {
	case 'Q', 'F':
		if t.discarding != nil {
			// A simple query ends an extended batch that had no Sync.
			t.discarding = nil
		}
		t.queue = append(t.queue, pending{typ: 'Q', refusal: errFrame})
		return emptyQuery
	case 'S':
		if t.discarding == nil {
			t.discarding = errFrame
		}
		t.queue = append(t.queue, pending{typ: 'S', refusal: t.discarding})
		t.discarding = nil
		return []byte{'S', 0, 0, 0, 4}
	case 'P', 'B', 'D', 'E', 'C':
		if t.discarding == nil {
			t.discarding = errFrame
		}
		return nil
	}
	return nil
}

// statementComputedOK reports whether a statement's computed columns may leave.
func statementComputedOK(st sqlinfo.Statement) bool { return st.CatalogOnly || st.ComputedSafe }
