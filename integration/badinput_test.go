package integration

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// sendRaw writes b to a new connection, half-closes it and returns all the
// proxy sent back before closing.
func sendRaw(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("proxy did not close the connection: %v", err)
	}
	return out
}

func cancelPacket(pid uint32, secret []byte) []byte {
	return wire.AppendCancelRequest(nil, pid, secret)
}

// TestBadInput: malformed first packets and oversized messages close that
// connection with an error and a log line; a concurrent client goes on.
func TestBadInput(t *testing.T) {
	p := startProxy(t, nil)
	good := connect(t, p.dsn(userAlice, passAlice, dbApp))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var goodErr error
	var goodQueries atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			var n int
			if err := good.QueryRow(context.Background(), "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
				goodErr = err
				return
			}
			goodQueries.Add(1)
		}
	}()

	sslThenPlain := append(wire.AppendRequest(nil, wire.CodeSSLRequest), wire.AppendStartupMessage(nil, []wire.Param{{Key: "user", Value: userAlice}})...)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool   // an ErrorResponse comes back
		wantLog string // substring of a logged error
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true, "length"},
		{"4 GiB length", []byte{0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0}, true, "length"},
		{"truncated startup", wire.AppendStartupMessage(nil, []wire.Param{{Key: "user", Value: "alice"}})[:12], true, "truncated"},
		{"plaintext after SSLRequest", sslThenPlain, false, "TLS handshake"},
		{"startup without user", wire.AppendStartupMessage(nil, []wire.Param{{Key: "database", Value: "x"}}), true, "no PostgreSQL user"},
		{"protocol 2", []byte{0, 0, 0, 8, 0, 2, 0, 0}, true, "unsupported frontend protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.logs.All())
			out := sendRaw(t, p.addr, tt.in)
			if tt.wantErr && (len(out) == 0 || out[len(out)-1] != 0 || !strings.Contains(string(out), "08P01")) {
				t.Fatalf("reply %q, want an ErrorResponse with SQLSTATE 08P01", out)
			}
			if !tt.wantErr && len(out) > 0 && out[0] == 'S' && strings.Contains(string(out[1:]), "alice") {
				t.Fatalf("plaintext after SSLRequest was processed: %q", out)
			}
			if !waitLog(p, before, tt.wantLog) {
				t.Fatalf("no log line mentioning %q", tt.wantLog)
			}
		})
	}

	for _, tt := range []struct {
		name, frame, wantLog string
	}{
		{"4 GiB message after login", "Q\xff\xff\xff\xffx", "message too large"},
		{"unknown message type after login", "z\x00\x00\x00\x04", "invalid message type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.logs.All())
			pc, err := pgconn.Connect(context.Background(), p.dsn(userAlice, passAlice, dbApp))
			if err != nil {
				t.Fatal(err)
			}
			hc, err := pc.Hijack()
			if err != nil {
				t.Fatal(err)
			}
			defer hc.Conn.Close()
			hc.Conn.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := hc.Conn.Write([]byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(hc.Conn)
			if !strings.Contains(string(out), "08P01") {
				t.Fatalf("reply %q, want an ErrorResponse with SQLSTATE 08P01", out)
			}
			if !waitLog(p, before, tt.wantLog) {
				t.Fatalf("no log line mentioning %q", tt.wantLog)
			}
		})
	}
	t.Run("TLS then garbage", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write(wire.AppendRequest(nil, wire.CodeSSLRequest))
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answer %q, %v", b, err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		tc.Write(binary.BigEndian.AppendUint32(nil, 0xfffffff0))
		out, _ := io.ReadAll(tc)
		if !strings.Contains(string(out), "08P01") {
			t.Fatalf("reply %q, want SQLSTATE 08P01", out)
		}
	})

	stop.Store(true)
	wg.Wait()
	if goodErr != nil || goodQueries.Load() == 0 {
		t.Fatalf("concurrent good client: %v after %d queries", goodErr, goodQueries.Load())
	}
}

// waitLog waits for a log entry after index before that mentions s.
func waitLog(p *runningProxy, before int, s string) bool {
	for i := 0; i < 100; i++ {
		if hasLog(p, before, s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// hasLog reports whether a log entry after the first before ones contains
// s in its message or fields, now.
func hasLog(p *runningProxy, before int, s string) bool {
	for _, e := range p.logs.All()[before:] {
		if strings.Contains(e.Message+" "+strings.Join(fieldsOf(e.ContextMap()), " "), s) {
			return true
		}
	}
	return false
}
