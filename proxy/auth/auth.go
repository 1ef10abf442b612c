// Package auth authenticates a client at the proxy and logs its session in
// upstream as the same user: either by relaying the server's own exchange
// (Passthrough) or by terminating SCRAM-SHA-256 at the proxy against the
// user's verifier (SCRAM). It works on a Session, so it is tested without
// the proxy.
package auth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// Session is what a login needs of the connection it authenticates.
type Session interface {
	// User is the user named in the client's startup packet.
	User() string
	// ClientBinding is the tls-server-end-point channel binding data of
	// the proxy's certificate when the client connected with TLS, else nil.
	ClientBinding() []byte
	// OpenUpstream dials the database and sends the startup packet with
	// params; Upstream is usable afterwards.
	OpenUpstream(ctx context.Context, params []wire.Param) error
	// ReuseUpstream takes a kept upstream session of the same user with
	// the same parameters instead of opening one (the caller has checked
	// the client's credentials itself); false when there is none.
	ReuseUpstream(params []wire.Param) bool
	// UpstreamBinding is the channel binding data of the database's
	// certificate when the upstream leg uses TLS, else nil.
	UpstreamBinding() []byte
	Client() (*wire.Reader, *wire.Writer)
	Upstream() (*wire.Reader, *wire.Writer)
	Log() *zap.Logger
}

// Authenticator establishes who the client is and opens the upstream
// session as that user.
type Authenticator interface {
	Login(ctx context.Context, s Session, params []wire.Param) error
}

// SQLSTATE codes of login failures.
const (
	CodeProtocolViolation = "08P01"
	CodeInvalidAuthSpec   = "28000"
	CodeInvalidPassword   = "28P01"
	CodeConnectionFailure = "08006"
)

// Error is a failure the client is to be told about in an ErrorResponse
// (a login's is FATAL), with Code and Msg.
type Error struct {
	Code, Msg string
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func refuse(code, msg string, err error) error { return &Error{Code: code, Msg: msg, Err: err} }

// UpstreamRefusal is the database's own ErrorResponse during login,
// already relayed to the client.
type UpstreamRefusal struct{ Body []byte }

func (e *UpstreamRefusal) Error() string {
	var m pgproto3.ErrorResponse
	if err := m.Decode(e.Body); err != nil {
		return "upstream refused: malformed ErrorResponse"
	}
	return "upstream refused: " + m.Code + " " + m.Message
}

// Reported says whether err was already reported to the client, or is
// meant to be.
func Reported(err error) bool {
	var ur *UpstreamRefusal
	var ae *Error
	return errors.As(err, &ur) || errors.As(err, &ae)
}

// Authentication request codes (the int32 after 'R').
const (
	authOK           = 0
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// authFrame builds an 'R' message with the given code and payload.
func authFrame(code uint32, payload []byte) []byte {
	return wire.Frame('R', binary.BigEndian.AppendUint32(nil, code), payload)
}

// readUpstreamAuth reads the next authentication request from upstream;
// an ErrorResponse is relayed to the client and returned as an error.
func readUpstreamAuth(s Session) (uint32, []byte, error) {
	ur, _ := s.Upstream()
	for {
		m, err := ur.Next()
		if err != nil {
			return 0, nil, fmt.Errorf("upstream authentication: %w", err)
		}
		switch m.Type {
		case 'R':
			b := m.Body()
			if len(b) < 4 {
				return 0, nil, fmt.Errorf("upstream authentication: short message")
			}
			return binary.BigEndian.Uint32(b), b[4:], nil
		case 'E':
			_, cw := s.Client()
			_, _ = cw.Write(m.Raw)
			_ = cw.Flush()
			return 0, nil, &UpstreamRefusal{Body: append([]byte(nil), m.Body()...)}
		case 'v':
			// The upstream negotiated down; pgpseudo asked for 3.0, so ignore.
			continue
		}
		return 0, nil, fmt.Errorf("upstream authentication: unexpected message %q", m.Type)
	}
}

// readClientPassword reads the client's next 'p' message.
func readClientPassword(s Session) ([]byte, error) {
	cr, _ := s.Client()
	m, err := cr.Next()
	if err != nil {
		return nil, fmt.Errorf("client authentication: %w", err)
	}
	if m.Type != 'p' {
		return nil, refuse(CodeProtocolViolation, fmt.Sprintf("expected SASL response, got message type %q", m.Type), nil)
	}
	return m.Body(), nil
}

// send writes frames to w and flushes.
func send(w *wire.Writer, frames ...[]byte) error {
	for _, f := range frames {
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	return w.Flush()
}

func sendClient(s Session, frames ...[]byte) error {
	_, cw := s.Client()
	return send(cw, frames...)
}

func sendUpstream(s Session, frames ...[]byte) error {
	_, uw := s.Upstream()
	return send(uw, frames...)
}

// Passthrough relays the upstream's authentication exchange verbatim.
// It cannot work with channel binding when both legs use TLS (see
// docs/configuration.md).
type Passthrough struct{}

// Login implements Authenticator.
func (Passthrough) Login(ctx context.Context, s Session, params []wire.Param) error {
	if err := s.OpenUpstream(ctx, params); err != nil {
		return err
	}
	for {
		code, payload, err := readUpstreamAuth(s)
		if err != nil {
			return err
		}
		if err := sendClient(s, authFrame(code, payload)); err != nil {
			return err
		}
		switch code {
		case authOK:
			return nil
		case authSASLFinal:
			continue // no reply expected; AuthenticationOk follows
		}
		body, err := readClientPassword(s)
		if err != nil {
			return err
		}
		if err := sendUpstream(s, wire.Frame('p', body)); err != nil {
			return err
		}
	}
}
