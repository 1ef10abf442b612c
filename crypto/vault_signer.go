package crypto

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TransitSigner signs with a Vault Transit key of type ed25519 (the audit
// log's checkpoint signer): the private key never leaves Vault. It uses the
// provider's client and login. Public keys are read from the key's
// metadata and cached by version, so a rotated Transit key keeps working.
type TransitSigner struct {
	p    *VaultProvider
	name string

	mu   sync.Mutex
	pubs map[int]ed25519.PublicKey
}

// signTimeout bounds one signing call; a checkpoint that cannot be signed
// in time is retried at the next interval.
const signTimeout = 10 * time.Second

// TransitSigner returns a signer for the Transit key name in the
// provider's transit mount.
func (p *VaultProvider) TransitSigner(name string) (*TransitSigner, error) {
	if name == "" || !cleanVaultPath(name) || strings.Contains(name, "/") {
		return nil, fmt.Errorf("transit signing key %q: want a plain key name", name)
	}
	return &TransitSigner{p: p, name: name, pubs: map[int]ed25519.PublicKey{}}, nil
}

func (s *TransitSigner) keyPath() string { return s.p.cfg.TransitMount + "/keys/" + s.name }

// Sign returns the Ed25519 signature of msg and the public key of the key
// version that made it.
func (s *TransitSigner) Sign(ctx context.Context, msg []byte) ([]byte, ed25519.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, signTimeout)
	defer cancel()
	if err := s.p.ensureLogin(ctx); err != nil {
		return nil, nil, err
	}
	path := s.p.cfg.TransitMount + "/sign/" + s.name
	sec, err := s.p.client.Logical().WriteWithContext(ctx, path, map[string]any{"input": base64.StdEncoding.EncodeToString(msg)})
	if err != nil {
		return nil, nil, s.p.err("signing with", path, err)
	}
	var v string
	if sec != nil {
		v, _ = sec.Data["signature"].(string)
	}
	// vault:v<version>:<base64 signature>
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return nil, nil, s.p.err("signing with", path, errors.New("no signature in the response"))
	}
	version, err := strconv.Atoi(parts[1][1:])
	sig, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || err2 != nil || len(sig) != ed25519.SignatureSize {
		return nil, nil, s.p.err("signing with", path, errors.New("not an Ed25519 signature (is the key of type ed25519?)"))
	}
	pub, err := s.publicKey(ctx, version)
	if err != nil {
		return nil, nil, err
	}
	return sig, pub, nil
}

func (s *TransitSigner) publicKey(ctx context.Context, version int) (ed25519.PublicKey, error) {
	s.mu.Lock()
	pub := s.pubs[version]
	s.mu.Unlock()
	if pub != nil {
		return pub, nil
	}
	pubs, err := s.readKeys(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, k := range pubs {
		s.pubs[v] = k
	}
	if pub = s.pubs[version]; pub == nil {
		return nil, s.p.err("reading", s.keyPath(), fmt.Errorf("no public key for version %d", version))
	}
	return pub, nil
}

// PublicKeys returns the public key of every version of the Transit key,
// oldest first.
func (s *TransitSigner) PublicKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	if err := s.p.ensureLogin(ctx); err != nil {
		return nil, err
	}
	pubs, err := s.readKeys(ctx)
	if err != nil {
		return nil, err
	}
	versions := make([]int, 0, len(pubs))
	for v := range pubs {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	out := make([]ed25519.PublicKey, len(versions))
	for i, v := range versions {
		out[i] = pubs[v]
	}
	return out, nil
}

func (s *TransitSigner) readKeys(ctx context.Context) (map[int]ed25519.PublicKey, error) {
	path := s.keyPath()
	sec, err := s.p.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, s.p.err("reading", path, err)
	}
	if sec == nil {
		return nil, s.p.err("reading", path, errors.New("no such key (create it with pgpseudo audit keygen --config F)"))
	}
	if t, _ := sec.Data["type"].(string); t != "ed25519" {
		return nil, s.p.err("reading", path, fmt.Errorf("the key is of type %q, want ed25519", t))
	}
	keys, _ := sec.Data["keys"].(map[string]any)
	out := map[int]ed25519.PublicKey{}
	for vs, kv := range keys {
		v, err := strconv.Atoi(vs)
		m, _ := kv.(map[string]any)
		b64, _ := m["public_key"].(string)
		pub, err2 := base64.StdEncoding.DecodeString(b64)
		if err != nil || err2 != nil || len(pub) != ed25519.PublicKeySize {
			return nil, s.p.err("reading", path, fmt.Errorf("version %s: no Ed25519 public key", vs))
		}
		out[v] = pub
	}
	if len(out) == 0 {
		return nil, s.p.err("reading", path, errors.New("no key versions"))
	}
	return out, nil
}

// Create creates the Transit key (type ed25519) if it does not exist.
func (s *TransitSigner) Create(ctx context.Context) (created bool, err error) {
	if err := s.p.ensureLogin(ctx); err != nil {
		return false, err
	}
	path := s.keyPath()
	sec, err := s.p.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return false, s.p.err("reading", path, err)
	}
	if sec != nil {
		_, err := s.readKeys(ctx)
		return false, err
	}
	if _, err := s.p.client.Logical().WriteWithContext(ctx, path, map[string]any{"type": "ed25519"}); err != nil {
		return false, s.p.err("creating", path, err)
	}
	return true, nil
}

// Transient reports whether a Sign error is an outage (Vault unreachable,
// sealed, timing out) rather than a refusal: the audit log then opens and
// signs its records once Vault is back, instead of stopping the proxy.
func (s *TransitSigner) Transient(err error) bool { return errors.Is(err, ErrVaultUnavailable) }
