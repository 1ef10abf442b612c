package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrAuthFailed reports a wrong password (or an unknown user, which is
// deliberately indistinguishable).
var ErrAuthFailed = errors.New("SCRAM proof does not match")

// ErrProtocol reports a malformed or inconsistent SCRAM message.
var ErrProtocol = errors.New("malformed SCRAM message")

// ErrChannelBinding reports a channel binding negotiation failure.
var ErrChannelBinding = errors.New("SCRAM channel binding negotiation error")

// Server runs the server side of one SCRAM exchange.
type Server struct {
	v *Verifier
	// cbData is the tls-server-end-point hash of the proxy's certificate, nil
	// when the client connection is not TLS.
	cbData []byte
	// fake marks an exchange for an unknown user: it runs to the end so the
	// client cannot tell, then fails.
	fake bool

	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	clientKey       []byte
	authMessage     string
}

// NewServer starts an exchange for verifier v. cbData is the channel binding
// data of the client connection (nil without TLS). A nil v runs a mock
// exchange that always fails, with salt and iteration count derived from
// mockSeed so repeated attempts look stable.
func NewServer(v *Verifier, cbData []byte, mockSeed []byte) *Server {
	s := &Server{v: v, cbData: cbData}
	if v == nil {
		s.fake = true
		salt := hmacSum(mockSeed, "salt")[:16]
		s.v = &Verifier{Iterations: 4096, Salt: salt, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
	}
	return s
}

// Mechanisms lists what to offer: PLUS only over TLS.
func (s *Server) Mechanisms() []string {
	if s.cbData != nil {
		return []string{SHA256Plus, SHA256}
	}
	return []string{SHA256}
}

// ClientFirst handles the SASLInitialResponse and returns the server-first
// message.
func (s *Server) ClientFirst(mechanism string, msg []byte) ([]byte, error) {
	m := string(msg)
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(m, ",")
	if !ok {
		return nil, fmt.Errorf("%w: missing gs2 header", ErrProtocol)
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, fmt.Errorf("%w: missing gs2 header", ErrProtocol)
	}
	if authzid != "" {
		return nil, fmt.Errorf("%w: authorization identities are not supported", ErrProtocol)
	}
	switch {
	case flag == "n":
		if mechanism != SHA256 {
			return nil, fmt.Errorf("%w: client chose %s without channel binding", ErrChannelBinding, mechanism)
		}
	case flag == "y":
		// The client could bind but thinks we cannot: a downgrade if we
		// offered PLUS.
		if mechanism != SHA256 || s.cbData != nil {
			return nil, fmt.Errorf("%w: client supports channel binding but the server offered it", ErrChannelBinding)
		}
	case strings.HasPrefix(flag, "p="):
		if mechanism != SHA256Plus || s.cbData == nil {
			return nil, fmt.Errorf("%w: channel binding requested without %s", ErrChannelBinding, SHA256Plus)
		}
		if flag != "p=tls-server-end-point" {
			return nil, fmt.Errorf("%w: unsupported channel binding type %q", ErrChannelBinding, flag[2:])
		}
	default:
		return nil, fmt.Errorf("%w: bad channel binding flag", ErrProtocol)
	}
	s.gs2Header = m[:len(flag)+1+len(authzid)+1]
	s.clientFirstBare = bare
	attrs, err := parseAttrs(bare)
	if err != nil {
		return nil, err
	}
	if _, ok := attrs['m']; ok {
		return nil, fmt.Errorf("%w: mandatory extensions are not supported", ErrProtocol)
	}
	cnonce, ok := attrs['r']
	if !ok || cnonce == "" || !printable(cnonce) {
		return nil, fmt.Errorf("%w: missing or invalid client nonce", ErrProtocol)
	}
	snonce := make([]byte, 18)
	if _, err := rand.Read(snonce); err != nil {
		return nil, err
	}
	s.nonce = cnonce + base64.StdEncoding.EncodeToString(snonce)
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(s.v.Salt), s.v.Iterations)
	return []byte(s.serverFirst), nil
}

// ClientFinal handles the SASLResponse. On success it returns the
// server-final message; the ClientKey is then available from ClientKey.
func (s *Server) ClientFinal(msg []byte) ([]byte, error) {
	m := string(msg)
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: missing proof", ErrProtocol)
	}
	withoutProof := m[:i]
	proof, err := base64.StdEncoding.DecodeString(m[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return nil, fmt.Errorf("%w: invalid proof", ErrProtocol)
	}
	attrs, err := parseAttrs(withoutProof)
	if err != nil {
		return nil, err
	}
	cb, err := base64.StdEncoding.DecodeString(attrs['c'])
	if err != nil {
		return nil, fmt.Errorf("%w: invalid channel binding attribute", ErrProtocol)
	}
	want := []byte(s.gs2Header)
	if strings.HasPrefix(s.gs2Header, "p=") {
		want = append(want, s.cbData...)
	}
	if !hmac.Equal(cb, want) {
		return nil, fmt.Errorf("%w: channel binding check failed", ErrChannelBinding)
	}
	if attrs['r'] != s.nonce {
		return nil, fmt.Errorf("%w: nonce mismatch", ErrProtocol)
	}
	s.authMessage = s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientSig := hmacSum(s.v.StoredKey, s.authMessage)
	clientKey := xor(proof, clientSig)
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], s.v.StoredKey) != 1 || s.fake {
		return nil, ErrAuthFailed
	}
	s.clientKey = clientKey
	serverSig := hmacSum(s.v.ServerKey, s.authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}

// ClientKey returns the key recovered from a successful proof.
func (s *Server) ClientKey() []byte { return s.clientKey }

func parseAttrs(s string) (map[byte]string, error) {
	out := map[byte]string{}
	for _, part := range strings.Split(s, ",") {
		if len(part) < 2 || part[1] != '=' {
			return nil, fmt.Errorf("%w: bad attribute", ErrProtocol)
		}
		if _, dup := out[part[0]]; dup {
			return nil, fmt.Errorf("%w: duplicate attribute", ErrProtocol)
		}
		out[part[0]] = part[2:]
	}
	return out, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}
