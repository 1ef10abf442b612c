package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/lru"
	"github.com/pgpseudo/pgpseudo/proxy/auth"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
	"github.com/pgpseudo/pgpseudo/proxy/scram"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("pgpseudo: server closed")

// Server accepts client connections and runs a session for each. Its
// lifecycle follows net/http.Server: Serve, then Shutdown or Close.
type Server struct {
	cfg       *config.Config
	log       *zap.Logger
	clientTLS *tls.Config
	// serverCB is the channel binding data of the proxy's certificate.
	serverCB    []byte
	upstreamTLS *tls.Config
	auth        auth.Authenticator
	cancels     *cancelRegistry
	// reuse keeps upstream sessions for later logins (nil: off).
	reuse *upstreamPool
	// lookup, catalog, policy and keys are nil without a policy (and
	// lookup also without auth_user).
	lookup  *catalog.Conns
	catalog *catalog.Catalog
	policy  *policyHolder
	// shadow is the candidate policy of policy_shadow (nil without one).
	shadow *policyHolder
	keys   crypto.KeyProvider
	// keyGen counts primary key versions picked up since start, so
	// memoised plans are rebuilt with the new keys.
	keyGen atomic.Uint64
	// keysInUse is the primary key version last recorded in the audit
	// log (0 before the first load), so keys status can tell what a
	// running proxy uses.
	keysInUse atomic.Uint32
	// keysLoadedAt is when the keyset was last loaded (Unix nanoseconds,
	// 0 before the first load), for keys.ready_max_age.
	keysLoadedAt atomic.Int64
	// baseCtx is the parent of every session's context; stopBg ends it
	// with background work when the server closes.
	baseCtx context.Context
	stopBg  context.CancelFunc
	// aud is the access log (nil when off); auditDown is set after a
	// failed write with on_failure: refuse.
	aud       *audit.Writer
	auditDown atomic.Bool
	// auditProbe is when the log was last probed while down (unix ns).
	auditProbe atomic.Int64
	connSeq    atomic.Uint64
	// verdicts caches what both lines decided on restricted roles'
	// statements (nil without a policy).
	verdicts *lru.Cache[verdictKey, *verdict]
	// transformers caches built transformers across column plans.
	transformers *rewrite.Transformers
	// digestKey orders rows grouped on pseudonymised columns (hex); it
	// leaves the process only inside the statements that use it.
	digestKey string
	metrics   *metrics

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closing   bool
	active    atomic.Int64
	wg        sync.WaitGroup
}

// NewServer prepares a server; it loads certificates and credentials so a
// bad file fails now rather than at the first login.
func NewServer(cfg *config.Config, log *zap.Logger) (*Server, error) {
	clientTLS, leaf, err := cfg.ClientTLSConfig()
	if err != nil {
		return nil, err
	}
	var cb []byte // tls-server-end-point channel binding data
	if leaf != nil {
		cb = scram.EndpointHash(leaf)
	}
	upTLS, err := cfg.UpstreamTLSConfig()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		log:          log,
		clientTLS:    clientTLS,
		serverCB:     cb,
		upstreamTLS:  upTLS,
		cancels:      newCancelRegistry(),
		transformers: rewrite.NewTransformers(1024),
		listeners:    map[net.Listener]struct{}{},
		conns:        map[net.Conn]struct{}{},
		metrics:      newMetrics(),
	}
	if cfg.Auth.AuthUser != "" {
		if s.lookup, err = catalog.NewConns(cfg, upTLS); err != nil {
			return nil, err
		}
	}
	switch cfg.Auth.Mode {
	case config.AuthSCRAM:
		a, err := auth.NewSCRAM(cfg, s.lookup, log)
		if err != nil {
			return nil, err
		}
		s.auth = a
	default:
		s.auth = auth.Passthrough{}
	}
	bg, stop := context.WithCancel(context.Background())
	s.baseCtx, s.stopBg = bg, stop
	if r := cfg.Upstream.Reuse; r.MaxIdle > 0 && cfg.Auth.Mode == config.AuthSCRAM {
		s.reuse = newUpstreamPool(r.MaxIdle, r.IdleTimeout)
		go s.expireReuse(bg)
	}
	if cfg.Policy != "" {
		if s.policy, err = newPolicyHolder(cfg.Policy, log); err != nil {
			stop()
			return nil, err
		}
		if s.policy.cur.Load().pol.Tokenizes() && cfg.Keys.Provider == "" {
			stop()
			return nil, errors.New("the policy tokenizes values but no keys are configured: set keys.provider")
		}
		s.catalog = catalog.New(s.lookup.Pool, cfg.Limits.CatalogTTL)
		s.verdicts = lru.New[verdictKey, *verdict](8192, 64<<20, verdictSize)
		var k [16]byte
		if _, err := rand.Read(k[:]); err != nil {
			stop()
			return nil, fmt.Errorf("digest key: %w", err)
		}
		s.digestKey = hex.EncodeToString(k[:])
		go s.policy.watch(bg, 2*time.Second)
		if cfg.PolicyShadow != "" {
			if s.shadow, err = newPolicyHolder(cfg.PolicyShadow, log.With(zap.String("policy", "shadow"))); err != nil {
				stop()
				return nil, fmt.Errorf("policy_shadow: %w", err)
			}
			go s.shadow.watch(bg, 2*time.Second)
		}
	}
	if cfg.Keys.Provider != "" {
		if s.keys, err = crypto.NewProvider(bg, cfg.Keys, log); err != nil {
			stop()
			return nil, err
		}
	}
	if cfg.Audit.Path != "" {
		signer, err := config.NewAuditSigner(cfg.Audit, s.keys)
		if err == nil {
			s.aud, err = audit.New(bg, cfg.Audit, signer, log)
		}
		if err != nil {
			s.closeAuth()
			return nil, fmt.Errorf("audit log: %w", err)
		}
	}
	if s.keys != nil {
		// After the audit log is open: the first load is recorded.
		go s.watchKeys(bg, cfg.Keys.WithDefaults().RefreshInterval)
	}
	if s.policy != nil {
		s.policy.onLoad = s.policyLoaded
		s.policyLoaded(s.policy.cur.Load().pol, false, nil)
	}
	s.metrics.gaugeFuncs(s)
	return s, nil
}

