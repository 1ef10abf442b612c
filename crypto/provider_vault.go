package crypto

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
)

// VaultProvider keeps pgpseudo's keyset in Vault: the serialised tink
// keyset is encrypted by a Transit key (the KEK, which never leaves Vault;
// the key versions are bound as associated data) and the ciphertext is
// stored in KV v2 at kv_mount/kv_path, whose versioning keeps every
// previous keyset. After the first load the keyset is served from memory,
// so a Vault outage does not stop tokenisation; the login token is renewed
// (or re-obtained) in the background with backoff.
type VaultProvider struct {
	cfg    VaultConfig
	log    *zap.Logger
	client *api.Client
	cache  keyCache
	clock  clock

	ctx    context.Context // bounds renewal
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex // serialises login and loads
	loggedIn bool
	renewing bool

	loginFailures, renewFailures atomic.Uint64
}

// AuthStats counts a Vault provider's failed logins and renewals since it
// was built, for metrics.
type AuthStats struct {
	LoginFailures, RenewFailures uint64
}

// AuthStats returns the provider's login and renewal failure counts.
func (p *VaultProvider) AuthStats() AuthStats {
	return AuthStats{LoginFailures: p.loginFailures.Load(), RenewFailures: p.renewFailures.Load()}
}

// tokenInfo is what renewal needs to know about the current login.
type tokenInfo struct {
	ttl       time.Duration
	renewable bool
}

// NewVaultProvider builds the client (no network I/O yet). Background
// renewal stops when ctx is cancelled or Close is called.
func NewVaultProvider(ctx context.Context, cfg VaultConfig, log *zap.Logger) (*VaultProvider, error) {
	if log == nil {
		log = zap.NewNop()
	}
	full := Config{Provider: ProviderVault, Vault: cfg}.WithDefaults()
	if err := full.Validate(); err != nil {
		return nil, err
	}
	cfg = full.Vault
	client, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	return &VaultProvider{cfg: cfg, log: log, client: client, ctx: cctx, cancel: cancel}, nil
}

// Close implements KeyProvider: it stops renewal and waits for it.
func (p *VaultProvider) Close() error {
	p.cancel()
	p.wg.Wait()
	return nil
}

func (p *VaultProvider) kvLocation() string {
	return p.cfg.KVMount + "/data/" + strings.TrimPrefix(p.cfg.KVPath, "/")
}

func (p *VaultProvider) kekName() string {
	return p.cfg.TransitMount + "/keys/" + p.cfg.TransitKey
}

func (p *VaultProvider) err(op, path string, err error) error {
	return vaultErr(p.cfg.Address, op, path, false, err)
}

// Keyset implements KeyProvider.
func (p *VaultProvider) Keyset(ctx context.Context) (*Keyset, error) {
	if ks := p.cache.get(); ks != nil {
		return ks, nil
	}
	return p.Refresh(ctx)
}

// Refresh implements KeyProvider.
func (p *VaultProvider) Refresh(ctx context.Context) (*Keyset, error) {
	ks, _, err := p.load(ctx)
	if err != nil {
		if p.cache.get() != nil {
			p.log.Warn("vault keyset refresh failed; cached keys stay in service", zap.Error(err))
		}
		return nil, err
	}
	ks, err = p.cache.refresh(ks)
	if err != nil {
		p.log.Error("reloaded keyset refused; cached keys stay in service", zap.Error(err))
		return nil, p.err("reloading keyset", p.kvLocation(), err)
	}
	return ks, nil
}

// load reads and decrypts the stored keyset; it returns the KV version for
// check-and-set.
func (p *VaultProvider) load(ctx context.Context) (*Keyset, int, error) {
	if err := p.ensureLogin(ctx); err != nil {
		return nil, 0, err
	}
	sec, err := p.client.KVv2(p.cfg.KVMount).Get(ctx, p.cfg.KVPath)
	if err != nil {
		return nil, 0, p.err("reading keyset", p.kvLocation(), err)
	}
	blob, _ := sec.Data["keyset"].(string)
	if blob == "" {
		return nil, 0, p.err("reading keyset", p.kvLocation(), fmt.Errorf("%w: no keyset field", ErrNoKeyset))
	}
	kek := p.transit()
	ks, err := unmarshalKeyset(ctx, []byte(blob), kek, p.kvLocation())
	if err != nil {
		if kek.lastErr != nil { // tink flattens the KEK's error; use ours
			return nil, 0, kek.lastErr
		}
		return nil, 0, errWithPath("decrypting keyset", p.kvLocation(), err)
	}
	version := 0
	if sec.VersionMetadata != nil {
		version = sec.VersionMetadata.Version
	}
	return ks, version, nil
}

