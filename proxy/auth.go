package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// authenticator establishes who the client is and opens the upstream
// session as that user.
type authenticator interface {
	login(ctx context.Context, s *session, params []wire.Param) error
}

// Authentication request codes (the int32 after 'R').
const (
	authOK           = 0
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// frame builds a typed message from its body parts.
func frame(typ byte, parts ...[]byte) []byte { return wire.Frame(typ, parts...) }

// authFrame builds an 'R' message with the given code and payload.
func authFrame(code uint32, payload []byte) []byte {
	return frame('R', binary.BigEndian.AppendUint32(nil, code), payload)
}

// readUpstreamAuth reads the next authentication request from upstream;
// an ErrorResponse is relayed to the client and returned as an error.
func (s *session) readUpstreamAuth() (uint32, []byte, error) {
	m, err := s.ur.Next()
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
		_, _ = s.cw.Write(m.Raw)
		_ = s.cw.Flush()
		return 0, nil, &upstreamRefusal{msg: errorMessage(m.Body())}
	case 'v':
		// The upstream negotiated down; pgpseudo asked for 3.0, so ignore.
		return s.readUpstreamAuth()
	}
	return 0, nil, fmt.Errorf("upstream authentication: unexpected message %q", m.Type)
}

// upstreamRefusal is an error the upstream already reported to the client.
type upstreamRefusal struct{ msg string }

func (e *upstreamRefusal) Error() string { return "upstream refused: " + e.msg }

// readClientPassword reads the client's next 'p' message.
func (s *session) readClientPassword() ([]byte, error) {
	m, err := s.cr.Next()
	if err != nil {
		return nil, fmt.Errorf("client authentication: %w", err)
	}
	if m.Type != 'p' {
		return nil, refuse(codeProtocolViolation, fmt.Sprintf("expected SASL response, got message type %q", m.Type), nil)
	}
	return m.Body(), nil
}

// sendClient writes frames to the client and flushes.
func (s *session) sendClient(frames ...[]byte) error {
	for _, f := range frames {
		if _, err := s.cw.Write(f); err != nil {
			return err
		}
	}
	return s.cw.Flush()
}

// passthroughAuth relays the upstream's authentication exchange verbatim.
// It cannot work with channel binding when both legs use TLS (see
// docs/configuration.md).
type passthroughAuth struct{}

func (passthroughAuth) login(ctx context.Context, s *session, params []wire.Param) error {
	if err := s.openUpstream(ctx, params); err != nil {
		return err
	}
	for {
		code, payload, err := s.readUpstreamAuth()
		if err != nil {
			return err
		}
		if err := s.sendClient(authFrame(code, payload)); err != nil {
			return err
		}
		switch code {
		case authOK:
			return nil
		case authSASLFinal:
			continue // no reply expected; AuthenticationOk follows
		}
		body, err := s.readClientPassword()
		if err != nil {
			return err
		}
		if _, err := s.uw.Write(frame('p', body)); err != nil {
			return err
		}
		if err := s.uw.Flush(); err != nil {
			return err
		}
	}
}

// isRefusal reports whether err was already reported to the client.
func isRefusal(err error) bool {
	var ur *upstreamRefusal
	var ce *clientError
	return errors.As(err, &ur) || errors.As(err, &ce)
}

// decodeSASLInitial decodes a SASLInitialResponse body.
func decodeSASLInitial(body []byte) (*pgproto3.SASLInitialResponse, error) {
	var m pgproto3.SASLInitialResponse
	if err := m.Decode(body); err != nil {
		return nil, refuse(codeProtocolViolation, "malformed SASL initial response", err)
	}
	return &m, nil
}
