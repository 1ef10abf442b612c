package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// TestNegotiateProtocolVersion: a client asking for protocol 3.2 with an
// unknown _pq_ option gets NegotiateProtocolVersion (3.0, the option named)
// before authentication, not an error.
func TestNegotiateProtocolVersion(t *testing.T) {
	p := startProxy(t, nil)
	for _, minor := range []uint32{2, 9999} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(wire.AppendRequest(nil, wire.CodeSSLRequest))
		var b [1]byte
		io.ReadFull(c, b[:])
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		pkt := wire.AppendStartupMessage(nil, []wire.Param{{Key: "user", Value: userAlice}, {Key: "_pq_.grease", Value: "1"}})
		pkt[6], pkt[7] = byte(minor>>8), byte(minor) // protocol 3.minor
		if _, err := tc.Write(pkt); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(tc, tc)
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		npv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
		if !ok || npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.grease" {
			t.Fatalf("3.%d: got %#v, want NegotiateProtocolVersion(0, [_pq_.grease])", minor, msg)
		}
		if msg, err = fe.Receive(); err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("3.%d: after negotiation got %T, want AuthenticationSASL", minor, msg)
		}
	}
}

// TestGSSENCAndDirectTLS: a GSSENCRequest is declined with N and the
// client goes on; PostgreSQL 17's direct TLS (ALPN postgresql) works.
func TestGSSENCAndDirectTLS(t *testing.T) {
	p := startProxy(t, nil)
	ctx := context.Background()
	c := connect(t, p.dsn(userAlice, passAlice, dbApp, "sslnegotiation=direct"))
	var ok bool
	if err := c.QueryRow(ctx, "SELECT true").Scan(&ok); err != nil || !ok {
		t.Fatalf("direct TLS session: %v", err)
	}
	// GSSENCRequest first, then SSLRequest on the same socket, like libpq
	// with a Kerberos cache.
	raw, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	raw.Write(wire.AppendRequest(nil, wire.CodeGSSENCRequest))
	var b [1]byte
	if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("GSSENCRequest answer %q, %v", b, err)
	}
	raw.Write(wire.AppendRequest(nil, wire.CodeSSLRequest))
	if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'S' {
		t.Fatalf("SSLRequest after GSSENC answer %q, %v", b, err)
	}
}

// TestMutualTLS: with client_ca_file set, a client without a certificate
// is refused and one with a certificate from that CA gets in.
func TestMutualTLS(t *testing.T) {
	cfg := proxyConfig()
	cfg.TLS.ClientCAFile = shared.stack.Certs.CAFile
	p := startProxy(t, cfg)
	ctx := context.Background()
	if c, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp)); err == nil {
		c.Close(ctx)
		t.Fatal("login without a client certificate succeeded")
	}
	certs := shared.stack.Certs
	c := connect(t, p.dsn(userAlice, passAlice, dbApp, "sslcert="+certs.ClientCertFile, "sslkey="+certs.ClientKey))
	var n int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFullRefusesWrongServer: with verify-full the upstream
// certificate must match server_name; a mismatch refuses the login.
func TestVerifyFullRefusesWrongServer(t *testing.T) {
	cfg := proxyConfig()
	cfg.Upstream.TLS.ServerName = "db.example.invalid"
	p := startProxy(t, cfg)
	_, err := pgx.Connect(context.Background(), p.dsn(userAlice, passAlice, dbApp))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" {
		t.Fatalf("login with a mismatching upstream certificate: %v, want SQLSTATE 08006", err)
	}
	if !waitLog(p, 0, "certificate") {
		t.Fatal("certificate failure not logged")
	}
	// And a CA that did not sign the server's certificate.
	other := t.TempDir() + "/other-ca.crt"
	otherCA(t, other)
	cfg = proxyConfig()
	cfg.Upstream.TLS.CAFile = other
	p = startProxy(t, cfg)
	if _, err := pgx.Connect(context.Background(), p.dsn(userAlice, passAlice, dbApp)); !errors.As(err, &pe) || pe.Code != "08006" {
		t.Fatalf("login with an untrusted upstream certificate: %v", err)
	}
}

