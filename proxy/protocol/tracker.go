package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// ErrMalformed reports a client message the tracker cannot read.
var ErrMalformed = errors.New("malformed message")

// ErrDesync reports a server message that answers no pending request in a
// way the protocol allows: the session cannot know what it means and must
// end.
var ErrDesync = errors.New("server reply does not match the pending requests")

// Statement is a prepared statement as the server holds it. A new Parse
// with the same name makes a new Statement; this one keeps describing the
// statement it was.
type Statement struct {
	Name       string
	SQL        string
	ParamTypes []uint32
	// Meta is the proxy's data about the statement (its analysis).
	Meta any
	// Described is set once a Describe answered; Fields is nil when the
	// statement returns no rows (NoData).
	Described bool
	Fields    []pgproto3.FieldDescription
}

// Portal is a portal as the server holds it.
type Portal struct {
	Name string
	// Stmt is the statement the portal was bound from; nil for a portal
	// the tracker did not see created (a SQL cursor).
	Stmt *Statement
	// Formats are Bind's result format codes.
	Formats []int16
	// Described is set once a Describe(P) answered; Fields then carry the
	// result formats.
	Described bool
	Fields    []pgproto3.FieldDescription
	// Meta is the proxy's data about the portal (its column plan).
	Meta any
}

// Effects are what a statement may do to the session's prepared
// statements and portals besides the protocol messages: SQL PREPARE,
// DEALLOCATE, DECLARE, CLOSE, DISCARD and transaction control. The proxy
// reports them when it sends the statement (from its parse), so the
// tracker asks the server to describe affected portals again; the server's
// command tags are what finally counts.
type Effects uint8

// The effects a statement can have.
const (
	EffectStatements Effects = 1 << iota // prepared statements may be dropped or made
	EffectPortals                        // portals (cursors) may be closed or declared
)

// Request is one message sent to the server that expects a reply.
type Request struct {
	// Type is the frontend message type: P, B, D, E, C, S, Q or F.
	Type byte
	// Target is 'S' or 'P' for Describe and Close.
	Target byte
	// Name is the statement (Parse, Describe S, Close S) or portal (Bind,
	// Describe P, Execute, Close P) the message names.
	Name string
	// StmtName is the statement a Bind binds.
	StmtName string
	// Formats are a Bind's result format codes.
	Formats []int16
	// Stmt is the statement a Parse creates.
	Stmt *Statement
	// Injected marks a message the proxy added: its replies are not the
	// client's.
	Injected bool
	// Meta is the proxy's data about the request.
	Meta any
	// Failed is set when the request got an ErrorResponse.
	Failed bool

	// forExec is the Execute an injected Describe(P) describes.
	forExec *Request
	// described holds what that Describe returned.
	described      []pgproto3.FieldDescription
	describedKnown bool
	effects        Effects
	// started is set once a simple query's first reply arrived.
	started bool
	// seq numbers the requests in the order they were sent.
	seq uint64
	// index is the statement of a simple query now answering.
	index int
}

// Index returns the statement of a simple query now answering (0-based).
func (r *Request) Index() int { return r.index }

// Result is one result set (or COPY) being streamed to the client: the
// rows of an Execute, or of one statement of a simple query.
type Result struct {
	// Req is the Execute or Query.
	Req *Request
	// Index is the statement's position in a simple query (0-based).
	Index int
	// Known reports that the columns are known; Fields is nil for a
	// result without a row description (COPY, or unknown).
	Known  bool
	Fields []pgproto3.FieldDescription
	// Formats are the Bind result formats to apply to Fields, nil when the
	// fields carry their formats (RowDescription of a simple query or of
	// Describe(P)).
	Formats []int16
	// Portal is the executed portal (Execute only).
	Portal *Portal
	// Copy is 'H' for COPY TO STDOUT, 'G' for COPY FROM STDIN, 0 for rows.
	Copy byte
	// Meta is the proxy's data (the column plan); only the goroutine that
	// receives server messages touches it.
	Meta any
}

