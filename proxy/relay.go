package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// relayStats summarises a session for the end-of-session log line.
type relayStats struct {
	stmts    int64
	bytesOut int64
	rows     uint64
	reason   string
	busy     bool // a request was unanswered when the relay ended
}

// relay copies messages both ways until either side ends. Frames are
// batched: a direction flushes when its input has no complete message
// buffered or when 64 KiB are waiting.
func (s *session) relay() relayStats {
	var (
		wg      sync.WaitGroup
		once    sync.Once
		reason  string
		st      relayStats
		busy    flight
		lastIn  atomic.Int64
		outSize atomic.Int64
	)
	end := func(r string) {
		once.Do(func() {
			reason = r
			// Closing both sockets unblocks the other direction; a
			// session kept for reuse is only stopped reading.
			s.client.Close()
			if r == reasonParking {
				s.up.SetReadDeadline(time.Now())
			} else {
				s.up.Close()
			}
		})
	}
	lastIn.Store(time.Now().UnixNano())
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		// The server's shutdown cancels the session's context: the client
		// hears why, between two messages, before the connection closes.
		select {
		case <-s.ctx.Done():
			if s.srv.baseCtx.Err() != nil {
				s.writeClientLocked(fatal(codeAdminShutdown, "terminating connection due to administrator command"))
				end("server shutdown")
			}
		case <-stopped:
		}
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer s.recoverRelay(end)
		end(s.clientToUpstream(&busy, &lastIn, &st.stmts))
	}()
	go func() {
		defer wg.Done()
		defer s.recoverRelay(end)
		end(s.upstreamToClient(&busy, &outSize))
	}()
	wg.Wait()
	st.reason = reason
	// Any request not yet answered may be running (the server executes
	// an Execute at once and only holds its output back until a Flush or
	// Sync): a cancel sent when nothing runs does nothing.
	st.busy = s.inFlight(&busy) || s.trk != nil && s.trk.Pending() > 0 || busy.unflushed > 0
	st.bytesOut = outSize.Load()
	st.rows = s.rows // the upstream goroutine has ended
	return st
}

func (s *session) recoverRelay(end func(string)) {
	if r := recover(); r != nil {
		s.log.Error("relay panicked; session closed", zap.Any("panic", r), zap.Stack("stack"))
		end("internal error")
	}
}

// reasonParking ends a relay whose client terminated at rest: the
// upstream session is reset and kept (upstream.reuse).
const reasonParking = "client terminated, session kept"

// clientToUpstream forwards client messages. It returns why it stopped.
func (s *session) clientToUpstream(busy *flight, lastIn *atomic.Int64, n *int64) string {
	idle := s.srv.cfg.Limits.IdleTimeout
	for {
		if idle > 0 {
			s.client.SetReadDeadline(time.Now().Add(idle))
		}
		m, err := s.cr.Next()
		if err != nil {
			if isTimeout(err) {
				if s.inFlight(busy) || time.Since(time.Unix(0, lastIn.Load())) < idle {
					continue
				}
				s.writeClientLocked(fatal(codeIdleSessionTimeout, "terminating connection due to idle-session timeout"))
				return "idle timeout"
			}
			return s.readEnd("client", err)
		}
		if m.Type == 'Q' || m.Type == 'E' {
			*n++ // statements: simple queries and executions
		}
		lastIn.Store(time.Now().UnixNano())
		busy.sent(m.Type)
		if m.Type == 'X' {
			// The server closes the connection after Terminate: that end
			// is expected, not a lost database.
			s.terminated.Store(true)
			if s.mayPark() {
				s.parking.Store(true)
				return reasonParking
			}
		}
		if s.trk != nil {
			if err := s.forwardTracked(m); err != nil {
				var ce *clientError
				switch {
				case errors.Is(err, protocol.ErrMalformed):
					s.writeClientProtocolError(err)
					return "client protocol violation"
				case errors.As(err, &ce):
					s.log.Warn("session ended", zap.String("sqlstate", ce.Code), zap.String("reason", ce.Msg))
					s.writeClientFatal(ce.Code, ce.Msg)
					return "limit"
				}
				return s.readEnd("upstream", err)
			}
		} else if _, err := s.uw.Write(m.Raw); err != nil {
			return s.readEnd("upstream", err)
		}
		if m.Type == 'X' {
			_ = s.uw.Flush()
			return "client terminated"
		}
		if !s.cr.Pending() {
			if err := s.uw.Flush(); err != nil {
				return s.readEnd("upstream", err)
			}
		}
	}
}

