package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/proxy"
)

// runningProxy is an in-process pgpseudo in front of the shared cluster.
type runningProxy struct {
	srv  *proxy.Server
	addr string
	port string
	logs *observer.ObservedLogs
	cfg  *config.Config
}

// proxyConfig is the configuration tests start from: TLS on both legs,
// upstream verified, SCRAM terminated at the proxy.
func proxyConfig() *config.Config {
	s := shared.stack
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = s.PG.Addr()
	cfg.Upstream.TLS = config.UpstreamTLS{Mode: config.TLSVerifyFull, CAFile: s.Certs.CAFile, ServerName: "localhost"}
	cfg.TLS = config.ClientTLS{CertFile: s.Certs.ProxyCertFile, KeyFile: s.Certs.ProxyKey}
	cfg.Auth.AuthUser = s.PG.AuthUser
	cfg.Auth.AuthPasswordFile = shared.authPassFile
	return &cfg
}

// startProxy starts a proxy with cfg (proxyConfig() when nil) and stops it
// when the test ends. Its logs are observed at debug level and checked for
// SQL text when the test ends.
func startProxy(t testing.TB, cfg *config.Config) *runningProxy {
	t.Helper()
	if cfg == nil {
		cfg = proxyConfig()
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	srv, err := proxy.NewServer(cfg, log)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &runningProxy{srv: srv, addr: ln.Addr().String(), port: port, logs: logs, cfg: cfg}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		p.assertNoSQLInLogs(t)
		shared.remember(logs, cfg.Audit.Path)
	})
	return p
}

// sqlMarker appears in test SQL only, so finding it in a log line means
// the proxy logged statement text.
const sqlMarker = "pgpseudo_sql_marker"

func (p *runningProxy) assertNoSQLInLogs(t testing.TB) {
	t.Helper()
	for _, e := range p.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, sqlMarker) || strings.Contains(strings.ToUpper(line), "SELECT ") {
			t.Errorf("process log contains SQL text: %s", line)
		}
	}
}

// dsn is a libpq/pgx connection string to host:port.
func dsn(port, user, password, database string, extra ...string) string {
	s := fmt.Sprintf("host=127.0.0.1 port=%s user=%s password=%s dbname=%s sslmode=require", port, user, password, database)
	for _, e := range extra {
		s += " " + e
	}
	return s
}

func (p *runningProxy) dsn(user, password, database string, extra ...string) string {
	return dsn(p.port, user, password, database, extra...)
}

func directDSN(user, password, database string, extra ...string) string {
	return dsn(fmt.Sprint(shared.stack.PG.Port), user, password, database, extra...)
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	c, _ := connectNoticing(t, dsn)
	return c
}

// connectNoticing is connect that also collects the notices the client
// receives.
func connectNoticing(t testing.TB, dsn string) (*pgx.Conn, *[]*pgconn.Notice) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	notices := &[]*pgconn.Notice{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { *notices = append(*notices, n) }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, notices
}

// binaryConfig is the YAML configuration of a pgpseudo process listening
// on addr in front of the shared stack, followed by extra YAML.
func binaryConfig(addr, extra string) string {
	return binaryConfigReuse(addr, 0, extra)
}

// binaryConfigReuse is binaryConfig keeping up to reuse upstream sessions
// for later logins (upstream.reuse.max_idle).
func binaryConfigReuse(addr string, reuse int, extra string) string {
	s := shared.stack
	reuseLine := ""
	if reuse > 0 {
		reuseLine = fmt.Sprintf("  reuse: {max_idle: %d}\n", reuse)
	}
	return fmt.Sprintf(`listen: %s
upstream:
  address: %s
  tls: {mode: verify-full, ca_file: %s, server_name: localhost}
%stls: {cert_file: %s, key_file: %s}
auth: {auth_user: %s, auth_password_file: %s}
`, addr, s.PG.Addr(), s.Certs.CAFile, reuseLine, s.Certs.ProxyCertFile, s.Certs.ProxyKey, s.PG.AuthUser, shared.authPassFile) + extra
}

// freeAddr returns a loopback address with a currently free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeTemp writes content to a new file in the test's temporary folder.
func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