// Reply is what one server message is, in the session's context.
type Reply struct {
	// Type is the message type.
	Type byte
	// Req is the request the message answers; nil for asynchronous
	// messages (notices, notifications, parameter status) and for errors
	// that answer nothing (FATAL before shutdown).
	Req *Request
	// Done reports that this was the request's last reply.
	Done bool
	// Result is the result set the message belongs to: RowDescription of a
	// simple query, DataRow, COPY messages, CommandComplete,
	// EmptyQueryResponse, PortalSuspended.
	Result *Result
	// Stmt and Portal are what a Describe's reply describes.
	Stmt   *Statement
	Portal *Portal
	// Skipped are requests the server will not answer because an earlier
	// message of their batch failed (delivered with the ErrorResponse, or
	// with the ReadyForQuery that ends the batch).
	Skipped []*Request
	// Tag is a CommandComplete's command tag.
	Tag string
}

// Tracker follows one session. Send is called by the goroutine that writes
// to the server, Receive by the one that reads from it.
type Tracker struct {
	mu sync.Mutex

	// Confirmed state: what the server has acknowledged.
	stmts   map[string]*Statement
	portals map[string]*Portal

	queue []*Request
	// seq is the number of the last request queued; flushed the last one
	// a Flush covers (the server answers up to it without more input).
	seq, flushed uint64
	// skipping: an extended-protocol message failed and the server skips
	// everything up to the next Sync; syncQueued: that Sync has been sent.
	skipping, syncQueued bool
	// copyIn: the server is in COPY FROM STDIN; Sync and Flush are ignored
	// until CopyDone or CopyFail.
	copyIn bool
	cur    *Result
	status byte
	params map[string]string
	// sinceReady: the client sent a message after the last ReadyForQuery
	// (its batch may hold an open implicit transaction).
	sinceReady bool

	// proj predicts, at send time, which portals will have a description
	// when their Execute is answered, so the tracker can ask for one.
	proj projection
	// dirty: the prediction may be wrong (an error, or a command tag that
	// dropped statements or portals); rebuilt at the next ReadyForQuery.
	dirty bool
}

// projection is the send-time view of statements and portals: name →
// whether a description will be known.
type projection struct {
	stmts   map[string]bool
	portals map[string]bool
}

// New returns a tracker for a session that has just become ready.
func New() *Tracker {
	return &Tracker{
		stmts: map[string]*Statement{}, portals: map[string]*Portal{}, status: 'I', params: map[string]string{},
		proj: projection{stmts: map[string]bool{}, portals: map[string]bool{}},
	}
}

// Sent is what Send made of a client message.
type Sent struct {
	// Req is the request recorded (nil for messages without a reply:
	// Flush, Terminate, COPY data, Sync during COPY FROM STDIN).
	Req *Request
	// Before is a frame to send to the server ahead of the message (a
	// Describe(P) the tracker needs), or nil.
	Before []byte
	// Skipped: an injected message the server would skip (an earlier
	// message of the batch failed and no Sync is on its way); it was not
	// recorded and must not be sent, and no reply will come.
	Skipped bool
	// WillSkip: a client's message the server will skip for the same
	// reason; it is recorded, and reported skipped at the Sync's reply.
	WillSkip bool
}