// forwardTracked screens and records one client message of a session
// with a policy, and writes what goes upstream: the message, the
// tracker's Describe before it, COPY probes before a simple query, or
// the substitute of a refused statement.
func (s *session) forwardTracked(m wire.Msg) error {
	var (
		meta    any
		effects protocol.Effects
	)
	received := time.Now() // a statement's audited duration starts here
	body, replaced := m.Body(), false
	if err := s.withinLimits(m); err != nil {
		return err
	}
	if m.Type == 'P' || m.Type == 'B' {
		if frame := s.heldLimit(m.Type, body); frame != nil {
			// The server fails the substitute and skips the batch, as
			// after any error; the client gets the limit's error.
			typ, sub := byte('B'), renameStmt('B', body, substituteStmt)
			if m.Type == 'P' {
				typ, sub = substitute('P', body)
			}
			if _, err := s.trk.Send(typ, sub, false, &refusedMeta{frame: frame}, 0); err != nil {
				return err
			}
			_, err := s.uw.Write(wire.Frame(typ, sub))
			return err
		}
	}
	switch m.Type {
	case 'Q', 'P', 'F':
		v := s.screen(m)
		switch {
		case v.fatal != nil:
			return v.fatal
		case v.skipped && m.Type == 'Q':
			// The server was skipping the client's failed batch: it would
			// have ignored this query, so nothing is sent and nothing is
			// answered.
			return nil
		case v.refusal != nil && v.serverError && m.Type == 'P':
			// The server failed the check of this statement with its own
			// error, already relayed in its place; the server now skips
			// the batch, this Parse included.
		case v.refusal != nil:
			// The server fails the substitute, aborts the transaction and
			// skips the rest of the batch, as the client expects after
			// an error; the refused text never reaches it.
			typ, sub := substitute(m.Type, body)
			if _, err := s.trk.Send(typ, sub, false, &refusedMeta{frame: v.refusal}, 0); err != nil {
				return err
			}
			_, err := s.uw.Write(wire.Frame(typ, sub))
			return err
		}
		if v.send != "" {
			// The digest ordering: the statement as analysed and checked.
			body, replaced = replaceSQL(m.Type, body, v.send), true
		}
		stmts := v.stmts
		effects = statementEffects(stmts)
		switch m.Type {
		case 'Q':
			// A simple query destroys the unnamed statement.
			delete(s.drillNames, "")
			q := &queryMeta{stmts: stmts, pathAfter: v.pathAfter, results: v.results, next: received}
			if err := s.probeCopies(q); err != nil {
				return err
			}
			meta = q
		case 'P':
			sm := &stmtMeta{pathAfter: v.pathAfter, shadow: v.shadow}
			if len(v.results) == 1 {
				sm.result = v.results[0]
			}
			if _, role := s.currentPolicy(); role.Restricted() {
				// The client's own Parse: body may be the rewritten one.
				sm.parse, sm.state = bytes.Clone(m.Body()), s.checkState()
				if sm.sent, _ = protocol.QueryText('P', m.Body()); v.send != "" {
					sm.sent = v.send
				}
				if name, _, err := protocol.MessageName('P', m.Body()); err == nil {
					renamed, err := s.drillParse(name, sm)
					if err != nil {
						return err
					}
					if renamed != "" {
						body, replaced = renameStmt('P', body, renamed), true
					}
				}
			}
			if len(stmts) == 1 {
				sm.audited = auditedOnly(stmts[0])
			}
			if sm.pathAfter != nil {
				s.sqlMu.Lock()
				s.sql.pathStmts = true
				s.sqlMu.Unlock()
			}
			meta = sm
		}
	case 'C', 'D':
		if len(body) > 1 && body[0] == 'S' {
			name, _, _ := bytes.Cut(body[1:], []byte{0})
			if sqlinfo.ReservedName(string(name)) && s.restricted() {
				// The proxy's own statements are not the client's to use.
				body, replaced = renameStmt(m.Type, body, substituteStmt), true
				break
			}
			if server, ok := s.drillNames[string(name)]; ok {
				// The client's name for a statement the proxy keeps under
				// its own (drillParse).
				body, replaced = renameStmt(m.Type, body, server), true
				if m.Type == 'C' {
					delete(s.drillNames, string(name))
				}
			}
		}
	case 'B':
		if _, name, err := protocol.MessageName('B', body); err == nil {
			if server, ok := s.drillNames[name]; ok {
				if known, _ := s.trk.Statements(server); known {
					body, replaced = renameStmt('B', body, server), true
				} else {
					// The client's DEALLOCATE or DISCARD ALL dropped it:
					// the Bind goes out under the client's name, which the
					// server fails as it would without the proxy, and is
					// not decoded.
					delete(s.drillNames, name)
				}
			} else if sqlinfo.ReservedName(name) && s.restricted() {
				body, replaced = renameStmt('B', body, substituteStmt), true
			}
		}
		frame, again, err := s.recheckBind(body)
		if err != nil {
			return err
		}
		if again != nil {
			if err := again.send(s); err != nil {
				return err
			}
			if strings.HasPrefix(again.name, drillStmtPrefix) {
				s.parsed[again.name] = again.meta // (made by drillParse)
			}
		}
		if frame != nil {
			// The server fails a Bind of a statement that does not exist,
			// and skips the rest of the batch; the client gets the refusal.
			sub := renameStmt('B', body, substituteStmt)
			if _, err := s.trk.Send('B', sub, false, &refusedMeta{frame: frame}, 0); err != nil {
				return err
			}
			_, err := s.uw.Write(wire.Frame('B', sub))
			return err
		}
		if body, err = s.decodeDrillParams(body); err != nil {
			return err
		}
		replaced = true
	case 'E':
		em := &execMeta{sent: time.Now()}
		s.sqlMu.Lock()
		em.mayChangePath = s.sql.pathStmts
		s.sqlMu.Unlock()
		meta = em
	}
	sent, err := s.trk.Send(m.Type, body, false, meta, effects)
	if err != nil {
		return err
	}
	switch mt := meta.(type) {
	case *execMeta:
		// An Execute the server will skip changes nothing, and gets no
		// answer before the Sync the proxy may still be holding back.
		mt.mayChangePath = mt.mayChangePath && !sent.WillSkip
		s.sqlMu.Lock()
		s.sql.sent(sent.Req, mt.mayChangePath)
		s.sqlMu.Unlock()
	case *queryMeta:
		s.sqlMu.Lock()
		s.sql.sent(sent.Req, mt.pathAfter != nil)
		s.sqlMu.Unlock()
	case nil:
		if m.Type == 'S' {
			s.sqlMu.Lock()
			s.sql.sent(sent.Req, false)
			s.sqlMu.Unlock()
		}
	}
	if sent.Before != nil {
		if _, err := s.uw.Write(sent.Before); err != nil {
			return err
		}
	}
	if replaced {
		_, err = s.uw.Write(wire.Frame(m.Type, body))
	} else {
		_, err = s.uw.Write(m.Raw)
	}
	if err != nil {
		return err
	}
	if em, ok := meta.(*execMeta); ok && em.mayChangePath {
		// The next statement is analysed once this one has answered: make
		// the server answer now, whatever the client sends next.
		_, err = s.uw.Write(flushFrame)
	}
	return err
}

