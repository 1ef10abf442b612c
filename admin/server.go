// Package admin serves pgpseudo's operator endpoints on a listener of its
// own: Prometheus metrics, liveness and readiness. It knows nothing of the
// proxy: the caller passes what to gather and what to check.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Check is one readiness condition; Run returns nil when it holds. Run
// must honour ctx: /readyz waits for no check longer than its timeout.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// checkTimeout bounds one /readyz answer.
const checkTimeout = 3 * time.Second

// Server is the admin HTTP server. Its lifecycle is net/http's: Serve,
// then Shutdown.
type Server struct {
	cfg    Config
	log    *zap.Logger
	checks []Check
	// tokenSum is the SHA-256 of the bearer token: requests are compared
	// in constant time against it.
	tokenSum [32]byte
	// timeout bounds one /readyz answer (checkTimeout).
	timeout time.Duration
	http    *http.Server

	// The last readiness result is reused for reuse (readyReuse): the
	// checks reach the database and the key provider, and /readyz
	// answers anyone, so callers cannot multiply that work.
	reuse     time.Duration
	readyMu   sync.Mutex
	readyAt   time.Time
	readyErrs []error
}

// readyReuse is how long one run of the checks answers /readyz.
const readyReuse = time.Second

// runChecks runs every check at once, or returns the result of a run less
// than readyReuse old.
func (s *Server) runChecks() []error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.readyErrs != nil && time.Since(s.readyAt) < s.reuse {
		return s.readyErrs
	}
	// Not the request's context: the result serves other callers too.
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	errs := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Run(ctx)
		}()
	}
	wg.Wait()
	s.readyAt, s.readyErrs = time.Now(), errs
	return errs
}

// New prepares the admin server; it reads the certificate and the token
// now, so a bad file fails at start.
func New(cfg Config, g prometheus.Gatherer, checks []Check, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tok, err := readToken(cfg.TokenFile)
	if err != nil {
		return nil, &ConfigError{"token_file", err.Error()}
	}
	s := &Server{cfg: cfg, log: log, checks: checks, tokenSum: sha256.Sum256([]byte(tok)), timeout: checkTimeout, reuse: readyReuse}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log), ErrorHandling: promhttp.ContinueOnError})
	mux.Handle("GET /metrics", s.authorised(metrics))
	if cfg.Profiling {
		mux.Handle("GET /debug/pprof/", s.authorised(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", s.authorised(http.HandlerFunc(pprof.Profile)))
	}
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout(cfg),
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log),
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, &ConfigError{"cert_file", err.Error()}
		}
		s.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// writeTimeout bounds one answer; a CPU profile takes as long as it was
// asked to run (?seconds=, 30 s by default).
func writeTimeout(cfg Config) time.Duration {
	if cfg.Profiling {
		return 5 * time.Minute
	}
	return 30 * time.Second
}

// Serve serves on ln until Shutdown; it returns http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("admin listener", zap.String("address", ln.Addr().String()), zap.Bool("tls", s.http.TLSConfig != nil))
	if s.http.TLSConfig != nil {
		return s.http.ServeTLS(ln, "", "")
	}
	return s.http.Serve(ln)
}

// Shutdown stops the listener and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// authorised lets a request through only with the bearer token.
func (s *Server) authorised(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hasToken(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pgpseudo"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) hasToken(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(tok))
	return ok && subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// ready answers 200 when every check holds and 503 otherwise, one line
// per check. Why a check fails (addresses, errors) is shown only to a
// request with the token: probes need the status, not the detail.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	errs := s.runChecks()
	detail := s.hasToken(r)
	var b strings.Builder
	status := http.StatusOK
	for i, c := range s.checks {
		switch {
		case errs[i] == nil:
			fmt.Fprintf(&b, "ok %s\n", c.Name)
		case detail:
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "fail %s: %s\n", c.Name, oneLine(errs[i].Error()))
		default:
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "fail %s\n", c.Name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// maxToken bounds the token file.
const maxToken = 4 << 10

// readToken reads the bearer token; the file must be a regular file that
// other users cannot read. The error names the file, never its content.
func readToken(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return "", err
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("%s may be read by other users (mode %04o); run chmod 600", path, fi.Mode().Perm())
	case fi.Size() > maxToken:
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxToken)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxToken))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: %w", path, errNoToken)
	}
	return tok, nil
}

// IsClosed reports whether err is what Serve returns after Shutdown.
func IsClosed(err error) bool { return errors.Is(err, http.ErrServerClosed) }
