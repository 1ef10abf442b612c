package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/screen"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// The server-side check asks the session's own server, just before the
// client's statement and in the same session (so with the same
// search_path, privileges, temporary schema and grammar), for the plan of
// each statement that reads data: EXPLAIN (VERBOSE, COSTS OFF, FORMAT
// JSON) of the statement as it will be sent; for statements with
// parameters the generic plan, through a prepared statement executed with
// plan_cache_mode = force_generic_plan (generic plans keep every use of a
// parameter; a custom plan would fold them away). It also reads
// search_path, to confirm the proxy's view of it. Planning runs no table
// scan and no volatile function; the analysis has refused writes and
// non-built-in functions before.
//
// The requests go out as the proxy's own (injected) messages. They end
// with Flush when the client's statement is a Parse (the client's batch
// and its implicit transaction continue), and with Sync when it is a
// simple query (which ends a batch anyway), so a failure of the check
// leaves the server in the state the client expects.

const explainPrefix = "EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) "

// checkRun is one check round trip.
type checkRun struct {
	done    chan struct{}
	pending int // injected requests not yet answered
	// plans are the EXPLAIN results, in statement order.
	plans [][]byte
	// path is current_setting('search_path') at the check.
	path    string
	hasPath bool
	// err is the server's error; errFrame the ErrorResponse as sent;
	// errOffset how many bytes the proxy put in front of the client's text
	// in the failing request (for the error position).
	err       *pgproto3.ErrorResponse
	errFrame  []byte
	errOffset int
	// errAtCommit: the error answered the check's Sync, whose commit may
	// have read rows (restricted roles get it as an execution error).
	errAtCommit bool
	// skipped: the server skipped the check (an earlier message of the
	// client's batch failed).
	skipped bool
	// forward: the check ends with Flush; its error goes to the client as
	// the reply to its statement.
	forward bool
	// noPosition: the checked text holds clear drill-down values, so an
	// error's position would tell how long they are.
	noPosition bool
}

// checkReq is the proxy data of one injected request of a check.
type checkReq struct {
	run *checkRun
	// role: 'x' an EXPLAIN's Execute, 'p' a Parse of text with offset
	// bytes before the client's statement, 's' the search_path query, 'c'
	// the Sync that ends a check (it commits the client's implicit
	// transaction), 0 anything else.
	role   byte
	offset int
}

// answered counts down one request of the run (upstream goroutine).
func (r *checkRun) answered() {
	r.pending--
	if r.pending == 0 {
		close(r.done)
	}
}

// checkReply consumes a reply to a check's request (upstream goroutine).
func (s *session) checkReply(cr *checkReq, typ byte, body []byte, done bool) error {
	run := cr.run
	switch typ {
	case 'D':
		var row pgproto3.DataRow
		if err := row.Decode(body); err != nil || len(row.Values) != 1 {
			return fmt.Errorf("server-side check: unexpected row")
		}
		switch cr.role {
		case 'x':
			run.plans = append(run.plans, append([]byte(nil), row.Values[0]...))
		case 's':
			run.path, run.hasPath = string(row.Values[0]), true
		}
	case 'E':
		var e pgproto3.ErrorResponse
		if err := e.Decode(body); err == nil && run.err == nil {
			run.err = &e
			run.errOffset = cr.offset
			run.errFrame = append([]byte(nil), wire.Frame('E', body)...)
			// A commit can read rows (a WITH HOLD cursor the client
			// declared earlier in its batch is persisted at this Sync).
			run.errAtCommit = cr.role == 'c'
		}
	}
	if done {
		run.answered()
	}
	return nil
}

// checkSkipped counts a check request the server skipped (upstream
// goroutine).
func (s *session) checkSkipped(cr *checkReq) {
	if cr.run.err == nil {
		cr.run.skipped = true
	}
	cr.run.answered()
}