// Init implements KeyProvider: it creates the Transit key when it is
// missing (if the token may), then a new keyset, stored with
// check-and-set 0 so an existing keyset is never replaced.
func (p *VaultProvider) Init(ctx context.Context) (Status, error) {
	if err := p.ensureLogin(ctx); err != nil {
		return Status{}, err
	}
	if err := p.ensureTransitKey(ctx); err != nil {
		return Status{}, err
	}
	if _, err := p.client.KVv2(p.cfg.KVMount).Get(ctx, p.cfg.KVPath); err == nil {
		return Status{}, p.err("creating keyset", p.kvLocation(), ErrKeysetExists)
	} else if !errors.Is(err, api.ErrSecretNotFound) {
		return Status{}, p.err("checking for a keyset", p.kvLocation(), err)
	}
	ks, err := NewKeyset(p.clock.now())
	if err != nil {
		return Status{}, err
	}
	if err := p.store(ctx, ks, 0); err != nil {
		return Status{}, err
	}
	p.cache.set(ks)
	p.log.Info("created keyset in vault", zap.String("kv", p.kvLocation()), zap.String("kek", p.kekName()),
		zap.Uint32("primary_version", ks.Primary()))
	return statusOf(ks, ProviderVault, p.location(), p.kekName()), nil
}

// Rotate implements KeyProvider.
func (p *VaultProvider) Rotate(ctx context.Context) (Status, error) {
	ks, kvVersion, err := p.load(ctx)
	if err != nil {
		return Status{}, err
	}
	next, err := ks.Rotate(p.clock.now())
	if err != nil {
		return Status{}, err
	}
	if err := p.store(ctx, next, kvVersion); err != nil {
		return Status{}, err
	}
	p.cache.set(next)
	p.log.Info("rotated keyset in vault", zap.String("kv", p.kvLocation()), zap.Uint32("primary_version", next.Primary()))
	return statusOf(next, ProviderVault, p.location(), p.kekName()), nil
}

// Status implements KeyProvider.
func (p *VaultProvider) Status(ctx context.Context) (Status, error) {
	ks, _, err := p.load(ctx)
	if err != nil {
		return Status{}, err
	}
	return statusOf(ks, ProviderVault, p.location(), p.kekName()), nil
}

func (p *VaultProvider) location() string { return p.cfg.Address + " " + p.kvLocation() }

// store encrypts ks with the KEK and writes it with check-and-set cas.
func (p *VaultProvider) store(ctx context.Context, ks *Keyset, cas int) error {
	kek := p.transit()
	blob, err := ks.marshalEncrypted(ctx, kek, p.kvLocation())
	if err != nil {
		if kek.lastErr != nil {
			return kek.lastErr
		}
		return err
	}
	_, err = p.client.KVv2(p.cfg.KVMount).Put(ctx, p.cfg.KVPath,
		map[string]any{"keyset": string(blob), "format": keysetFormat}, api.WithCheckAndSet(cas))
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
			return p.err("writing keyset", p.kvLocation(), fmt.Errorf("%w (changed concurrently): %w", ErrKeysetExists, err))
		}
		return p.err("writing keyset", p.kvLocation(), err)
	}
	ks.boundTo = p.kvLocation() // before it is cached or shared
	return nil
}

func (p *VaultProvider) ensureTransitKey(ctx context.Context) error {
	path := p.kekName()
	sec, err := p.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 403 {
			// May use the key but not read its metadata: try to use it.
			return nil
		}
		return p.err("reading transit key", path, err)
	}
	if sec != nil {
		return nil
	}
	if _, err := p.client.Logical().WriteWithContext(ctx, path, map[string]any{"type": "aes256-gcm96"}); err != nil {
		return p.err("creating transit key", path, err)
	}
	p.log.Info("created vault transit key", zap.String("key", path))
	return nil
}

// transit returns a fresh KEK adapter (it records its own last error).
func (p *VaultProvider) transit() *transitAEAD {
	return &transitAEAD{p: p}
}

// transitAEAD is tink's AEADWithContext backed by Vault Transit; the key
// never leaves Vault. Associated data is passed as Transit's
// associated_data (AES-GCM keys).
type transitAEAD struct {
	p       *VaultProvider
	lastErr error
}

// EncryptWithContext implements tink.AEADWithContext.
func (t *transitAEAD) EncryptWithContext(ctx context.Context, pt, ad []byte) ([]byte, error) {
	path := t.p.cfg.TransitMount + "/encrypt/" + t.p.cfg.TransitKey
	data := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}
	if len(ad) > 0 {
		data["associated_data"] = base64.StdEncoding.EncodeToString(ad)
	}
	sec, err := t.p.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		t.lastErr = t.p.err("encrypting keyset with", path, err)
		return nil, t.lastErr
	}
	var ct string
	if sec != nil {
		ct, _ = sec.Data["ciphertext"].(string)
	}
	if ct == "" {
		t.lastErr = t.p.err("encrypting keyset with", path, errors.New("no ciphertext in response"))
		return nil, t.lastErr
	}
	return []byte(ct), nil
}

