package crypto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// keysetFormat names the serialisation of a stored keyset. Format 2 binds
// an encrypted keyset to its storage location (associated data); format 1
// keysets, which are not bound, are still read.
const (
	keysetFormat   = "pgpseudo-keyset/2"
	keysetFormatV1 = "pgpseudo-keyset/1"
)

// VersionInfo describes one key version. It never holds key material.
type VersionInfo struct {
	// Version is the number tagged into tokens (1, 2, 3…).
	Version uint32 `json:"version"`
	// KeyID is tink's key ID for this version inside the keyset.
	KeyID uint32 `json:"key_id"`
	// Created is when the version was generated.
	Created time.Time `json:"created"`
}

// Keyset is an immutable set of numbered root keys (tink HKDF-SHA256 PRF
// keys). Transformers derive per-purpose, per-domain subkeys from a version's
// root key. Rotation returns a new Keyset; old versions stay usable for
// detokenisation. A Keyset is safe for concurrent use.
type Keyset struct {
	handle   *keyset.Handle
	prfs     map[uint32]prf.PRF // by version
	versions []VersionInfo      // ascending by Version
	primary  uint32
	// boundTo is the storage location an encrypted keyset's associated
	// data named when it was read ("" for cleartext and format 1).
	boundTo string
}

// NewKeyset generates a keyset with one fresh version (1).
func NewKeyset(now time.Time) (*Keyset, error) {
	h, err := keyset.NewHandle(prf.HKDFSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generating keyset: %w", err)
	}
	p, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("generating keyset: %w", err)
	}
	return newKeyset(h, []VersionInfo{{Version: 1, KeyID: p.KeyID(), Created: now.UTC()}})
}

// newKeyset checks that versions and the tink handle agree.
func newKeyset(h *keyset.Handle, versions []VersionInfo) (*Keyset, error) {
	set, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyset, err)
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: no versions", ErrCorruptKeyset)
	}
	ks := &Keyset{handle: h, prfs: make(map[uint32]prf.PRF, len(versions))}
	ks.versions = slices.Clone(versions)
	slices.SortFunc(ks.versions, func(a, b VersionInfo) int { return int(a.Version) - int(b.Version) })
	for i, v := range ks.versions {
		if v.Version == 0 || (i > 0 && ks.versions[i-1].Version == v.Version) {
			return nil, fmt.Errorf("%w: bad version numbering", ErrCorruptKeyset)
		}
		p, ok := set.PRFs[v.KeyID]
		if !ok {
			return nil, fmt.Errorf("%w: version %d has no key", ErrCorruptKeyset, v.Version)
		}
		ks.prfs[v.Version] = p
		if v.KeyID == set.PrimaryID {
			ks.primary = v.Version
		}
	}
	if ks.primary == 0 {
		return nil, fmt.Errorf("%w: primary key has no version", ErrCorruptKeyset)
	}
	return ks, nil
}

// Rotate returns a new keyset with a fresh key as the new primary version;
// all existing versions are kept.
func (k *Keyset) Rotate(now time.Time) (*Keyset, error) {
	m := keyset.NewManagerFromHandle(k.handle)
	id, err := m.Add(prf.HKDFSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("rotating keyset: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("rotating keyset: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("rotating keyset: %w", err)
	}
	last := k.versions[len(k.versions)-1].Version
	versions := append(slices.Clone(k.versions), VersionInfo{Version: last + 1, KeyID: id, Created: now.UTC()})
	return newKeyset(h, versions)
}

// Primary is the version new tokens are made with.
func (k *Keyset) Primary() uint32 { return k.primary }

// Versions lists all versions, oldest first.
func (k *Keyset) Versions() []VersionInfo { return slices.Clone(k.versions) }

// Format prints a summary with no key material, whatever the verb.
func (k *Keyset) Format(f fmt.State, _ rune) {
	vs := make([]uint32, len(k.versions))
	for i, v := range k.versions {
		vs[i] = v.Version
	}
	fmt.Fprintf(f, "Keyset{primary: %d, versions: %v}", k.primary, vs)
}

// String implements fmt.Stringer (same text as Format).
func (k *Keyset) String() string { return fmt.Sprint(k) }

// GoString implements fmt.GoStringer (same text as Format).
func (k *Keyset) GoString() string { return fmt.Sprint(k) }

// resolve maps 0 to the primary version and checks the version exists.
func (k *Keyset) resolve(version uint32) (uint32, error) {
	if version == 0 {
		return k.primary, nil
	}
	if _, ok := k.prfs[version]; !ok {
		return 0, fmt.Errorf("%w: %d", ErrUnknownVersion, version)
	}
	return version, nil
}

// derive returns n bytes of subkey for (version, purpose, domain) with the
// version's HKDF PRF; distinct purposes and domains give independent keys.
func (k *Keyset) derive(version uint32, purpose, domain string, n int) (secret, error) {
	p, ok := k.prfs[version]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownVersion, version)
	}
	info := make([]byte, 0, 32+len(purpose)+len(domain))
	info = append(info, "pgpseudo/derive/v1\x00"...)
	info = append(info, purpose...)
	info = append(info, 0)
	info = append(info, domain...)
	out, err := p.ComputePRF(info, uint32(n))
	if err != nil {
		return nil, fmt.Errorf("deriving %s subkey: %w", purpose, err)
	}
	return secret(out), nil
}