// ListenAndServe listens on the configured address and serves until
// Shutdown or Close.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close; it always
// returns a non-nil error, ErrServerClosed after a shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.log.Info("listening", zap.String("address", ln.Addr().String()))
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("in", backoff))
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go s.handle(c)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Addr returns the address of the first listener, for tests.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		return ln.Addr()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
}

// CatalogChanged tells the proxy that the catalog of database ("": of
// every database) changed outside it, e.g. a migration run directly on
// the database: cached catalog facts and verdicts are dropped now rather
// than after limits.catalog_ttl. SIGHUP does it for every database.
func (s *Server) CatalogChanged(database string) {
	switch {
	case s.catalog == nil:
	case database == "":
		s.catalog.ChangedAll()
	default:
		s.catalog.Changed(database)
	}
}

// DigestKey is the key of the digest ordering, in hex. It must never reach
// a client; tests use it to check that.
func (s *Server) DigestKey() string { return s.digestKey }

// DigestKeyFor is the digest key of one policy role, derived from the
// process's key: users of different roles see the same rows released
// differently (an IBAN masked for one, tokenized for another), and with
// one key the order of rows would link the two releases.
func (s *Server) DigestKeyFor(role string) string {
	m := hmac.New(sha256.New, []byte(s.digestKey))
	m.Write([]byte("pgpseudo digest order\x00" + role))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Shutdown stops accepting connections and waits for open sessions to end
// until ctx is done; then it ends those still open as Close does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.closeAuth()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close ends every session now: each client is told so with FATAL 57P01
// (as PostgreSQL's fast shutdown does) at a message boundary; a session
// that has not ended within closeGrace has its connection closed.
func (s *Server) Close() error {
	s.closeListeners()
	s.stopBg() // cancels every session's context
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.closeAuth()
	return nil
}

// closeGrace is how long Close waits for sessions to tell their clients.
const closeGrace = 2 * time.Second

// closeAuth releases the lookup connections, the audit log and background
// work.
// expireReuse closes kept upstream sessions that idled out, until ctx
// ends; then it closes them all.
func (s *Server) expireReuse(ctx context.Context) {
	t := time.NewTicker(max(s.reuse.idle/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.reuse.close()
			return
		case <-t.C:
			s.reuse.expire()
		}
	}
}

func (s *Server) closeAuth() {
	if s.aud != nil {
		if err := s.aud.Close(); err != nil {
			s.log.Error("closing the audit log", zap.Error(err))
		}
	}
	s.stopBg()
	if s.lookup != nil {
		s.lookup.Close()
	}
	if s.keys != nil {
		_ = s.keys.Close()
	}
}

// handle runs one client connection; a panic ends only this connection.
func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()
	log := s.log.With(zap.String("client", c.RemoteAddr().String()))
	defer func() {
		if r := recover(); r != nil {
			log.Error("connection handler panicked; connection closed", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	n := s.active.Add(1)
	defer s.active.Add(-1)
	sess := &session{srv: s, client: c, log: log, overLimit: n > int64(s.cfg.Limits.MaxConnections), connID: s.connSeq.Add(1)}
	sess.run()
}