// DecryptWithContext implements tink.AEADWithContext.
func (t *transitAEAD) DecryptWithContext(ctx context.Context, ct, ad []byte) ([]byte, error) {
	path := t.p.cfg.TransitMount + "/decrypt/" + t.p.cfg.TransitKey
	data := map[string]any{"ciphertext": string(ct)}
	if len(ad) > 0 {
		data["associated_data"] = base64.StdEncoding.EncodeToString(ad)
	}
	sec, err := t.p.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		t.lastErr = t.p.err("decrypting keyset with", path, err)
		return nil, t.lastErr
	}
	var b64 string
	if sec != nil {
		b64, _ = sec.Data["plaintext"].(string)
	}
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || b64 == "" {
		t.lastErr = t.p.err("decrypting keyset with", path, fmt.Errorf("%w: bad plaintext in response", ErrCorruptKeyset))
		return nil, t.lastErr
	}
	return pt, nil
}

// Identity is the Vault identity the provider is logged in as.
type Identity struct {
	// Name is the token's display name; EntityID its identity entity.
	Name, EntityID string
}

// Identity implements Identifier: it looks the provider's own token up (lookup-self) over its own
// verified client. It sends nothing before the provider has logged in,
// so a server the provider refused never sees the token.
func (p *VaultProvider) Identity(ctx context.Context) (Identity, error) {
	p.mu.Lock()
	logged := p.loggedIn
	p.mu.Unlock()
	if !logged {
		return Identity{}, fmt.Errorf("vault at %s: %w: not logged in", p.cfg.Address, ErrAuthFailed)
	}
	sec, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return Identity{}, p.err("looking up the token at", "auth/token/lookup-self", err)
	}
	if sec == nil {
		return Identity{}, fmt.Errorf("vault at %s: empty lookup-self answer", p.cfg.Address)
	}
	var id Identity
	id.Name, _ = sec.Data["display_name"].(string)
	id.EntityID, _ = sec.Data["entity_id"].(string)
	return id, nil
}

// DetokenizePath is the Vault path whose read capability lets an identity
// detokenize domain: <kv_mount>/data/<kv_path>/detokenize/<domain>, the
// domain as it is when it is a declared name (ValidDomainName: one plain
// path segment), else hex-encoded after "x-" (a column's implicit domain
// holds table and column names). Nothing needs to be
// stored there; Vault's policies alone decide.
func (p *VaultProvider) DetokenizePath(domain string) string {
	seg := domain
	if !ValidDomainName(domain) {
		seg = "x-" + hex.EncodeToString([]byte(domain))
	}
	return p.kvLocation() + "/detokenize/" + seg
}

// AllowDetokenize implements DetokenizeAuthorizer: after logging in, and
// before the keyset is read or unwrapped, it asks Vault
// (sys/capabilities-self) whether the identity holds read on
// DetokenizePath(domain); then it checks that the keyset it unwraps is
// bound to the configured path. This limits what pgpseudo's own
// detokenize command does for an identity, and Vault's audit device
// records the check; it is not a cryptographic boundary (docs/keys.md).
func (p *VaultProvider) AllowDetokenize(ctx context.Context, domain string) error {
	if err := p.ensureLogin(ctx); err != nil {
		return err
	}
	path := p.DetokenizePath(domain)
	caps, err := p.client.Sys().CapabilitiesSelfWithContext(ctx, path)
	if err != nil {
		return p.err("checking detokenize capability at", path, err)
	}
	if !slices.Contains(caps, "read") && !slices.Contains(caps, "root") {
		return fmt.Errorf("vault at %s: %w: this identity may not detokenize domain %q (grant read on %s)",
			p.cfg.Address, ErrPermissionDenied, domain, path)
	}
	// The grant was checked on the configured path: the keyset must be
	// the one stored there (its associated data names the path), not a
	// copy the caller placed somewhere it may write.
	ks, err := p.Keyset(ctx)
	if err != nil {
		return err
	}
	if ks.BoundTo() != p.kvLocation() {
		return fmt.Errorf("vault at %s: %w: the keyset at %s is not bound to its path (format %s); run keys rotate once to re-wrap it before detokenizing",
			p.cfg.Address, ErrPermissionDenied, p.kvLocation(), keysetFormatV1)
	}
	return nil
}