// storedKeyset is the serialised form. Keyset holds tink's binary keyset:
// in clear for the file provider, a tink EncryptedKeyset (encrypted by the
// KEK with the metadata as associated data) for Vault.
type storedKeyset struct {
	Format    string        `json:"format"`
	Encrypted bool          `json:"encrypted"`
	Versions  []VersionInfo `json:"versions"`
	Keyset    []byte        `json:"keyset"`
}

// metadata is the associated data binding the version numbers, and from
// format 2 on the storage location, to an encrypted keyset: a copy stored
// elsewhere (another KV path the caller may write, a cubbyhole) does not
// decrypt, so the location the caller names is the one its Vault grants
// were checked on.
func metadata(format string, versions []VersionInfo, location string) []byte {
	if format == keysetFormatV1 {
		b, _ := json.Marshal(struct {
			Format   string        `json:"format"`
			Versions []VersionInfo `json:"versions"`
		}{format, versions})
		return b
	}
	b, _ := json.Marshal(struct {
		Format   string        `json:"format"`
		Versions []VersionInfo `json:"versions"`
		Location string        `json:"location"`
	}{format, versions, location})
	return b
}

// BoundTo is the storage location the keyset was bound to when it was
// read from Vault ("" for a file keyset or a format 1 one).
func (k *Keyset) BoundTo() string { return k.boundTo }

// marshalCleartext serialises the keyset with its keys in clear (file
// provider only).
func (k *Keyset) marshalCleartext() ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(k.handle, keyset.NewBinaryWriter(&buf)); err != nil {
		return nil, fmt.Errorf("serialising keyset: %w", err)
	}
	return json.MarshalIndent(storedKeyset{Format: keysetFormat, Versions: k.versions, Keyset: buf.Bytes()}, "", "  ")
}

// marshalEncrypted serialises the keyset encrypted under kek, which never
// reveals its own key (Vault Transit), bound to location.
func (k *Keyset) marshalEncrypted(ctx context.Context, kek tink.AEADWithContext, location string) ([]byte, error) {
	var buf bytes.Buffer
	if err := k.handle.WriteWithContext(ctx, keyset.NewBinaryWriter(&buf), kek, metadata(keysetFormat, k.versions, location)); err != nil {
		return nil, fmt.Errorf("encrypting keyset: %w", err)
	}
	return json.Marshal(storedKeyset{Format: keysetFormat, Encrypted: true, Versions: k.versions, Keyset: buf.Bytes()})
}

// unmarshalKeyset reads either form; kek may be nil for cleartext, and
// location is where an encrypted keyset was read from.
func unmarshalKeyset(ctx context.Context, data []byte, kek tink.AEADWithContext, location string) (*Keyset, error) {
	var st storedKeyset
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyset, err)
	}
	if st.Format != keysetFormat && st.Format != keysetFormatV1 {
		return nil, fmt.Errorf("%w: unknown format %q", ErrCorruptKeyset, st.Format)
	}
	var (
		h   *keyset.Handle
		err error
	)
	r := keyset.NewBinaryReader(bytes.NewReader(st.Keyset))
	switch {
	case st.Encrypted && kek == nil:
		return nil, fmt.Errorf("%w: keyset is encrypted but no KEK is configured", ErrCorruptKeyset)
	case st.Encrypted:
		h, err = keyset.ReadWithContext(ctx, r, kek, metadata(st.Format, st.Versions, location))
	case kek != nil:
		return nil, fmt.Errorf("%w: keyset is stored in clear where a KEK is required", ErrCorruptKeyset)
	default:
		h, err = insecurecleartextkeyset.Read(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyset, err)
	}
	ks, err := newKeyset(h, st.Versions)
	if err == nil && st.Encrypted && st.Format == keysetFormat {
		ks.boundTo = location
	}
	return ks, err
}

// extends reports why next cannot replace k as the keyset in service: a
// version of k missing from next, or with another key (the same number
// with other outputs), or an older primary. A reload must only ever add
// versions; anything else would change values made with the old keys.
func (k *Keyset) extends(next *Keyset) error {
	if next.primary < k.primary {
		return fmt.Errorf("%w: the new keyset's primary version %d is older than %d", ErrCorruptKeyset, next.primary, k.primary)
	}
	for _, v := range k.versions {
		a, err := k.derive(v.Version, "reload-check", "", 16)
		if err != nil {
			return err
		}
		b, err := next.derive(v.Version, "reload-check", "", 16)
		if err != nil {
			return fmt.Errorf("%w: the new keyset lacks version %d", ErrCorruptKeyset, v.Version)
		}
		if string(a) != string(b) {
			return fmt.Errorf("%w: version %d has another key in the new keyset", ErrCorruptKeyset, v.Version)
		}
	}
	return nil
}
