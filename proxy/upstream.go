package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// ErrUpstreamTLS reports that the upstream refused or failed TLS.
var ErrUpstreamTLS = errors.New("upstream TLS")

// dialUpstream connects to the database and sets up TLS per the
// configured mode.
func (s *Server) dialUpstream(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Upstream.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Upstream.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to upstream %s: %w", s.cfg.Upstream.Address, err)
	}
	if s.upstreamTLS == nil {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(wire.AppendRequest(nil, wire.CodeSSLRequest)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrUpstreamTLS, err)
	}
	// Read exactly one byte from the raw socket: anything the server (or a
	// man in the middle) sent after it goes to the TLS handshake, never
	// into the protocol stream (CVE-2021-23222).
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrUpstreamTLS, err)
	}
	if b[0] != 'S' {
		conn.Close()
		return nil, fmt.Errorf("%w: upstream %s does not support TLS (answered %q)", ErrUpstreamTLS, s.cfg.Upstream.Address, b[0])
	}
	tc := tls.Client(conn, s.upstreamTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: handshake with %s: %v", ErrUpstreamTLS, s.cfg.Upstream.Address, err)
	}
	conn.SetDeadline(timeZero)
	return tc, nil
}
