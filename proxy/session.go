package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/auth"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/screen"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

var timeZero time.Time

// Identity is who a session belongs to, as established by pgpseudo.
type Identity struct {
	User            string
	Database        string
	ApplicationName string
	ClientAddr      string
	TLSVersion      string
}

// session is one client connection and its upstream connection.
type session struct {
	srv       *Server
	client    net.Conn
	log       *zap.Logger
	overLimit bool
	connID    uint64

	cr *wire.Reader
	cw *wire.Writer
	// cwMu guards cw once the relay runs: the upstream-to-client loop
	// owns it, but the proxy may also speak to the client.
	cwMu sync.Mutex
	up   net.Conn
	ur   *wire.Reader
	uw   *wire.Writer

	// ctx ends with the session (or the server's shutdown).
	ctx    context.Context
	cancel context.CancelFunc

	id Identity
	// Policy state; trk is nil when no policy is configured.
	trk *protocol.Tracker
	// Owned by the upstream-to-client goroutine: rows sent, and the COPY
	// being rewritten (copy), withheld (copyBlocked: why) or passed
	// through unchanged for a role that sees everything (copyRaw).
	rows        uint64
	copy        *copyState
	copyBlocked string
	copyRaw     bool
	// lastPlan is the last result plan built (also owned by the
	// upstream-to-client goroutine). styleUnsure (owned likewise): a
	// command that may change DateStyle completed since the last
	// ReadyForQuery, so the DateStyle rows follow is not reported yet.
	lastPlan    planMemo
	styleUnsure bool
	// runBufs holds the buffers for rewriting rows over the cores (owned by
	// the upstream-to-client goroutine).
	runBufs rowRun
	// roleMu guards role and policyGen (policyNow), shadowRole and
	// shadowGen (shadowNow).
	roleMu     sync.Mutex
	role       *policy.Role
	policyGen  uint64
	shadowRole *policy.Role
	shadowGen  uint64
	memberOf   []string
	// sqlMu guards sql, shared by both relay directions.
	sqlMu sync.Mutex
	sql   sqlSession
	// keywords is the server's keyword list (restricted roles).
	keywords sqlinfo.Keywords
	// drillNames map the client's names of statements with drill-down
	// parameters to the names the proxy prepares them under, and parsed
	// are those statements by the proxy's name (both owned by the
	// client-to-upstream goroutine; see drillParse).
	drillNames map[string]string
	parsed     map[string]*stmtMeta

	key   cancelKey
	upKey upstreamKey // the server's own key of the session
	// terminated: the client sent Terminate (the server's close follows).
	terminated atomic.Bool
	// reuseKey is the login's key for upstream reuse (upstream.reuse;
	// "" when its session may not be kept); reused: the session was
	// taken from the kept ones. upParams are the ParameterStatus values
	// the server last reported (owned by the upstream-to-client
	// goroutine once the relay runs).
	reuseKey string
	reused   bool
	parking  atomic.Bool // the relay stops to keep the session
	upParams []wire.Param
	hasKey   bool
	started  time.Time
}

// clientError is an error the client is told about in an ErrorResponse
// (the login's error type serves the whole session).
type clientError = auth.Error

func refuse(code, msg string, err error) error { return &clientError{Code: code, Msg: msg, Err: err} }

