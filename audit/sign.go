package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The chain itself is public (SHA-256, anyone can recompute it); what makes
// it evidence is the checkpoints, each an Ed25519 signature by a key only
// the proxy can use over the log's identity and the hash of the record it
// covers. Verifying needs only the public key, so an auditor who can verify
// cannot forge, and the signing key is not a token key.

// Signer signs checkpoints. In production it is a Vault Transit key of
// type ed25519 (the private key never leaves Vault); FileSigner holds a
// key from a file.
type Signer interface {
	// Sign returns an Ed25519 signature of msg and the public key that
	// verifies it (a Transit key may have several versions).
	Sign(ctx context.Context, msg []byte) (sig []byte, pub ed25519.PublicKey, err error)
}

// transientSigner is a Signer that can tell an outage (the signer cannot
// be reached now) from a refusal (no permission, wrong key type). A writer
// whose first checkpoint fails with an outage still opens, so the service
// the log records is not stopped by it: its records stay unsigned until a
// later checkpoint is signed, and audit verify reports them so until then.
// A refusal fails New: it is a configuration error, fixed by the operator.
type transientSigner interface {
	Transient(err error) bool
}

// transient reports whether err is an outage of s.
func transient(s Signer, err error) bool {
	t, ok := s.(transientSigner)
	return ok && t.Transient(err)
}

// FileSigner signs with an Ed25519 private key held in memory.
type FileSigner struct{ key ed25519.PrivateKey }

// NewFileSigner returns a signer for key.
func NewFileSigner(key ed25519.PrivateKey) *FileSigner { return &FileSigner{key: key} }

// Sign implements Signer.
func (s *FileSigner) Sign(_ context.Context, msg []byte) ([]byte, ed25519.PublicKey, error) {
	return ed25519.Sign(s.key, msg), s.key.Public().(ed25519.PublicKey), nil
}

// Public returns the signer's public key.
func (s *FileSigner) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// PublicKeys returns the one public key, as a Transit signer returns its
// versions'.
func (s *FileSigner) PublicKeys(context.Context) ([]ed25519.PublicKey, error) {
	return []ed25519.PublicKey{s.Public()}, nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateSigningKey returns a new Ed25519 key pair as PEM: the private
// key (PKCS#8, for audit.signing_key_file) and the public key (PKIX, for
// audit verify --public-key).
func GenerateSigningKey() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pubPEM, err := EncodePublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), pubPEM, nil
}

// EncodePublicKey returns pub as a PEM "PUBLIC KEY" block.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadSigningKey reads an Ed25519 private key (PEM, PKCS#8) from a regular
// file owned by the current user and readable by nobody else. Errors match
// ErrKeyUnavailable.
func LoadSigningKey(path string) (*FileSigner, error) {
	fail := func(format string, args ...any) (*FileSigner, error) {
		return nil, fmt.Errorf("%w: signing key %s: %s", ErrKeyUnavailable, path, fmt.Sprintf(format, args...))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %w", ErrKeyUnavailable, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %w", ErrKeyUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return fail("not a regular file")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fail("readable by group or others (want mode 0600)")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fail("owned by uid %d, not by the user running pgpseudo", st.Uid)
	}
	data := make([]byte, 0, 512)
	buf := make([]byte, 4096)
	for len(data) <= 64<<10 {
		n, err := f.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	defer clear(data)
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return fail("not a PEM PRIVATE KEY (create one with pgpseudo audit keygen)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	clear(block.Bytes)
	if err != nil {
		return fail("%v", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return fail("not an Ed25519 key")
	}
	return NewFileSigner(priv), nil
}

// PublicKeys are the keys a verifier accepts, by KeyID.
type PublicKeys map[string]ed25519.PublicKey

// Add adds pub.
func (p PublicKeys) Add(pub ed25519.PublicKey) { p[KeyID(pub)] = slices.Clone(pub) }

// IDs returns the key ids, sorted.
func (p PublicKeys) IDs() []string {
	ids := make([]string, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ParsePublicKeys reads Ed25519 public keys from PEM "PUBLIC KEY" blocks
// (several may follow each other, e.g. the versions of a rotated key).
func ParsePublicKeys(data []byte) (PublicKeys, error) {
	keys := PublicKeys{}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM %s block where a PUBLIC KEY was expected", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("not an Ed25519 public key")
		}
		keys.Add(pub)
	}
	if len(bytes.TrimSpace(data)) > 0 || len(keys) == 0 {
		return nil, errors.New("not a list of PEM PUBLIC KEY blocks")
	}
	return keys, nil
}

// LoadPublicKeys reads a public key file (ParsePublicKeys).
func LoadPublicKeys(path string) (PublicKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("public key file %s: %w", path, err)
	}
	return keys, nil
}

// checkpointMessage is what a checkpoint's signature covers: the log's
// identity, the record covered and its hash, the active file, the signing
// time and whether the writer closed the log, each on its own line (the
// file name quoted) so no field can run into another.
func checkpointMessage(c *Checkpoint) []byte {
	var b []byte
	b = append(b, "pgpseudo-audit-checkpoint/2\nlog "...)
	b = append(b, c.Log...)
	b = append(b, "\nfrom "...)
	b = strconv.AppendUint(b, c.From, 10)
	b = append(b, "\nrecords "...)
	b = strconv.AppendUint(b, c.Records, 10)
	b = append(b, "\nhead "...)
	b = append(b, c.Head...)
	b = append(b, "\nfile "...)
	b = strconv.AppendQuote(b, c.File)
	b = append(b, "\ntime "...)
	b = append(b, c.SignedAt.UTC().Format(time.RFC3339Nano)...)
	b = append(b, "\nfinal "...)
	b = strconv.AppendBool(b, c.Final)
	return append(b, '\n')
}

// signCheckpoint fills c's key id and signature.
func signCheckpoint(ctx context.Context, s Signer, c *Checkpoint) error {
	msg := checkpointMessage(c)
	sig, pub, err := s.Sign(ctx, msg)
	if err != nil {
		return fmt.Errorf("%w: sign checkpoint: %w", ErrKeyUnavailable, err)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: sign checkpoint: the signer returned a signature its public key does not verify", ErrKeyUnavailable)
	}
	c.KeyID, c.Signature = KeyID(pub), base64.StdEncoding.EncodeToString(sig)
	return nil
}

// checkSignature reports whether c is signed by one of keys: nil, a
// *unknownKeyError, or errBadSignature.
func checkSignature(keys PublicKeys, c *Checkpoint) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return &unknownKeyError{id: c.KeyID, known: keys.IDs()}
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, checkpointMessage(c), sig) {
		return errBadSignature
	}
	return nil
}

var errBadSignature = errors.New("the signature does not verify")

type unknownKeyError struct {
	id    string
	known []string
}

func (e *unknownKeyError) Error() string {
	return fmt.Sprintf("signed by key %s; the public keys given are %s", e.id, strings.Join(e.known, ", "))
}

func (e *unknownKeyError) Unwrap() error { return ErrWrongKey }
