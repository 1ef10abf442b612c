package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// ErrSecretMismatch reports that the upstream offered a salt or iteration
// count other than the verifier's, so the recovered ClientKey cannot work
// (the password was changed between lookup and login).
var ErrSecretMismatch = fmt.Errorf("%w: upstream SCRAM secret differs from the looked-up verifier", ErrAuthFailed)

// Client runs the client side of one SCRAM exchange using a ClientKey.
type Client struct {
	v         *Verifier
	clientKey []byte
	cbData    []byte

	mechanism       string
	gs2Header       string
	clientFirstBare string
	cnonce          string
	authMessage     string
}

// NewClient prepares a login with clientKey, whose verifier v supplies the
// expected salt and the ServerKey used to authenticate the server. cbData
// is the upstream certificate's tls-server-end-point hash, nil without TLS.
func NewClient(v *Verifier, clientKey, cbData []byte) *Client {
	return &Client{v: v, clientKey: clientKey, cbData: cbData}
}

// ClientFirst picks a mechanism from those offered and returns it with the
// client-first message.
func (c *Client) ClientFirst(offered []string) (string, []byte, error) {
	hasPlain, hasPlus := false, false
	for _, m := range offered {
		hasPlain = hasPlain || m == SHA256
		hasPlus = hasPlus || m == SHA256Plus
	}
	switch {
	case hasPlus && c.cbData != nil:
		c.mechanism, c.gs2Header = SHA256Plus, "p=tls-server-end-point,,"
	case hasPlain && c.cbData != nil:
		c.mechanism, c.gs2Header = SHA256, "y,,"
	case hasPlain:
		c.mechanism, c.gs2Header = SHA256, "n,,"
	default:
		return "", nil, fmt.Errorf("%w: upstream offers no usable mechanism (%s)", ErrProtocol, strings.Join(offered, ", "))
	}
	n := make([]byte, 18)
	if _, err := rand.Read(n); err != nil {
		return "", nil, err
	}
	c.cnonce = base64.StdEncoding.EncodeToString(n)
	// PostgreSQL takes the user from the startup packet; libpq sends "n=".
	c.clientFirstBare = "n=,r=" + c.cnonce
	return c.mechanism, []byte(c.gs2Header + c.clientFirstBare), nil
}

// ServerFirst handles the server-first message and returns client-final.
func (c *Client) ServerFirst(msg []byte) ([]byte, error) {
	serverFirst := string(msg)
	attrs, err := parseAttrs(serverFirst)
	if err != nil {
		return nil, err
	}
	nonce := attrs['r']
	if !strings.HasPrefix(nonce, c.cnonce) || len(nonce) == len(c.cnonce) {
		return nil, fmt.Errorf("%w: server nonce does not extend the client nonce", ErrProtocol)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil {
		return nil, fmt.Errorf("%w: bad salt", ErrProtocol)
	}
	iter, err := strconv.Atoi(attrs['i'])
	if err != nil {
		return nil, fmt.Errorf("%w: bad iteration count", ErrProtocol)
	}
	if iter != c.v.Iterations || !hmac.Equal(salt, c.v.Salt) {
		return nil, ErrSecretMismatch
	}
	cb := []byte(c.gs2Header)
	if c.mechanism == SHA256Plus {
		cb = append(cb, c.cbData...)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cb) + ",r=" + nonce
	c.authMessage = c.clientFirstBare + "," + serverFirst + "," + withoutProof
	storedKey := sha256.Sum256(c.clientKey)
	proof := xor(c.clientKey, hmacSum(storedKey[:], c.authMessage))
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// ServerFinal checks the server's signature, proving the upstream knows the
// user's verifier (and so is the real server).
func (c *Client) ServerFinal(msg []byte) error {
	attrs, err := parseAttrs(string(msg))
	if err != nil {
		return err
	}
	if e, ok := attrs['e']; ok {
		return fmt.Errorf("%w: upstream refused: %s", ErrAuthFailed, e)
	}
	sig, err := base64.StdEncoding.DecodeString(attrs['v'])
	if err != nil || !hmac.Equal(sig, hmacSum(c.v.ServerKey, c.authMessage)) {
		return fmt.Errorf("%w: upstream server signature is invalid", ErrProtocol)
	}
	return nil
}