func (s *session) run() {
	s.ctx, s.cancel = context.WithCancel(s.srv.baseCtx)
	defer s.cancel()
	s.started = time.Now()
	s.client.SetDeadline(s.started.Add(s.srv.cfg.Limits.StartupTimeout))
	st, err := s.startup()
	if err != nil {
		s.fail("startup", err)
		return
	}
	if st == nil { // cancel request handled, or an orderly close
		return
	}
	loginStart := time.Now()
	if err := s.login(st); err != nil {
		s.auditAuthFailure(err)
		s.refusedLogin(err)
		s.fail("login", err)
		// Refusals after the upstream login (no policy role, a locked
		// setting, the lexing check) must not leave its backend open.
		if s.up != nil {
			s.up.Close()
		}
		if s.hasKey {
			s.srv.cancels.forget(s.key)
		}
		return
	}
	s.srv.metrics.observe(stageLogin, loginStart)
	role := s.metricsRole()
	s.srv.metrics.sessions.WithLabelValues(role).Inc()
	s.srv.metrics.sessionsOpen.WithLabelValues(role).Inc()
	defer s.srv.metrics.sessionsOpen.WithLabelValues(role).Dec()
	s.client.SetDeadline(timeZero)
	parked := false
	defer func() {
		if !parked {
			s.up.Close()
		}
	}()
	if s.hasKey {
		defer s.srv.cancels.forget(s.key)
	}
	// (s.log names the user and role since the login.)
	s.log.Info("session started", zap.String("database", s.id.Database),
		zap.String("application_name", s.id.ApplicationName), zap.String("tls", s.id.TLSVersion),
		zap.Bool("upstream_reused", s.reused))
	_ = s.srv.auditWrite(audit.ConnectionStart{Session: s.auditSession(), ClientAddr: s.clientAddrPort(),
		ApplicationName: audit.FitName(s.id.ApplicationName), TLSVersion: s.id.TLSVersion, AuthMethod: s.authMethod()})
	st2 := s.relay()
	if st2.reason == reasonParking {
		parked = s.park()
	}
	if st2.busy && s.hasKey && strings.HasPrefix(st2.reason, "client") {
		// The client left while its statement ran: a statement that
		// writes nothing (a long sort, pg_sleep) would not notice the
		// closed connection, so cancel it.
		s.srv.cancelUpstream(s.upKey, s.log)
	}
	_ = s.srv.auditWrite(audit.ConnectionEnd{Session: s.auditSession(), Duration: time.Since(s.started),
		Statements: uint64(st2.stmts), Bytes: uint64(st2.bytesOut), Rows: st2.rows})
	s.log.Info("session ended", zap.Duration("duration", time.Since(s.started)),
		zap.Int64("statements", st2.stmts), zap.Int64("bytes_out", st2.bytesOut), zap.String("reason", st2.reason))
}

// fail reports err to the client when it is meant for it, and logs it.
func (s *session) fail(stage string, err error) {
	var ce *clientError
	if errors.As(err, &ce) {
		s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = s.client.Write(fatal(ce.Code, ce.Msg))
		lingerClose(s.client)
	}
	if errors.Is(err, io.EOF) {
		s.log.Info("client closed the connection during "+stage, zap.String("user", s.id.User))
		return
	}
	s.log.Warn(stage+" failed", zap.String("user", s.id.User), zap.Error(err))
}

// startup handles the first packets: TLS and GSS negotiation, cancel
// requests and the StartupMessage. It returns nil for a handled cancel.
func (s *session) startup() (*wire.Startup, error) {
	sslDone, gssDone := false, false
	conn := s.client
	for {
		body, err := s.readFirstPacket(conn, !sslDone && !gssDone)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, refuse(codeProtocolViolation, "invalid startup packet", err)
		}
		if body == nil { // direct TLS: the handshake is already done
			sslDone = true
			conn = s.client
			continue
		}
		st, err := wire.ParseStartup(body)
		if err != nil {
			return nil, refuse(codeProtocolViolation, strings.TrimPrefix(err.Error(), wire.ErrBadStartup.Error()+": "), err)
		}
		switch st.Kind {
		case wire.KindSSLRequest:
			if sslDone {
				return nil, refuse(codeProtocolViolation, "duplicate SSL negotiation request", nil)
			}
			sslDone = true
			if s.srv.clientTLS == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			// The SSLRequest was read from the raw socket without read-ahead,
			// so any plaintext bytes a man in the middle appended go to the
			// TLS handshake and fail it (CVE-2021-23214).
			if err := s.startTLS(conn); err != nil {
				return nil, err
			}
			conn = s.client
		case wire.KindGSSENCRequest:
			if gssDone {
				return nil, refuse(codeProtocolViolation, "duplicate GSSAPI negotiation request", nil)
			}
			gssDone = true
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case wire.KindCancel:
			s.srv.handleCancel(st, s.log)
			return nil, nil
		case wire.KindStartup:
			return st, nil
		}
	}
}

// readFirstPacket reads a startup packet; when TLS may still start it also
// accepts a direct TLS ClientHello (PostgreSQL 17 sslnegotiation=direct),
// which it answers by completing the handshake and returning nil.
func (s *session) readFirstPacket(conn net.Conn, tlsAllowed bool) ([]byte, error) {
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, err
	}
	if first[0] == 0x16 && tlsAllowed && s.srv.clientTLS != nil {
		if err := s.startTLS(&prefixConn{Conn: conn, prefix: first[:]}); err != nil {
			return nil, err
		}
		if tc := s.client.(*tls.Conn); tc.ConnectionState().NegotiatedProtocol != "postgresql" {
			return nil, refuse(codeProtocolViolation, "direct TLS connection without ALPN postgresql", nil)
		}
		return nil, nil
	}
	return wire.ReadStartupPacket(io.MultiReader(strings.NewReader(string(first[:])), conn))
}

