package proxy

import (
	"fmt"
	"runtime"
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
// part that fails fails the run, as one row failing fails the session.
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
	rows  [][]byte
	parts [][]byte
	errs  []error
}

// restrictedRows is restrictedBackend for m, a DataRow, and for the
// messages after it while they are DataRows already buffered. Rows of one
// result whose plan is known are rewritten together (rewriteRun); any
// other message of the run is handled on its own, in order.
func (s *session) restrictedRows(m wire.Msg, out *[]byte) error {
	run := &s.runBufs
	var (
		res  *protocol.Result
		plan *rewrite.Plan
		a    *stmtAudit
	)
	flush := func() error {
		if len(run.rows) == 0 {
			return nil
		}
		before, start := len(*out), time.Now()
		var err error
		*out, err = run.rewrite(*out, plan)
		a.rewriting += time.Since(start)
		a.rewriteTimed += uint64(len(run.rows))
		a.bytes += uint64(len(*out) - before)
		clear(run.rows) // the views of the reader's buffer
		run.rows = run.rows[:0]
		return err
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
			s.rows++
			a.rows++
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
			return err
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
	}
	bound := func(i int) int { return len(rows) * i / parts }
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() {
			run.parts[i], run.errs[i] = rewriteRows(run.parts[i][:0], rows[bound(i):bound(i+1)], p)
		})
	}
	dst, err := rewriteRows(dst, rows[:bound(1)], p)
	wg.Wait()
	for i := 1; i < parts; i++ {
		if err == nil {
			err = run.errs[i]
			dst = append(dst, run.parts[i]...)
		}
		run.errs[i] = nil
		if cap(run.parts[i]) > partBufKeep {
			run.parts[i] = nil
		}
	}
	return dst, err
}

// rewriteRows appends rows rewritten by p to dst. A panic is an error of
// the run: on another goroutine it would end the process.
func rewriteRows(dst []byte, rows [][]byte, p *rewrite.Plan) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rewriting rows: %v", r)
		}
	}()
	for _, body := range rows {
		var err error
		if dst, err = rewrite.DataRow(dst, body, p); err != nil {
			return dst, err
		}
	}
	return dst, nil
}
