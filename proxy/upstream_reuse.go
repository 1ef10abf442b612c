package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// Upstream session reuse (upstream.reuse): a client that connects for
// each statement (pgbench -C, BI tools that reconnect per query) pays the
// database's backend start and a second TLS and SCRAM exchange each time.
// With reuse on, a session whose client ends it at rest (Terminate,
// nothing in flight, no transaction) is reset with DISCARD ALL and kept,
// and the next login of the same user, to the same database with the same
// startup parameters, takes it after the proxy has checked that client's
// own SCRAM proof. Sessions are never shared across users, nor kept after
// anything unusual (an error, a message left unread, a failed reset). The
// next client sees the ParameterStatus the server last reported and the
// server's own cancel key (behind a key of the proxy's).

// parkedSession is an idle upstream session waiting for its next client.
type parkedSession struct {
	conn net.Conn
	// ur and uw are the session's framing over conn, handed on so that a
	// reuse allocates no new buffers (a login per transaction made them a
	// large part of the proxy's garbage).
	ur     *wire.Reader
	uw     *wire.Writer
	params []wire.Param
	key    upstreamKey
	since  time.Time
}

// upstreamPool holds parked sessions by reuse key (user, database and
// every startup parameter), newest last. Nothing blocks under its lock:
// connections are closed after it is released.
type upstreamPool struct {
	max  int
	idle time.Duration

	mu     sync.Mutex
	closed bool
	n      int
	byKey  map[string][]*parkedSession
}

func newUpstreamPool(max int, idle time.Duration) *upstreamPool {
	return &upstreamPool{max: max, idle: idle, byKey: map[string][]*parkedSession{}}
}

// reuseKey identifies the sessions a login may take: the startup
// parameters it would send upstream (user and database among them), in a
// fixed order.
func reuseKey(params []wire.Param) string {
	kv := make([]string, len(params))
	for i, p := range params {
		kv[i] = p.Key + "\x00" + p.Value
	}
	slices.Sort(kv)
	return strings.Join(kv, "\x01")
}