func (s *session) startTLS(conn net.Conn) error {
	tc := tls.Server(conn, s.srv.clientTLS)
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return fmt.Errorf("client TLS handshake: %w", err)
	}
	s.client = tc
	s.id.TLSVersion = tls.VersionName(tc.ConnectionState().Version)
	return nil
}

// prefixConn returns prefix before reading from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// login checks the startup parameters, authenticates the client and opens
// the upstream session.
func (s *session) login(st *wire.Startup) error {
	s.cr = wire.NewReader(s.client, wire.FrontendLimits)
	s.cw = wire.NewWriter(s.client)
	s.id.User, _ = st.Get("user")
	s.id.Database, _ = st.Get("database")
	if s.id.Database == "" {
		s.id.Database = s.id.User
	}
	s.id.ApplicationName, _ = st.Get("application_name")
	s.id.ClientAddr = s.client.RemoteAddr().String()
	s.log = s.log.With(zap.String("user", s.id.User))

	if s.srv.clientTLS != nil && s.id.TLSVersion == "" {
		return refuse(codeInvalidAuthSpec, "pgpseudo requires TLS; connect with sslmode=require or stronger", nil)
	}
	if s.overLimit {
		return refuse(codeTooManyConnections, "sorry, too many clients already", nil)
	}
	if s.srv.isClosing() {
		return refuse(codeCannotConnectNow, "pgpseudo is shutting down", nil)
	}
	if v, ok := st.Get("replication"); ok && v != "false" && v != "0" && v != "off" && v != "no" {
		return refuse(codeFeatureNotSupported, "pgpseudo does not allow replication connections", nil)
	}
	// Each leg negotiates its own protocol version: upstream is always 3.0.
	if opts := st.UnsupportedOptions(); st.Minor > 0 || len(opts) > 0 {
		b, _ := (&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: opts}).Encode(nil)
		if _, err := s.cw.Write(b); err != nil {
			return err
		}
	}
	params := make([]wire.Param, 0, len(st.Params)+1)
	for _, p := range st.Params {
		if strings.HasPrefix(p.Key, "_pq_.") || p.Key == "database" {
			continue
		}
		params = append(params, p)
	}
	params = append(params, wire.Param{Key: "database", Value: s.id.Database})

	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.Limits.StartupTimeout)
	defer cancel()
	if err := s.srv.auth.Login(ctx, authSession{s}, params); err != nil {
		return err
	}
	if err := s.resolveRole(ctx); err != nil {
		return err
	}
	if s.srv.policy != nil {
		if _, role := s.currentPolicy(); role.Restricted() {
			if why := screen.LockedStartup(params); why != "" {
				return refuse(codeInsufficientPriv, "pgpseudo: "+why+"; role "+role.Name+
					" may not log in with it (rule: restricted roles may not set locked settings)", nil)
			}
		}
	}
	if err := s.finishStartup(); err != nil {
		return err
	}
	if s.srv.policy != nil {
		if _, role := s.currentPolicy(); role.Restricted() {
			why, err := s.lockedClientSetting()
			if err != nil {
				return refuse(codeConnectionFailure, "pgpseudo could not read the session's settings", err)
			}
			if why != "" {
				return refuse(codeInsufficientPriv, "pgpseudo: "+why+"; role "+role.Name+
					" may not log in with it (rule: restricted roles may not set locked settings)", nil)
			}
		}
	}
	if s.trk != nil && s.srv.verdicts != nil {
		if err := s.loadSearchPath(); err != nil {
			return refuse(codeConnectionFailure, "pgpseudo could not read the session's search_path", err)
		}
		if _, role := s.currentPolicy(); role.Restricted() {
			kw, err := s.srv.catalog.Keywords(ctx, s.id.Database, s.trk.Param("server_version"))
			if err != nil {
				return refuse(codeConnectionFailure, "pgpseudo could not read the server's keyword list", err)
			}
			s.keywords = kw
		}
	}
	return nil
}