// Send records a message about to be sent to the server. injected marks
// the proxy's own messages; meta and effects are the proxy's data about
// the request (effects apply to Parse and Query; a Parse's meta is also
// its statement's).
func (t *Tracker) Send(typ byte, body []byte, injected bool, meta any, effects Effects) (Sent, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if injected && t.skipping && !t.syncQueued {
		// Recorded, it would wait for a reply until the client's Sync,
		// which comes after the message the proxy is holding back.
		return Sent{Skipped: true}, nil
	}
	r := &Request{Type: typ, Injected: injected, Meta: meta, effects: effects}
	if !injected {
		t.sinceReady = true
	}
	switch typ {
	case 'P':
		name, rest, err := cstr(body)
		if err != nil {
			return Sent{}, err
		}
		sql, rest, err := cstr(rest)
		if err != nil {
			return Sent{}, err
		}
		types, err := paramTypes(rest)
		if err != nil {
			return Sent{}, err
		}
		r.Name = name
		r.Stmt = &Statement{Name: name, SQL: sql, ParamTypes: types, Meta: meta}
	case 'B':
		var b pgproto3.Bind
		if err := b.Decode(body); err != nil {
			return Sent{}, fmt.Errorf("%w: Bind: %v", ErrMalformed, err)
		}
		r.Name, r.StmtName = b.DestinationPortal, b.PreparedStatement
		r.Formats = append([]int16(nil), b.ResultFormatCodes...)
	case 'D', 'C':
		if len(body) < 2 || body[0] != 'S' && body[0] != 'P' {
			return Sent{}, fmt.Errorf("%w: Describe/Close", ErrMalformed)
		}
		name, _, err := cstr(body[1:])
		if err != nil {
			return Sent{}, err
		}
		r.Target, r.Name = body[0], name
	case 'E':
		name, _, err := cstr(body)
		if err != nil {
			return Sent{}, err
		}
		r.Name = name
		var before []byte
		if !t.proj.portals[name] {
			// Execute never returns a row description: ask for one in
			// the same pipeline, for this Execute only.
			d := &Request{Type: 'D', Target: 'P', Name: name, Injected: true, forExec: r}
			t.push(d)
			before = wire.Frame('D', []byte{'P'}, []byte(name), []byte{0})
			if _, bound := t.proj.portals[name]; bound {
				t.proj.portals[name] = true
			}
		}
		t.push(r)
		return Sent{Req: r, Before: before, WillSkip: t.skipping && !t.syncQueued}, nil
	case 'S':
		if t.copyIn {
			return Sent{}, nil
		}
		if t.skipping {
			t.syncQueued = true
		}
	case 'Q', 'F':
	case 'H':
		t.flushed = t.seq
		return Sent{}, nil
	case 'X', 'd':
		return Sent{}, nil
	case 'c', 'f':
		t.copyIn = false
		return Sent{}, nil
	default:
		return Sent{}, fmt.Errorf("%w: unexpected message type %q", ErrMalformed, typ)
	}
	t.proj.apply(r)
	t.push(r)
	return Sent{Req: r}, nil
}

// push appends a request (lock held).
func (t *Tracker) push(r *Request) {
	t.seq++
	r.seq = t.seq
	t.queue = append(t.queue, r)
}

// Owed reports whether the server owes a reply it will send without more
// input from the client: to a Sync, Query or FunctionCall, to a request a
// Flush covers, or to the proxy's own requests (which it always flushes).
// Requests the client has not yet synced or flushed are not owed: the
// server waits for the client, as PostgreSQL's own idle timeouts count.
func (t *Tracker) Owed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.queue {
		switch {
		case r.Injected, r.Type == 'S', r.Type == 'Q', r.Type == 'F', r.seq <= t.flushed:
			return true
		}
	}
	return false
}

// Skipping reports whether the server will skip a message sent now
// because an earlier message of the current batch failed.
func (t *Tracker) Skipping() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skipping && !t.syncQueued
}

// Status returns the transaction status of the last ReadyForQuery: 'I'
// idle, 'T' in a transaction block, 'E' in a failed one.
func (t *Tracker) Status() byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// Param returns the last value the server reported for a parameter
// (ParameterStatus).
func (t *Tracker) Param(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.params[name]
}

// SetParam records a parameter reported before the tracker started (the
// ParameterStatus messages of the login).
func (t *Tracker) SetParam(name, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.params[name] = value
}