// flushFrame asks the server to send what it has.
var flushFrame = []byte{'H', 0, 0, 0, 4}

// replaceSQL returns a Query's or Parse's body with other SQL text.
func replaceSQL(typ byte, body []byte, sql string) []byte {
	if typ == 'Q' {
		return append([]byte(sql), 0)
	}
	name, rest, _ := bytes.Cut(body, []byte{0})
	_, types, _ := bytes.Cut(rest, []byte{0})
	out := append(append([]byte{}, name...), 0)
	out = append(append(out, sql...), 0)
	return append(out, types...)
}

// probeCopies learns, in the session and before the query runs, the
// columns of each COPY … TO STDOUT of a simple query (COPY's own reply
// carries no column descriptions). The probe runs on the unnamed
// statement, which the simple query destroys anyway; when the server is
// skipping the batch it would ignore the query too, so nothing is probed.
func (s *session) probeCopies(q *queryMeta) error {
	if s.trk.Skipping() {
		return nil
	}
	for i, st := range q.stmts {
		if st.Copy == nil {
			continue
		}
		cs := &copyState{info: st.Copy}
		if i < len(q.results) {
			cs.result = q.results[i]
		}
		if q.copies == nil {
			q.copies = map[int]*copyState{}
		}
		q.copies[i] = cs
		probe := appendProbe(nil, st.Copy.ProbeQuery())
		for rest := probe; len(rest) > 0; {
			n := 1 + int(binary.BigEndian.Uint32(rest[1:5]))
			if _, err := s.trk.Send(rest[0], rest[5:n], true, &copyProbe{cs: cs}, 0); err != nil {
				return err
			}
			rest = rest[n:]
		}
		if _, err := s.uw.Write(probe); err != nil {
			return err
		}
	}
	return nil
}

// statementEffects says what statements of a query may do to prepared
// statements and portals outside the protocol messages.
func statementEffects(stmts []sqlinfo.Statement) protocol.Effects {
	var e protocol.Effects
	for _, st := range stmts {
		switch st.Kind {
		case "Deallocate", "Prepare", "Discard":
			e |= protocol.EffectStatements | protocol.EffectPortals
		case "DeclareCursor", "ClosePortal", "Transaction":
			e |= protocol.EffectPortals
		}
	}
	return e
}

