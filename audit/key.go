package audit

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// MinKeySize is the minimum audit key length in bytes.
const MinKeySize = 32

// KeySource supplies the audit key (in production from the key provider,
// i.e. Vault). The key is never logged or written to the audit log.
type KeySource interface {
	AuditKey(ctx context.Context) ([]byte, error)
}

// StaticKey is a KeySource holding the key bytes (tests, demos, the CLI's
// --key-file).
type StaticKey []byte

// AuditKey returns a copy of the key.
func (k StaticKey) AuditKey(context.Context) ([]byte, error) {
	return append([]byte(nil), k...), nil
}

// GenerateKey returns a new random audit key of MinKeySize bytes.
func GenerateKey() []byte {
	k := make([]byte, MinKeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// EncodeKey returns the key file form of key: lowercase hex and a newline.
func EncodeKey(key []byte) []byte {
	return []byte(hex.EncodeToString(key) + "\n")
}

// LoadKeyFile reads an audit key file: the key in hex or standard base64,
// at least MinKeySize bytes, in a file not readable by group or others.
// Errors match ErrKeyUnavailable (and ErrWeakKey for a short key).
func LoadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s is readable by group or others (want mode 0600)", ErrKeyUnavailable, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	s := strings.TrimSpace(string(data))
	key, err := hex.DecodeString(s)
	if err != nil {
		key, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s is neither hex nor base64", ErrKeyUnavailable, path)
	}
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("%w: %w: %d bytes, want at least %d", ErrKeyUnavailable, ErrWeakKey, len(key), MinKeySize)
	}
	return key, nil
}

// chainKey is the key material derived from the audit key.
type chainKey struct {
	mac []byte // HMAC-SHA256 key of the chain
	id  string // public key identifier (16 hex)
}

// deriveKey derives the chain's MAC key and identifier from the audit key,
// so the audit key itself is never used directly.
func deriveKey(master []byte) (chainKey, error) {
	if len(master) < MinKeySize {
		return chainKey{}, fmt.Errorf("%w: %w: %d bytes, want at least %d", ErrKeyUnavailable, ErrWeakKey, len(master), MinKeySize)
	}
	mk, err := hkdf.Key(sha256.New, master, nil, "pgpseudo/audit/chain/v1", 32)
	if err != nil {
		return chainKey{}, fmt.Errorf("%w: derive: %w", ErrKeyUnavailable, err)
	}
	h := hmac.New(sha256.New, mk)
	h.Write([]byte("pgpseudo/audit/key-id"))
	return chainKey{mac: mk, id: hex.EncodeToString(h.Sum(nil)[:8])}, nil
}

func fetchKey(ctx context.Context, keys KeySource) (chainKey, error) {
	if keys == nil {
		return chainKey{}, fmt.Errorf("%w: no key source", ErrKeyUnavailable)
	}
	master, err := keys.AuditKey(ctx)
	if err != nil {
		return chainKey{}, fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	defer clear(master)
	return deriveKey(master)
}