// BetweenBatches reports whether the session is at rest: idle outside a
// transaction block, every request answered, and no client message sent
// since the last ReadyForQuery (so no implicit transaction of an
// extended-protocol batch is open, which a Sync of the proxy's own would
// commit).
func (t *Tracker) BetweenBatches() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status == 'I' && len(t.queue) == 0 && !t.sinceReady
}

// Pending returns the number of requests awaiting replies.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// Statements reports whether a statement of that name exists or is on
// its way (a Parse in flight), and how many named statements there are,
// counting both (the unnamed statement is not counted).
func (t *Tracker) Statements(name string) (known bool, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, confirmed := t.stmts[name]
	_, projected := t.proj.stmts[name]
	return confirmed || projected, max(named(t.stmts), named(t.proj.stmts))
}

// Held reports what the session's statements and portals hold, counting
// those on their way (a pipelined Parse or Bind): how many named portals
// there are, and the bytes of statement text, result descriptions and
// proxy data (metaSize measures a statement's Meta; nil counts none).
func (t *Tracker) Held(metaSize func(any) int64) (portals int, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	size := func(st *Statement) int64 {
		n := int64(len(st.SQL)+4*len(st.ParamTypes)) + fieldsSize(st.Fields)
		if metaSize != nil && st.Meta != nil {
			n += metaSize(st.Meta)
		}
		return n
	}
	for _, st := range t.stmts {
		bytes += size(st)
	}
	for _, p := range t.portals {
		bytes += fieldsSize(p.Fields) + int64(2*len(p.Formats))
	}
	for _, r := range t.queue {
		if r.Type == 'P' && r.Stmt != nil {
			bytes += size(r.Stmt)
		}
	}
	return max(named(t.portals), named(t.proj.portals)), bytes
}

// fieldsSize estimates the bytes a result description holds.
func fieldsSize(fs []pgproto3.FieldDescription) int64 {
	n := int64(0)
	for _, f := range fs {
		n += int64(len(f.Name)) + 48
	}
	return n
}

// named counts the keys of m other than "".
func named[V any](m map[string]V) int {
	if _, ok := m[""]; ok {
		return len(m) - 1
	}
	return len(m)
}

// Statement returns the confirmed statement with that name, or nil.
func (t *Tracker) Statement(name string) *Statement {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stmts[name]
}

// apply updates the send-time projection for a request (lock held).
func (p *projection) apply(r *Request) {
	switch r.Type {
	case 'P':
		p.stmts[r.Name] = false
		p.effects(r.effects)
	case 'B':
		p.portals[r.Name] = p.stmts[r.StmtName]
	case 'D':
		if r.Target == 'S' {
			if _, ok := p.stmts[r.Name]; ok {
				p.stmts[r.Name] = true
			}
		} else if _, ok := p.portals[r.Name]; ok {
			p.portals[r.Name] = true
		}
	case 'C':
		if r.Target == 'S' {
			delete(p.stmts, r.Name)
		} else {
			delete(p.portals, r.Name)
		}
	case 'Q':
		// A simple query destroys the unnamed statement and portal.
		delete(p.stmts, "")
		delete(p.portals, "")
		p.effects(r.effects)
	}
}

func (p *projection) effects(e Effects) {
	if e&EffectStatements != 0 {
		for k := range p.stmts {
			p.stmts[k] = false
		}
	}
	if e&EffectPortals != 0 {
		clear(p.portals)
	}
}

// reproject rebuilds the projection from the confirmed state and the
// requests still in flight (lock held).
func (t *Tracker) reproject() {
	clear(t.proj.stmts)
	clear(t.proj.portals)
	for name, st := range t.stmts {
		t.proj.stmts[name] = st.Described
	}
	for name, p := range t.portals {
		t.proj.portals[name] = p.Described || p.Stmt != nil && p.Stmt.Described
	}
	for _, r := range t.queue {
		if !r.Injected || r.forExec == nil {
			t.proj.apply(r)
		}
	}
	t.dirty = false
}