// runCheck sends the check of stmts ahead of the client's message and
// waits for its replies. simple says the client's message is a simple
// query (the check then ends with Sync); drilled that the texts hold
// clear drill-down values. It runs on the goroutine that writes upstream;
// nothing is locked while it waits.
func (s *session) runCheck(stmts []screen.Probe, simple, drilled bool) (*checkRun, error) {
	run := &checkRun{done: make(chan struct{}), forward: !simple, noPosition: drilled}
	var out []byte
	send := func(typ byte, role byte, offset int, parts ...[]byte) error {
		f := wire.Frame(typ, parts...)
		sent, err := s.trk.Send(typ, f[5:], true, &checkReq{run: run, role: role, offset: offset}, 0)
		if err != nil {
			return err
		}
		if sent.Skipped {
			// An earlier message of the client's batch failed: the server
			// skips the check, and the statement, up to the Sync.
			if run.err == nil {
				run.skipped = true
			}
			return nil
		}
		if sent.Before != nil {
			out = append(out, sent.Before...)
		}
		if sent.Req != nil {
			run.pending++
		}
		out = append(out, f...)
		return nil
	}
	cstr := func(s string) []byte { return append([]byte(s), 0) }
	exec := func(name, sql string, role byte, offset int, types []uint32) error {
		pt := binary.BigEndian.AppendUint16(nil, uint16(len(types)))
		for _, t := range types {
			pt = binary.BigEndian.AppendUint32(pt, t)
		}
		for _, step := range []func() error{
			// A check that failed half-way (an error skips the rest up to
			// Sync) may have left this name behind; closing a name that
			// does not exist is no error.
			func() error { return send('C', 0, 0, []byte{'S'}, cstr(name)) },
			func() error { return send('P', 'p', offset, cstr(name), cstr(sql), pt) },
			func() error { return send('B', 0, 0, cstr(name), cstr(name), []byte{0, 0, 0, 0, 0, 0}) },
			func() error { return send('E', role, 0, cstr(name), []byte{0, 0, 0, 0}) },
			func() error { return send('C', 0, 0, []byte{'P'}, cstr(name)) },
			func() error { return send('C', 0, 0, []byte{'S'}, cstr(name)) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}
	generic := false
	for i, st := range stmts {
		name := fmt.Sprintf("%s_%d", sqlinfo.ReservedPrefix, i)
		if st.NParams == 0 && len(st.Types) == 0 {
			if err := exec(name, explainPrefix+st.Text, 'x', len(explainPrefix), nil); err != nil {
				return nil, err
			}
			continue
		}
		if !generic {
			generic = true
			if err := exec(sqlinfo.ReservedPrefix+"_mode", "SET plan_cache_mode = force_generic_plan", 0, 0, nil); err != nil {
				return nil, err
			}
		}
		prep := name + "_s"
		pt := binary.BigEndian.AppendUint16(nil, uint16(len(st.Types)))
		for _, t := range st.Types {
			pt = binary.BigEndian.AppendUint32(pt, t)
		}
		if err := send('C', 0, 0, []byte{'S'}, cstr(prep)); err != nil {
			return nil, err
		}
		if err := send('P', 'p', 0, cstr(prep), cstr(st.Text), pt); err != nil {
			return nil, err
		}
		args := strings.TrimSuffix(strings.Repeat("NULL, ", max(st.NParams, len(st.Types))), ", ")
		if err := exec(name, explainPrefix+"EXECUTE "+prep+"("+args+")", 'x', -1, nil); err != nil {
			return nil, err
		}
		if err := send('C', 0, 0, []byte{'S'}, cstr(prep)); err != nil {
			return nil, err
		}
	}
	if generic {
		if err := exec(sqlinfo.ReservedPrefix+"_mode", "RESET plan_cache_mode", 0, 0, nil); err != nil {
			return nil, err
		}
	}
	if err := exec(sqlinfo.ReservedPrefix+"_path", "SELECT pg_catalog.current_setting('search_path')", 's', 0, nil); err != nil {
		return nil, err
	}
	if simple {
		if err := send('S', 'c', 0); err != nil {
			return nil, err
		}
	} else {
		out = append(out, flushFrame...)
	}
	if run.pending == 0 {
		return run, nil // all skipped: nothing was sent
	}
	if _, err := s.uw.Write(out); err != nil {
		return nil, err
	}
	if err := s.uw.Flush(); err != nil {
		return nil, err
	}
	timer := time.NewTimer(planTimeout)
	defer timer.Stop()
	select {
	case <-run.done:
		return run, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	case <-timer.C:
		return nil, errCheckTimeout
	}
}

// errCheckTimeout: the server did not answer the check in time; the
// session cannot continue in step and ends.
var errCheckTimeout = errors.New("the server-side check got no answer in time")

// checkErrorFrame is the server's error for the client, as the reply to
// its statement: scrubbed for restricted roles, with a position into the
// client's own text.
func (s *session) checkErrorFrame(run *checkRun) []byte {
	if _, role := s.currentPolicy(); run.errAtCommit && role.Restricted() {
		return executionErrorFor(role.Name, run.errFrame)
	}
	e := *run.err
	if run.noPosition {
		// (red team rounds 44 and earlier: the offset of a position after
		// a clear value measures it)
		e.Position = 0
	} else if e.Position > 0 && run.errOffset > 0 {
		e.Position -= int32(run.errOffset)
		if e.Position < 1 {
			e.Position = 0
		}
	} else if run.errOffset < 0 {
		e.Position = 0
	}
	e.Detail, e.Hint, e.Where, e.InternalQuery, e.InternalPosition = "", "", "", "", 0
	b, _ := e.Encode(nil)
	return b
}