// take returns the newest parked session for key that has not idled out,
// or nil.
func (p *upstreamPool) take(key string) *parkedSession {
	var stale []*parkedSession
	defer func() {
		for _, ps := range stale {
			ps.conn.Close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.byKey[key]
	now := time.Now()
	for len(list) > 0 {
		ps := list[len(list)-1]
		list = list[:len(list)-1]
		p.n--
		if now.Sub(ps.since) <= p.idle {
			p.store(key, list)
			return ps
		}
		stale = append(stale, ps)
	}
	p.store(key, list)
	return nil
}

func (p *upstreamPool) store(key string, list []*parkedSession) {
	if len(list) == 0 {
		delete(p.byKey, key)
	} else {
		p.byKey[key] = list
	}
}

// put parks ps, or reports false when the pool is full or closed (the
// caller closes it).
func (p *upstreamPool) put(key string, ps *parkedSession) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.n >= p.max {
		return false
	}
	p.byKey[key] = append(p.byKey[key], ps)
	p.n++
	return true
}

// expire closes the sessions that idled out (called periodically).
func (p *upstreamPool) expire() {
	var stale []*parkedSession
	p.mu.Lock()
	now := time.Now()
	for key, list := range p.byKey {
		keep := list[:0]
		for _, ps := range list {
			if now.Sub(ps.since) > p.idle {
				stale = append(stale, ps)
				p.n--
			} else {
				keep = append(keep, ps)
			}
		}
		p.store(key, keep)
	}
	p.mu.Unlock()
	for _, ps := range stale {
		ps.conn.Close()
	}
}

// close ends every parked session and parks no more.
func (p *upstreamPool) close() {
	p.mu.Lock()
	p.closed = true
	all := p.byKey
	p.byKey, p.n = map[string][]*parkedSession{}, 0
	p.mu.Unlock()
	for _, list := range all {
		for _, ps := range list {
			ps.conn.Close()
		}
	}
}

// reuseUpstream takes a parked session for the login's parameters: the
// session then reads, as from a new one, the ParameterStatus messages, the
// server's BackendKeyData and ReadyForQuery, followed by the connection.
func (s *session) reuseUpstream(params []wire.Param) bool {
	if s.srv.reuse == nil {
		return false
	}
	key := reuseKey(params)
	var ps *parkedSession
	for {
		if ps = s.srv.reuse.take(key); ps == nil {
			return false
		}
		if quiet(ps.conn) {
			break
		}
		// The server closed it or sent something while it waited (a
		// shutdown, a notification): not reusable.
		ps.conn.Close()
		s.srv.metrics.upstreamReuse.WithLabelValues("discarded").Inc()
	}
	var replay []byte
	for _, p := range ps.params {
		replay, _ = (&pgproto3.ParameterStatus{Name: p.Key, Value: p.Value}).Encode(replay)
	}
	replay, _ = (&pgproto3.BackendKeyData{ProcessID: ps.key.pid, SecretKey: ps.key.secret}).Encode(replay)
	replay, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(replay)
	s.up, s.reuseKey, s.reused = ps.conn, key, true
	ps.ur.Reset(io.MultiReader(bytes.NewReader(replay), ps.conn))
	s.ur, s.uw = ps.ur, ps.uw
	s.srv.metrics.upstreamReuse.WithLabelValues("reused").Inc()
	return true
}

// quiet reports whether nothing has arrived on an idle connection and it
// is still open: a peek at the socket that does not wait.
func quiet(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return alive
}

// mayPark reports whether the session may be kept for reuse once its
// client terminates now (the upstream reader is checked after the relay
// ends: it belongs to the other goroutine until then).
func (s *session) mayPark() bool {
	return s.srv.reuse != nil && s.reuseKey != "" && s.trk != nil && s.trk.BetweenBatches()
}

// park resets the upstream session with DISCARD ALL and keeps it; false
// when it cannot be kept (the caller closes it).
func (s *session) park() bool {
	ps, err := s.discardAll()
	if err != nil {
		s.log.Info("upstream session not kept for reuse", zap.Error(err))
		s.srv.metrics.upstreamReuse.WithLabelValues("discarded").Inc()
		return false
	}
	if !s.srv.reuse.put(s.reuseKey, ps) {
		s.srv.metrics.upstreamReuse.WithLabelValues("discarded").Inc()
		return false
	}
	s.srv.metrics.upstreamReuse.WithLabelValues("parked").Inc()
	return true
}

// parkTimeout bounds the reset of a session being parked.
const parkTimeout = 5 * time.Second

// discardAll resets the session: DISCARD ALL ends cursors, prepared
// statements, temporary tables, advisory locks, LISTENs and every setting
// made since the login, including SET ROLE and SET SESSION AUTHORIZATION.
func (s *session) discardAll() (*parkedSession, error) {
	if s.ur.Buffering() {
		return nil, fmt.Errorf("unread upstream data")
	}
	ctx, cancel := context.WithTimeout(s.srv.baseCtx, parkTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	s.up.SetDeadline(dl)
	// The relay has ended: its reader and writer are this goroutine's,
	// and whatever the writer still held was never sent.
	uw, ur := s.uw, s.ur
	uw.Reset(s.up)
	ur.Reset(s.up)
	q, _ := (&pgproto3.Query{String: "DISCARD ALL"}).Encode(nil)
	check := s.drillSettingsCheck()
	if check != "" {
		q, _ = (&pgproto3.Query{String: check}).Encode(q)
	}
	if _, err := uw.Write(q); err != nil {
		return nil, err
	}
	if err := uw.Flush(); err != nil {
		return nil, err
	}
	params := slices.Clone(s.upParams)
	clean := check == ""
	for checking := false; ; {
		m, err := ur.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case m.Type == 'C' || m.Type == 'N':
		case m.Type == 'S' && !checking:
			params = setParam(params, m.Body())
		case m.Type == 'T' && checking:
		case m.Type == 'D' && checking:
			clean = bytes.Equal(m.Body(), []byte{0, 1, 0, 0, 0, 1, 't'})
		case m.Type == 'Z':
			if b := m.Body(); len(b) != 1 || b[0] != 'I' {
				return nil, fmt.Errorf("not idle after DISCARD ALL")
			}
			if check != "" && !checking {
				checking = true
				continue
			}
			if ur.Buffering() {
				return nil, fmt.Errorf("not idle after DISCARD ALL")
			}
			if !clean {
				return nil, fmt.Errorf("a client set one of pgpseudo's drill-down settings, which a reset does not remove")
			}
			s.up.SetDeadline(timeZero)
			return &parkedSession{conn: s.up, ur: ur, uw: uw, params: params, key: s.upKey, since: time.Now()}, nil
		default:
			return nil, fmt.Errorf("unexpected %q after DISCARD ALL", m.Type)
		}
	}
}

// drillSettingsCheck is the query that tells whether the session has any
// of the settings a restricted role's drill-down values need absent
// (sqlinfo.DrillSetting), "" when the role has none. A client may set
// them; once set, they stay defined until the server session ends.
func (s *session) drillSettingsCheck() string {
	if s.srv.policy == nil {
		return ""
	}
	pol, role := s.currentPolicy()
	if pol == nil || !role.Restricted() {
		return ""
	}
	domains := pol.ReversibleDomains()
	if len(domains) == 0 {
		return ""
	}
	marker := s.srv.DigestKeyFor(role.Name)
	conds := make([]string, len(domains))
	for i, d := range domains {
		// (hex and a fixed prefix: nothing to quote)
		conds[i] = "pg_catalog.current_setting('" + sqlinfo.DrillSetting(marker, d) + "', true) IS NULL"
	}
	return "SELECT " + strings.Join(conds, " AND ")
}

// setParam records a ParameterStatus body in params (in place when the
// parameter is known, else appended).
func setParam(params []wire.Param, body []byte) []wire.Param {
	var ps pgproto3.ParameterStatus
	if err := ps.Decode(body); err != nil {
		return params
	}
	for i := range params {
		if params[i].Key == ps.Name {
			params[i].Value = ps.Value
			return params
		}
	}
	return append(params, wire.Param{Key: ps.Name, Value: ps.Value})
}