func (t *Tracker) head() *Request {
	if len(t.queue) == 0 {
		return nil
	}
	return t.queue[0]
}

func (t *Tracker) pop() *Request {
	r := t.queue[0]
	t.queue[0] = nil
	t.queue = t.queue[1:]
	if len(t.queue) == 0 {
		t.queue = t.queue[:0:0]
	}
	return r
}

// Receive classifies one server message. An error means the message does
// not fit the session's pending requests: the session must end.
func (t *Tracker) Receive(typ byte, body []byte) (Reply, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := Reply{Type: typ}
	h := t.head()
	if h != nil && h.Type == 'Q' && !h.started && typ != 'N' && typ != 'S' && typ != 'A' {
		// The server has started the simple query: it destroyed the
		// unnamed statement and portal.
		h.started = true
		delete(t.stmts, "")
		delete(t.portals, "")
	}
	switch typ {
	case 'S': // ParameterStatus
		var ps pgproto3.ParameterStatus
		if err := ps.Decode(body); err != nil {
			return rep, fmt.Errorf("%w: ParameterStatus: %v", ErrDesync, err)
		}
		t.params[ps.Name] = ps.Value
		return rep, nil
	case 'N', 'A': // NoticeResponse, NotificationResponse
		return rep, nil
	case '1': // ParseComplete
		if h == nil || h.Type != 'P' {
			return rep, t.desync(typ)
		}
		t.stmts[h.Name] = h.Stmt
		return t.done(rep), nil
	case '2': // BindComplete
		if h == nil || h.Type != 'B' {
			return rep, t.desync(typ)
		}
		t.portals[h.Name] = &Portal{Name: h.Name, Stmt: t.stmts[h.StmtName], Formats: h.Formats}
		return t.done(rep), nil
	case '3': // CloseComplete
		if h == nil || h.Type != 'C' {
			return rep, t.desync(typ)
		}
		if h.Target == 'S' {
			delete(t.stmts, h.Name)
		} else {
			delete(t.portals, h.Name)
		}
		return t.done(rep), nil
	case 't': // ParameterDescription
		if h == nil || h.Type != 'D' || h.Target != 'S' {
			return rep, t.desync(typ)
		}
		rep.Req, rep.Stmt = h, t.stmts[h.Name]
		return rep, nil
	case 'T', 'n': // RowDescription, NoData
		var fields []pgproto3.FieldDescription
		if typ == 'T' {
			var err error
			if fields, err = decodeFields(body); err != nil {
				return rep, err
			}
		}
		switch {
		case h != nil && h.Type == 'D':
			rep.Req = h
			switch {
			case h.forExec != nil:
				h.forExec.described, h.forExec.describedKnown = fields, true
				if p := t.portals[h.Name]; p != nil {
					p.Fields, p.Described = fields, true
				}
			case h.Target == 'S':
				if st := t.stmts[h.Name]; st != nil {
					st.Fields, st.Described = fields, true
					rep.Stmt = st
				}
			default:
				if p := t.portals[h.Name]; p != nil {
					p.Fields, p.Described = fields, true
					rep.Portal = p
				}
			}
			return t.done(rep), nil
		case h != nil && h.Type == 'Q' && typ == 'T':
			t.cur = &Result{Req: h, Index: h.index, Known: true, Fields: fields}
			rep.Req, rep.Result = h, t.cur
			return rep, nil
		}
		return rep, t.desync(typ)
	case 'D', 'G', 'H', 'W', 'd', 'c': // DataRow, CopyIn/Out/BothResponse, CopyData, CopyDone
		r := t.result(h, typ)
		if r == nil {
			return rep, t.desync(typ)
		}
		// COPY data only inside a COPY the server announced, rows and a
		// second announcement only outside one: anything else is a reply
		// to some other request.
		switch inCopy := r.Copy == 'H' || r.Copy == 'W'; {
		case (typ == 'd' || typ == 'c') && !inCopy,
			(typ == 'D' || typ == 'G' || typ == 'H' || typ == 'W') && r.Copy != 0:
			return rep, t.desync(typ)
		}
		switch typ {
		case 'G':
			t.copyIn = true
			t.dropQueuedSyncs()
			r.Copy = typ
		case 'H', 'W':
			r.Copy = typ
		}
		rep.Req, rep.Result = h, r
		return rep, nil
	case 'C', 'I', 's': // CommandComplete, EmptyQueryResponse, PortalSuspended
		r := t.result(h, typ)
		if r == nil || typ == 's' && h.Type != 'E' {
			return rep, t.desync(typ)
		}
		rep.Req, rep.Result = h, r
		t.cur = nil
		t.copyIn = false
		if typ == 'C' {
			var cc pgproto3.CommandComplete
			if err := cc.Decode(body); err != nil {
				return rep, fmt.Errorf("%w: CommandComplete: %v", ErrDesync, err)
			}
			rep.Tag = string(cc.CommandTag)
			t.tagEffects(rep.Tag)
		}
		if h.Type == 'Q' {
			h.index++
			return rep, nil
		}
		return t.done(rep), nil
	case 'V': // FunctionCallResponse
		if h == nil || h.Type != 'F' {
			return rep, t.desync(typ)
		}
		rep.Req = h
		return rep, nil
	case 'E': // ErrorResponse
		t.cur = nil
		t.copyIn = false
		if h == nil {
			return rep, nil // e.g. FATAL on shutdown: answers nothing
		}
		h.Failed = true
		rep.Req = h
		if h.Type == 'Q' || h.Type == 'F' || h.Type == 'S' {
			// The rest of the query string is abandoned, or the implicit
			// transaction failed to commit at Sync; ReadyForQuery follows.
			return rep, nil
		}
		// The server skips every message up to the next Sync.
		t.pop()
		rep.Done = true
		for h := t.head(); h != nil && h.Type != 'S'; h = t.head() {
			rep.Skipped = append(rep.Skipped, t.pop())
		}
		t.skipping = true
		t.syncQueued = len(t.queue) > 0
		t.dirty = true
		return rep, nil
	case 'Z': // ReadyForQuery
		if len(body) != 1 {
			return rep, fmt.Errorf("%w: ReadyForQuery", ErrDesync)
		}
		t.status = body[0]
		t.cur = nil
		t.copyIn = false
		t.sinceReady = false
		if t.skipping {
			for h := t.head(); h != nil && h.Type != 'S'; h = t.head() {
				rep.Skipped = append(rep.Skipped, t.pop())
			}
			t.skipping, t.syncQueued = false, false
		}
		h := t.head()
		if h == nil || h.Type != 'S' && h.Type != 'Q' && h.Type != 'F' {
			return rep, t.desync(typ)
		}
		rep.Req = h
		t.pop()
		rep.Done = true
		if t.status == 'I' {
			// Portals live until the end of their transaction.
			clear(t.portals)
			clear(t.proj.portals)
			t.dirty = true
		}
		if t.dirty {
			t.reproject()
		}
		return rep, nil
	}
	// Anything else after startup (authentication, BackendKeyData,
	// NegotiateProtocolVersion) answers nothing the proxy sent.
	return rep, t.desync(typ)
}