func otherCA(t *testing.T, path string) {
	t.Helper()
	// The proxy's own certificate is a leaf, not a CA: as a trust anchor it
	// does not vouch for PostgreSQL's certificate.
	b, err := os.ReadFile(shared.stack.Certs.ProxyCertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLimits: max_connections refuses the connection beyond the limit with
// 53300; idle_timeout closes an idle session with 57P05 but not one whose
// statement runs longer than the timeout.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("max_connections", func(t *testing.T) {
		cfg := proxyConfig()
		cfg.Limits.MaxConnections = 2
		p := startProxy(t, cfg)
		connect(t, p.dsn(userAlice, passAlice, dbApp))
		connect(t, p.dsn(userAlice, passAlice, dbApp))
		_, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "53300" {
			t.Fatalf("third connection: %v, want SQLSTATE 53300", err)
		}
	})
	t.Run("idle_timeout", func(t *testing.T) {
		cfg := proxyConfig()
		cfg.Limits.IdleTimeout = time.Second
		p := startProxy(t, cfg)
		busy := connect(t, p.dsn(userAlice, passAlice, dbApp))
		if _, err := busy.Exec(ctx, "SELECT pg_sleep(2.5)"); err != nil {
			t.Fatalf("a statement longer than idle_timeout was cut: %v", err)
		}
		idle := connect(t, p.dsn(userAlice, passAlice, dbApp))
		time.Sleep(2500 * time.Millisecond)
		_, err := idle.Exec(ctx, "SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "idle") && !strings.Contains(err.Error(), "57P05") && !strings.Contains(err.Error(), "closed") {
			t.Fatalf("idle session still usable: %v", err)
		}
		if !waitLog(p, 0, "idle timeout") {
			t.Fatal("idle timeout not logged")
		}
	})
	t.Run("idle_timeout lone messages", func(t *testing.T) {
		// A Flush with nothing to flush, or a Parse never synced, owes no
		// reply: the session is idle (red team round 37). A flushed
		// statement that runs longer than the timeout is not.
		cfg := policyConfig(t, samplePolicy)
		cfg.Limits.IdleTimeout = time.Second
		restricted := startProxy(t, cfg)
		plainCfg := proxyConfig()
		plainCfg.Limits.IdleTimeout = time.Second
		plain := startProxy(t, plainCfg)
		for _, tc := range []struct {
			name, dsn string
			frames    []byte
			idle      bool
		}{
			{"lone Flush", plain.dsn(userAlice, passAlice, dbApp), msgFrame('H'), true},
			{"lone Parse", plain.dsn(userAlice, passAlice, dbApp), msgFrame('P', []byte{0}, []byte("SELECT 1"), []byte{0, 0, 0}), true},
			{"lone Flush, restricted", restricted.dsn(userBI, samplePass, dbKunden), msgFrame('H'), true},
			{"lone Parse, restricted", restricted.dsn(userBI, samplePass, dbKunden), msgFrame('P', []byte{0}, []byte("SELECT 1"), []byte{0, 0, 0}), true},
			{"flushed long statement", plain.dsn(userAlice, passAlice, dbApp), append(extendedNoSync("SELECT pg_sleep(2.5)"), msgFrame('H')...), false},
			{"flushed long statement, restricted", restricted.dsn(userBI, samplePass, dbKunden), append(extendedNoSync("SELECT pg_sleep(2.5)"), msgFrame('H')...), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ws, err := dialWire(t, tc.dsn)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ws.conn.Write(tc.frames); err != nil {
					t.Fatal(err)
				}
				ws.conn.SetDeadline(time.Now().Add(4 * time.Second))
				var got []string
				for {
					m, err := ws.fe.Receive()
					if err != nil {
						break
					}
					if e, ok := m.(*pgproto3.ErrorResponse); ok {
						got = append(got, e.Code)
						break
					}
					if _, ok := m.(*pgproto3.CommandComplete); ok && !tc.idle {
						got = append(got, "done")
						break
					}
				}
				switch want := "57P05"; {
				case tc.idle && (len(got) == 0 || got[0] != want):
					t.Fatalf("got %v, want the idle timeout's %s", got, want)
				case !tc.idle && (len(got) == 0 || got[0] != "done"):
					t.Fatalf("a flushed statement longer than idle_timeout: %v, want it to finish", got)
				}
			})
		}
	})
	t.Run("idle_timeout restricted", func(t *testing.T) {
		// The server-side check's own ReadyForQuery must not make the
		// statement that follows it look idle.
		cfg := policyConfig(t, samplePolicy)
		cfg.Limits.IdleTimeout = time.Second
		p := startProxy(t, cfg)
		busy := connect(t, p.dsn(userBI, samplePass, dbKunden))
		if _, err := busy.Exec(ctx, "SELECT pg_sleep(2.5)"); err != nil {
			t.Fatalf("a restricted statement longer than idle_timeout was cut: %v", err)
		}
	})
}

// TestSessionIdentityLogged: the session log line records the
// authenticated user, database, application_name, client address and TLS
// version.
func TestSessionIdentityLogged(t *testing.T) {
	p := startProxy(t, nil)
	c := connect(t, p.dsn(userAlice, passAlice, dbApp, "application_name=identity-check"))
	c.Close(context.Background())
	for i := 0; i < 50; i++ {
		for _, e := range p.logs.FilterMessage("session started").All() {
			m := e.ContextMap()
			if m["user"] == userAlice && m["database"] == dbApp && m["application_name"] == "identity-check" &&
				strings.HasPrefix(m["client"].(string), "127.0.0.1:") && strings.HasPrefix(m["tls"].(string), "TLS 1.") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no complete session log line: %v", p.logs.All())
}

// extendedNoSync is Parse, Bind, Describe and Execute of sql on the
// unnamed statement and portal, without a Sync.
func extendedNoSync(sql string) []byte {
	b := extendedFrames(sql)
	return b[:len(b)-5] // drop the Sync
}
