package proxy

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// A large result is rewritten on more than one core: the rows already
// buffered from the server form a run, the tracker and the audit see each
// row in order on the session's goroutine, and only the rewriting of the
// run is split into contiguous parts, one per core, joined in order. A
// part that fails fails the run, as one row failing fails the session; a
// part that panics panics the session's goroutine, once every part has
// stopped, as rewriting on it would have.
const (
	// runMax bounds a run; the reader's buffer bounds it too (the rows
	// are views of it).
	runMax = 2048
	// partMin is the fewest rows worth a part of their own: waking a
	// parked core took about 100 µs on the 2-core machine of
	// docs/performance.md, so a part must hold far more work than that
	// (about 2 µs per row of four tokenized columns; BenchmarkRowRun).
	// A run is what one read brought: a TLS record holds 16 KiB, about a
	// hundred rows of 150 bytes, so runs from a TLS upstream stay on one
	// core, while a 64 KiB read of a plain connection is spread.
	partMin = 192
	// partBufKeep is the largest part buffer kept for the next run.
	partBufKeep = 1 << 20
)

// rowRun is a session's buffers for rewriting runs of rows.
type rowRun struct {
	rows   [][]byte
	parts  [][]byte
	errs   []error
	panics []*partPanic
}

// partPanic is a part's panic with the stack it was raised on.
type partPanic struct {
	value any
	stack []byte
}

func (p *partPanic) String() string {
	return fmt.Sprintf("%v\n(in a part of a row run)\n%s", p.value, p.stack)
}

// upstreamReadError is an upstream message a run could not read (a framing
// error): the relay ends the session as for any upstream read error.
type upstreamReadError struct{ err error }

func (e *upstreamReadError) Error() string { return e.err.Error() }
func (e *upstreamReadError) Unwrap() error { return e.err }

// restrictedRows is restrictedBackend for m, a DataRow, and for the
// messages after it while they are DataRows already buffered. Rows of one
// result whose plan is known are rewritten together (rowRun.rewrite); any
// other message of the run is handled on its own, in order.
func (s *session) restrictedRows(m wire.Msg, out *[]byte) error {
	run := &s.runBufs
	var (
		res  *protocol.Result
		plan *rewrite.Plan
		a    *stmtAudit
	)
	// The rows are views of the reader's buffer: none is kept past the run.
	drop := func() {
		clear(run.rows)
		run.rows = run.rows[:0]
	}
	defer drop()
	flush := func() error {
		n := len(run.rows)
		if n == 0 {
			return nil
		}
		before, start := len(*out), time.Now()
		var err error
		*out, err = run.rewrite(*out, plan)
		drop()
		if err != nil {
			return err
		}
		// The run's wall-clock time: its parts overlap.
		a.rewriting += time.Since(start)
		a.rewriteTimed += uint64(n)
		a.bytes += uint64(len(*out) - before)
		s.rows += uint64(n)
		a.rows += uint64(n)
		return nil
	}
	for n := 0; ; n++ {
		rep, err := s.trk.Receive(m.Type, m.Body())
		if err != nil {
			return err
		}
		p, plain := runRow(m, rep)
		if plain && (res == nil || rep.Result == res && p == plan) {
			if res == nil {
				res, plan, a = rep.Result, p, s.resultAudit(rep.Result)
			}
			run.rows = append(run.rows, m.Body())
		} else {
			if err := flush(); err != nil {
				return err
			}
			res = nil
			if err := s.backendReply(m, rep, out); err != nil {
				return err
			}
		}
		if typ, ok := s.ur.PendingType(); !ok || typ != 'D' || n+1 >= runMax {
			break
		}
		if m, err = s.ur.Next(); err != nil {
			return &upstreamReadError{err}
		}
	}
	return flush()
}

// runRow returns the plan of a DataRow that can join a run: a row of a
// client's result whose plan was made at its first row (which also sent
// the plan's notice) and that rewrites something.
func runRow(m wire.Msg, rep protocol.Reply) (*rewrite.Plan, bool) {
	if m.Type != 'D' || rep.Result == nil || rep.Req == nil || rep.Req.Injected || len(rep.Skipped) > 0 {
		return nil, false
	}
	p, ok := rep.Result.Meta.(*rewrite.Plan)
	return p, ok && !p.Passthrough
}

// rewrite appends the run's rows rewritten by p to dst, spread over the
// cores when there are enough of them.
func (run *rowRun) rewrite(dst []byte, p *rewrite.Plan) ([]byte, error) {
	rows := run.rows
	parts := min(runtime.GOMAXPROCS(0), len(rows)/partMin)
	if parts <= 1 {
		return rewriteRows(dst, rows, p)
	}
	for len(run.parts) < parts {
		run.parts = append(run.parts, nil)
		run.errs = append(run.errs, nil)
		run.panics = append(run.panics, nil)
	}
	bound := func(i int) int { return len(rows) * i / parts }
	part := func(i int, dst []byte) {
		defer func() {
			if r := recover(); r != nil {
				run.panics[i] = &partPanic{r, debug.Stack()}
			}
		}()
		run.parts[i], run.errs[i] = rewriteRows(dst, rows[bound(i):bound(i+1)], p)
	}
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() { part(i, run.parts[i][:0]) })
	}
	part(0, dst)
	wg.Wait()
	dst, err := run.parts[0], run.errs[0]
	var raised *partPanic
	for i := range parts {
		if i > 0 && err == nil {
			err = run.errs[i]
			dst = append(dst, run.parts[i]...)
		}
		if raised == nil {
			raised = run.panics[i]
		}
		run.errs[i], run.panics[i] = nil, nil
		if i == 0 || cap(run.parts[i]) > partBufKeep {
			run.parts[i] = nil // part 0 wrote into dst
		}
	}
	if raised != nil {
		panic(raised)
	}
	return dst, err
}

// rewriteRows appends rows rewritten by p to dst.
func rewriteRows(dst []byte, rows [][]byte, p *rewrite.Plan) ([]byte, error) {
	for _, body := range rows {
		var err error
		if dst, err = rewrite.DataRow(dst, body, p); err != nil {
			return dst, err
		}
	}
	return dst, nil
}