// done pops the head as answered (lock held).
func (t *Tracker) done(rep Reply) Reply {
	rep.Req = t.pop()
	rep.Done = true
	return rep
}

func (t *Tracker) desync(typ byte) error {
	if h := t.head(); h != nil {
		return fmt.Errorf("%w: %q while waiting for the reply to %q", ErrDesync, typ, h.Type)
	}
	return fmt.Errorf("%w: %q with no request pending", ErrDesync, typ)
}

// result returns the result set a row, COPY or completion message belongs
// to, making it on the first such message of an Execute (lock held).
func (t *Tracker) result(h *Request, typ byte) *Result {
	switch {
	case h == nil:
		return nil
	case h.Type == 'Q':
		if t.cur == nil {
			// Rows without a row description stay unknown; COPY and
			// commands without rows start here.
			t.cur = &Result{Req: h, Index: h.index}
		}
		return t.cur
	case h.Type != 'E':
		return nil
	}
	if t.cur != nil && t.cur.Req == h {
		return t.cur
	}
	r := &Result{Req: h, Portal: t.portals[h.Name]}
	switch {
	case h.describedKnown:
		r.Known, r.Fields = true, h.described
	case r.Portal != nil && r.Portal.Described:
		r.Known, r.Fields = true, r.Portal.Fields
	case r.Portal != nil && r.Portal.Stmt != nil && r.Portal.Stmt.Described:
		r.Known, r.Fields, r.Formats = true, r.Portal.Stmt.Fields, r.Portal.Formats
	}
	t.cur = r
	return r
}