// upstreamToClient forwards upstream messages. It returns why it stopped.
func (s *session) upstreamToClient(busy *flight, out *atomic.Int64) string {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	var buf []byte
	fatalSeen := false // the server said why it ends the session
	for {
		var (
			m   wire.Msg
			err error
		)
		if s.ur.Pending() {
			m, err = s.ur.Next()
		} else {
			if err := s.cw.Flush(); err != nil {
				return s.readEnd("client", err)
			}
			// Let the other direction speak to the client (idle timeout)
			// while this one waits on the network.
			s.cwMu.Unlock()
			m, err = s.ur.Next()
			s.cwMu.Lock()
		}
		if err != nil {
			if s.parking.Load() {
				return reasonParking // stopped reading on purpose
			}
			if !fatalSeen && !s.terminated.Load() && upstreamLost(err) {
				// A crash or a killed backend: tell the client, as libpq
				// would, instead of closing without a word.
				s.log.Warn("the database closed the connection unexpectedly", zap.Error(err))
				s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = s.cw.Write(fatal(codeConnectionFailure, "pgpseudo: the database closed the connection unexpectedly"))
				_ = s.cw.Flush()
			}
			return s.readEnd("upstream", err)
		}
		switch m.Type {
		case 'E':
			fatalSeen = fatalError(m.Body())
		case 'S':
			s.upParams = setParam(s.upParams, m.Body())
		}
		if s.trk != nil {
			buf = buf[:0]
			handle := s.restrictedBackend
			if typ, ok := s.ur.PendingType(); ok && m.Type == 'D' && typ == 'D' {
				handle = s.restrictedRows
			}
			if err := handle(m, &buf); err != nil {
				var ce *clientError
				var ure *upstreamReadError
				if errors.As(err, &ure) {
					return s.readEnd("upstream", ure.err)
				}
				if errors.As(err, &ce) {
					s.log.Warn("session ended by the policy", zap.Error(err))
					_, _ = s.cw.Write(fatal(ce.Code, ce.Msg))
					_ = s.cw.Flush()
					return "policy"
				}
				s.log.Error("result cannot be rewritten safely; session closed", zap.Error(err))
				_, _ = s.cw.Write(fatal(codeInternalError, "pgpseudo: "+err.Error()))
				_ = s.cw.Flush()
				return "rewrite failure"
			}
			out.Add(int64(len(buf)))
			if _, err := s.cw.Write(buf); err != nil {
				return s.readEnd("client", err)
			}
			if cap(buf) > 1<<20 {
				buf = nil
			}
			continue
		}
		if err := s.forwardToClient(m, busy, out); err != nil {
			return s.readEnd("client", err)
		}
	}
}

func (s *session) forwardToClient(m wire.Msg, busy *flight, out *atomic.Int64) error {
	busy.received(m.Type)
	out.Add(int64(len(m.Raw)))
	_, err := s.cw.Write(m.Raw)
	return err
}

// writeClientLocked sends a frame to the client from outside the
// upstream-to-client loop.
func (s *session) writeClientLocked(frame []byte) {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	_, _ = s.cw.Write(frame)
	_ = s.cw.Flush()
}

// readEnd turns a read or write error into an end reason, logging the
// unexpected ones (bad input from either side).
func (s *session) readEnd(side string, err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return side + " closed"
	case errors.Is(err, wire.ErrMessageTooLarge), errors.Is(err, wire.ErrBadLength), errors.Is(err, wire.ErrUnknownType):
		s.log.Warn("protocol violation; session closed", zap.String("side", side), zap.Error(err))
		if side == "client" {
			s.writeClientProtocolError(err)
		}
		return side + " protocol violation"
	}
	s.log.Info("connection error", zap.String("side", side), zap.Error(err))
	return side + " error"
}

func (s *session) writeClientProtocolError(err error) {
	s.writeClientFatal(codeProtocolViolation, "invalid message: "+err.Error())
}

// writeClientFatal tells the client why the session ends. Called from the
// client reader; the writer lock may be held by the other direction,
// which is being torn down, so do not wait forever.
func (s *session) writeClientFatal(code, msg string) {
	s.client.SetWriteDeadline(time.Now().Add(time.Second))
	if s.cwMu.TryLock() {
		defer s.cwMu.Unlock()
		_, _ = s.cw.Write(fatal(code, msg))
		_ = s.cw.Flush()
	}
}

// upstreamLost reports whether a read error means the database went away
// (end of stream, reset), rather than the proxy closing the connection
// itself or the server breaking the protocol.
func upstreamLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
