package auth

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// fakeSession feeds a login canned upstream and client bytes and records
// what it writes.
type fakeSession struct {
	fromUp, fromClient bytes.Buffer
	toUp, toClient     bytes.Buffer
	ur, cr             *wire.Reader
	uw, cw             *wire.Writer
	opened             bool
}

func newFake(up, client []byte) *fakeSession {
	f := &fakeSession{}
	f.fromUp.Write(up)
	f.fromClient.Write(client)
	f.ur, f.cr = wire.NewReader(&f.fromUp, wire.BackendLimits), wire.NewReader(&f.fromClient, wire.FrontendLimits)
	f.uw, f.cw = wire.NewWriter(&f.toUp), wire.NewWriter(&f.toClient)
	return f
}

func (f *fakeSession) User() string          { return "u" }
func (f *fakeSession) ClientBinding() []byte { return nil }
func (f *fakeSession) OpenUpstream(context.Context, []wire.Param) error {
	f.opened = true
	return nil
}
func (f *fakeSession) UpstreamBinding() []byte                { return nil }
func (f *fakeSession) ReuseUpstream([]wire.Param) bool        { return false }
func (f *fakeSession) Client() (*wire.Reader, *wire.Writer)   { return f.cr, f.cw }
func (f *fakeSession) Upstream() (*wire.Reader, *wire.Writer) { return f.ur, f.uw }
func (f *fakeSession) Log() *zap.Logger                       { return zap.NewNop() }

func encode(t *testing.T, msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	t.Helper()
	var out []byte
	for _, m := range msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPassthrough: the upstream's exchange reaches the client and the
// client's answers reach the upstream unchanged; an upstream error is
// relayed and reported.
func TestPassthrough(t *testing.T) {
	up := encode(t, &pgproto3.AuthenticationCleartextPassword{}, &pgproto3.AuthenticationOk{})
	client := encode(t, &pgproto3.PasswordMessage{Password: "secret"})
	f := newFake(up, client)
	if err := (Passthrough{}).Login(context.Background(), f, nil); err != nil {
		t.Fatal(err)
	}
	if !f.opened || !bytes.Equal(f.toClient.Bytes(), up) || !bytes.Equal(f.toUp.Bytes(), client) {
		t.Errorf("exchange not relayed verbatim: to client %q, to upstream %q", f.toClient.Bytes(), f.toUp.Bytes())
	}

	refusal := encode(t, &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
	f = newFake(refusal, nil)
	err := (Passthrough{}).Login(context.Background(), f, nil)
	var ur *UpstreamRefusal
	if !errors.As(err, &ur) || !Reported(err) || !bytes.Equal(f.toClient.Bytes(), refusal) {
		t.Errorf("upstream refusal: %v, relayed %q", err, f.toClient.Bytes())
	}
	if got := err.Error(); got != "upstream refused: 28P01 password authentication failed" {
		t.Errorf("message %q", got)
	}

	// A client that answers with something else is refused with 08P01.
	f = newFake(encode(t, &pgproto3.AuthenticationCleartextPassword{}), encode(t, &pgproto3.Query{String: "SELECT 1"}))
	var ae *Error
	if err := (Passthrough{}).Login(context.Background(), f, nil); !errors.As(err, &ae) || ae.Code != CodeProtocolViolation {
		t.Errorf("wrong message from the client: %v", err)
	}
}