// dropQueuedSyncs removes Syncs queued behind a COPY FROM STDIN: the
// server ignores Sync during COPY IN (clients that pipeline send one
// before they know the statement is a COPY).
func (t *Tracker) dropQueuedSyncs() {
	kept := t.queue[:1]
	for _, r := range t.queue[1:] {
		if r.Type != 'S' {
			kept = append(kept, r)
		}
	}
	for i := len(kept); i < len(t.queue); i++ {
		t.queue[i] = nil
	}
	t.queue = kept
}

// tagEffects applies what a SQL command did to statements and portals, as
// its command tag says (lock held). Tags carry no names, so every
// statement or portal counts as affected.
func (t *Tracker) tagEffects(tag string) {
	switch {
	case tag == "DEALLOCATE", tag == "DEALLOCATE ALL", tag == "DISCARD ALL":
		clear(t.stmts)
		if tag == "DISCARD ALL" {
			clear(t.portals)
		}
		t.dirty = true
	case strings.HasPrefix(tag, "CLOSE CURSOR"), tag == "DECLARE CURSOR":
		clear(t.portals)
		t.dirty = true
	}
}

func cstr(b []byte) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: unterminated string", ErrMalformed)
	}
	return string(b[:i]), b[i+1:], nil
}

func paramTypes(b []byte) ([]uint32, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: Parse without parameter count", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) != 4*n {
		return nil, fmt.Errorf("%w: Parse parameter types", ErrMalformed)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out, nil
}

// decodeFields decodes a RowDescription into fields that do not alias the
// read buffer (descriptions outlive the message).
func decodeFields(body []byte) ([]pgproto3.FieldDescription, error) {
	var rd pgproto3.RowDescription
	if err := rd.Decode(body); err != nil {
		return nil, fmt.Errorf("%w: RowDescription: %v", ErrDesync, err)
	}
	fields := make([]pgproto3.FieldDescription, len(rd.Fields))
	copy(fields, rd.Fields)
	for i := range fields {
		fields[i].Name = bytes.Clone(fields[i].Name)
	}
	return fields, nil
}

// QueryText returns the SQL of a Query or Parse message body.
func QueryText(typ byte, body []byte) (string, bool) {
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

// MessageName returns the name a Parse, Bind, Describe, Execute or Close
// message carries (for Bind: the portal and the statement).
func MessageName(typ byte, body []byte) (name, stmt string, err error) {
	switch typ {
	case 'P', 'E':
		name, _, err = cstr(body)
	case 'B':
		var rest []byte
		if name, rest, err = cstr(body); err == nil {
			stmt, _, err = cstr(rest)
		}
	case 'D', 'C':
		if len(body) < 2 {
			return "", "", ErrMalformed
		}
		name, _, err = cstr(body[1:])
	}
	return name, stmt, err
}
