package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpseudo/pgpseudo/config"

	"github.com/pgpseudo/pgpseudo/proxy/catalog"
	"github.com/pgpseudo/pgpseudo/proxy/scram"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// SCRAM terminates SCRAM-SHA-256 at the proxy against the user's own
// verifier, fetched with auth_query by the low-privilege auth_user, and logs
// in upstream with the ClientKey recovered from the client's proof.
type SCRAM struct {
	conns *catalog.Conns
	query string
	db    string
	log   *zap.Logger
	// mockSeed makes the fake exchange for unknown users stable per process.
	mockSeed []byte
}

// NewSCRAM builds the SCRAM authenticator of cfg's auth section; conns
// reach auth_database as auth_user.
func NewSCRAM(cfg *config.Config, conns *catalog.Conns, log *zap.Logger) (*SCRAM, error) {
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return &SCRAM{conns: conns, query: cfg.Auth.AuthQuery, db: cfg.Auth.AuthDatabase, log: log, mockSeed: seed}, nil
}

// errNoVerifier marks a user without a usable SCRAM verifier.
var errNoVerifier = errors.New("no SCRAM verifier")

// lookup fetches the user's verifier; errNoVerifier when there is none.
func (a *SCRAM) lookup(ctx context.Context, user string) (*scram.Verifier, error) {
	pool, err := a.conns.Pool(ctx, a.db)
	if err != nil {
		return nil, err
	}
	var name, secret *string
	err = pool.QueryRow(ctx, a.query, user).Scan(&name, &secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoVerifier
	}
	if err != nil {
		return nil, fmt.Errorf("auth_query as auth_user failed: %w", err)
	}
	if secret == nil {
		return nil, errNoVerifier
	}
	v, err := scram.ParseVerifier(*secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoVerifier, err)
	}
	return v, nil
}

// Login implements Authenticator.
func (a *SCRAM) Login(ctx context.Context, s Session, params []wire.Param) error {
	user := s.User()
	v, err := a.lookup(ctx, user)
	if err != nil && !errors.Is(err, errNoVerifier) {
		return refuse(CodeConnectionFailure, "pgpseudo cannot look up credentials", err)
	}
	if v == nil {
		// Run the whole exchange anyway so a client cannot probe which
		// users exist (PostgreSQL does the same).
		s.Log().Info("authentication for a user without a SCRAM verifier", zap.Error(err))
	}
	srv := scram.NewServer(v, s.ClientBinding(), append(bytes.Clone(a.mockSeed), user...))
	var mechs []byte
	for _, m := range srv.Mechanisms() {
		mechs = append(append(mechs, m...), 0)
	}
	if err := sendClient(s, authFrame(authSASL, append(mechs, 0))); err != nil {
		return err
	}
	body, err := readClientPassword(s)
	if err != nil {
		return err
	}
	first, err := decodeSASLInitial(body)
	if err != nil {
		return err
	}
	serverFirst, err := srv.ClientFirst(first.AuthMechanism, first.Data)
	if err != nil {
		return refuse(CodeProtocolViolation, err.Error(), err)
	}
	if err := sendClient(s, authFrame(authSASLContinue, serverFirst)); err != nil {
		return err
	}
	body, err = readClientPassword(s)
	if err != nil {
		return err
	}
	serverFinal, err := srv.ClientFinal(body)
	switch {
	case errors.Is(err, scram.ErrAuthFailed):
		return refuse(CodeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", user), err)
	case errors.Is(err, scram.ErrChannelBinding):
		return refuse(CodeInvalidAuthSpec, err.Error(), err)
	case err != nil:
		return refuse(CodeProtocolViolation, err.Error(), err)
	}
	if !s.ReuseUpstream(params) {
		if err := a.loginUpstream(ctx, s, params, v, srv.ClientKey()); err != nil {
			return err
		}
	}
	return sendClient(s, authFrame(authSASLFinal, serverFinal), authFrame(authOK, nil))
}

// loginUpstream opens the upstream session as the same user with clientKey.
func (a *SCRAM) loginUpstream(ctx context.Context, s Session, params []wire.Param, v *scram.Verifier, clientKey []byte) error {
	if err := s.OpenUpstream(ctx, params); err != nil {
		return err
	}
	cli := scram.NewClient(v, clientKey, s.UpstreamBinding())
	upErr := func(err error) error {
		if Reported(err) {
			return err
		}
		return refuse(CodeConnectionFailure, "pgpseudo could not log in to the database", err)
	}
	for {
		code, payload, err := readUpstreamAuth(s)
		if err != nil {
			return upErr(err)
		}
		var reply []byte
		switch code {
		case authOK:
			return nil
		case authSASL:
			mech, first, err := cli.ClientFirst(splitCStrings(payload))
			if err != nil {
				return upErr(err)
			}
			// SASLInitialResponse: mechanism, length of the data, data.
			reply = binary.BigEndian.AppendUint32(append([]byte(mech), 0), uint32(len(first)))
			reply = append(reply, first...)
		case authSASLContinue:
			if reply, err = cli.ServerFirst(payload); err != nil {
				return upErr(err)
			}
		case authSASLFinal:
			if err := cli.ServerFinal(payload); err != nil {
				return upErr(err)
			}
			continue
		default:
			return upErr(fmt.Errorf("upstream asks for authentication method %d; pgpseudo's scram mode needs SCRAM-SHA-256 upstream", code))
		}
		if err := sendUpstream(s, wire.Frame('p', reply)); err != nil {
			return err
		}
	}
}

// decodeSASLInitial decodes a SASLInitialResponse body.
func decodeSASLInitial(body []byte) (*pgproto3.SASLInitialResponse, error) {
	var m pgproto3.SASLInitialResponse
	if err := m.Decode(body); err != nil {
		return nil, refuse(CodeProtocolViolation, "malformed SASL initial response", err)
	}
	return &m, nil
}

func splitCStrings(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i <= 0 {
			break
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}