// resolveRole picks the session's policy role from the authenticated
// identity; no match refuses the login.
func (s *session) resolveRole(ctx context.Context) error {
	if s.srv.policy == nil {
		return nil
	}
	pol := s.srv.policy.cur.Load().pol
	if pol.NeedsMembership() {
		m, err := s.srv.lookup.Memberships(ctx, s.id.User)
		if err != nil {
			return refuse(codeConnectionFailure, "pgpseudo cannot look up role memberships", err)
		}
		s.memberOf = m
	}
	_, role := s.currentPolicy()
	if role == noRole {
		return refuse(codeInvalidAuthSpec, fmt.Sprintf("pgpseudo: no policy role matches user %q", s.id.User), policy.ErrNoRole)
	}
	if role.Restricted() {
		// Keys are needed before the first row: refuse now, clearly.
		if _, err := s.srv.keyset(ctx); err != nil && s.srv.keys != nil {
			return refuse(codeCannotConnectNow, "pgpseudo: restricted sessions are refused: "+err.Error(), err)
		}
	}
	s.shadowLogin(role)
	s.trk = protocol.New()
	s.log = s.log.With(zap.String("role", role.Name))
	return nil
}

// openUpstream dials the database and sends the startup packet.
func (s *session) openUpstream(ctx context.Context, params []wire.Param) error {
	up, err := s.srv.dialUpstream(ctx)
	if err != nil {
		s.srv.metrics.upstreamFails.Inc()
		return refuse(codeConnectionFailure, "pgpseudo cannot reach the database", err)
	}
	s.up = up
	if dl, ok := ctx.Deadline(); ok {
		up.SetDeadline(dl)
	}
	s.ur = wire.NewReader(up, wire.BackendLimits)
	s.uw = wire.NewWriter(up)
	if s.srv.reuse != nil { // (only with SCRAM: the proxy checks each client itself)
		s.reuseKey = reuseKey(params)
	}
	if _, err := s.uw.Write(wire.AppendStartupMessage(nil, params)); err != nil {
		return err
	}
	return s.uw.Flush()
}

// finishStartup relays the upstream's ParameterStatus and notices, swaps
// BackendKeyData for a key of pgpseudo's own, and ends at ReadyForQuery.
func (s *session) finishStartup() error {
	for {
		m, err := s.ur.Next()
		if err != nil {
			return fmt.Errorf("upstream startup: %w", err)
		}
		switch m.Type {
		case 'K':
			var k pgproto3.BackendKeyData
			if err := k.Decode(m.Body()); err != nil {
				return fmt.Errorf("upstream BackendKeyData: %w", err)
			}
			s.upKey = upstreamKey{pid: k.ProcessID, secret: k.SecretKey}
			s.key = s.srv.cancels.issue(s.upKey)
			s.hasKey = true
			b, _ := (&pgproto3.BackendKeyData{ProcessID: s.key.pid, SecretKey: s.key.secret[:]}).Encode(nil)
			if _, err := s.cw.Write(b); err != nil {
				return err
			}
		case 'E':
			_, _ = s.cw.Write(m.Raw)
			_ = s.cw.Flush()
			return fmt.Errorf("upstream refused the session: %s", errorMessage(m.Body()))
		case 'Z':
			if s.trk != nil {
				if _, role := s.currentPolicy(); role.Restricted() {
					if why := s.lexingUnsafe(); why != "" {
						return lexingRefusal(role.Name, why)
					}
				}
			}
			if _, err := s.cw.Write(m.Raw); err != nil {
				return err
			}
			s.up.SetDeadline(timeZero)
			return s.cw.Flush()
		default: // ParameterStatus, NoticeResponse, NegotiateProtocolVersion
			if m.Type == 'S' {
				s.upParams = setParam(s.upParams, m.Body())
				if s.trk != nil {
					var ps pgproto3.ParameterStatus
					if err := ps.Decode(m.Body()); err == nil {
						s.trk.SetParam(ps.Name, ps.Value)
					}
				}
			}
			if _, err := s.cw.Write(m.Raw); err != nil {
				return err
			}
		}
	}
}

// errorMessage extracts the message field of an ErrorResponse body for logs.
func errorMessage(body []byte) string {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return "malformed ErrorResponse"
	}
	return e.Code + " " + e.Message
}

// lingerClose half-closes conn and discards what the client still sends
// for a moment, so the error just written is not lost to a TCP reset
// caused by unread input.
func lingerClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, conn, 1<<20)
}
