package crypto

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// KeyProvider supplies the keyset and the key management operations. Both
// providers cache the keyset after the first successful load, so a key
// store that becomes unreachable later does not stop tokenisation.
type KeyProvider interface {
	// Keyset returns the cached keyset, loading it on first use.
	Keyset(ctx context.Context) (*Keyset, error)
	// Refresh reloads the keyset (e.g. after a rotation elsewhere). On
	// failure the cached keyset stays in service and the error is returned.
	Refresh(ctx context.Context) (*Keyset, error)
	// Init creates the key store's first keyset; it refuses to replace an
	// existing one (ErrKeysetExists).
	Init(ctx context.Context) (Status, error)
	// Rotate adds a new primary version, keeping all old versions.
	Rotate(ctx context.Context) (Status, error)
	// Status describes the stored keyset, never its key material.
	Status(ctx context.Context) (Status, error)
	// Close stops background work (Vault token renewal).
	Close() error
}

// Status describes a stored keyset for operators.
type Status struct {
	// Provider is "vault" or "file".
	Provider string `json:"provider"`
	// Location says where the keyset is stored.
	Location string `json:"location"`
	// KEK names the key encryption key (Vault Transit key), if any.
	KEK string `json:"kek,omitempty"`
	// Primary is the version new tokens are made with.
	Primary uint32 `json:"primary"`
	// Versions lists every key version, oldest first.
	Versions []VersionInfo `json:"versions"`
}

func statusOf(ks *Keyset, provider, location, kek string) Status {
	return Status{Provider: provider, Location: location, KEK: kek, Primary: ks.Primary(), Versions: ks.Versions()}
}

// NewProvider builds the configured provider. It validates cfg (after
// defaults) and does no I/O; the Vault provider's background renewal is
// bound to ctx and Close.
func NewProvider(ctx context.Context, cfg Config, log *zap.Logger) (KeyProvider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Provider == ProviderFile {
		return NewFileProvider(cfg.File, log), nil
	}
	return NewVaultProvider(ctx, cfg.Vault, log)
}

// Detokenize returns the original of a reversible token made in domain,
// whatever key version made it. It is the operation behind the CLI's
// detokenize command (which must be audited by the caller).
func Detokenize(ctx context.Context, p KeyProvider, domain, token string) (string, error) {
	ks, err := p.Keyset(ctx)
	if err != nil {
		return "", err
	}
	pt, err := ks.Detokenize(domain, []byte(token))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// DetokenizeValue reverses one value made by a bijective transformer (see
// ValueReverser).
func DetokenizeValue(ctx context.Context, p KeyProvider, spec Spec, typeOID uint32, value string) (string, error) {
	ks, err := p.Keyset(ctx)
	if err != nil {
		return "", err
	}
	vr, err := NewValueReverser(spec, ks, typeOID)
	if err != nil {
		return "", err
	}
	return vr.Reverse(value)
}

// ValueReverser reverses values made by a bijective transformer (int,
// uuid, digits, iban, card) with spec.KeyVersion (0: the version such
// values are made with, see Kind.Untagged), in text format; built once for
// many values.
type ValueReverser struct {
	t   Transformer
	r   Reverser
	oid uint32
}

// NewValueReverser builds the transformer spec makes for typeOID.
func NewValueReverser(spec Spec, ks *Keyset, typeOID uint32) (*ValueReverser, error) {
	t, err := New(spec, ks, typeOID, FormatText)
	if err != nil {
		return nil, err
	}
	r, ok := t.(Reverser)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotReversible, spec.Kind)
	}
	return &ValueReverser{t: t, r: r, oid: typeOID}, nil
}

// Reverse returns the value's original. The result is tokenized again and
// must give value back, which catches a value this transform could not
// have made (invalid check digits, a text it does not read back alike). It
// cannot catch a spec the caller got wrong (another column's keep_prefix,
// another int width): a bijection reverses any value of its format, so the
// spec must be the column's.
func (v *ValueReverser) Reverse(value string) (string, error) {
	out, err := v.r.Reverse(nil, []byte(value))
	if err != nil {
		return "", err
	}
	again, err := v.t.Transform(nil, out)
	if err != nil || !bytes.Equal(canonicalText(v.oid, again), canonicalText(v.oid, []byte(value))) {
		return "", fmt.Errorf("%w: the value is not one this column's transform makes (check the domain, --column and --type)", ErrInvalidToken)
	}
	return string(out), nil
}

// canonicalText is the form two text values of a type compare in: uuids
// in lower case, everything else as it is.
func canonicalText(oid uint32, v []byte) []byte {
	if oid == OIDUUID {
		return bytes.ToLower(bytes.TrimSpace(v))
	}
	return bytes.TrimSpace(v)
}

// keyCache holds the last good keyset.
type keyCache struct {
	mu sync.Mutex
	ks *Keyset
}

func (c *keyCache) get() *Keyset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ks
}

// refresh puts a reloaded keyset in service if it only adds versions to
// the cached one (Keyset.extends); otherwise the cached keys stay and the
// reason is returned. A reload that adds nothing keeps the cached Keyset
// itself, so transformers built from it (cached by keyset) stay in use.
// It returns the keyset in service.
func (c *keyCache) refresh(ks *Keyset) (*Keyset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ks != nil {
		if err := c.ks.extends(ks); err != nil {
			return nil, err
		}
		if ks.primary == c.ks.primary && len(ks.versions) == len(c.ks.versions) && ks.boundTo == c.ks.boundTo {
			return c.ks, nil
		}
	}
	c.ks = ks
	return ks, nil
}

func (c *keyCache) set(ks *Keyset) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ks = ks
}

// clock is the provider's time source (tests pin it).
type clock func() time.Time

func (c clock) now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// errWithPath names a failing operation for an operator.
func errWithPath(op, where string, err error) error { return fmt.Errorf("%s %s: %w", op, where, err) }

// Identifier is implemented by providers whose login has an identity
// (Vault): who is using the keys, for the detokenize audit record.
type Identifier interface {
	Identity(ctx context.Context) (Identity, error)
}

// DetokenizeAuthorizer is implemented by providers that decide per token
// domain who may detokenize (Vault); the file provider has no identities.
type DetokenizeAuthorizer interface {
	AllowDetokenize(ctx context.Context, domain string) error
}
