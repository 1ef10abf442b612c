package crypto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tink-crypto/tink-go/v2/daead/subtle"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// testKEK stands in for Vault's Transit with a local AES-SIV (the
// associated data is checked the same way).
type testKEK struct{ siv *subtle.AESSIV }

func (k testKEK) EncryptWithContext(_ context.Context, pt, ad []byte) ([]byte, error) {
	return k.siv.EncryptDeterministically(pt, ad)
}

func (k testKEK) DecryptWithContext(_ context.Context, ct, ad []byte) ([]byte, error) {
	return k.siv.DecryptDeterministically(ct, ad)
}

// TestEncryptedKeysetBoundToLocation: a format 2 keyset unwraps only at the
// location it was written for (a copy elsewhere does not), and a format 1
// keyset reads but is not bound to any.
func TestEncryptedKeysetBoundToLocation(t *testing.T) {
	siv, err := subtle.NewAESSIV(bytes.Repeat([]byte{7}, 64))
	if err != nil {
		t.Fatal(err)
	}
	kek := testKEK{siv}
	ks := newTestKeyset(t)
	blob, err := ks.marshalEncrypted(t.Context(), kek, "secret/data/pgpseudo/keyset")
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalKeyset(t.Context(), blob, kek, "secret/data/pgpseudo/keyset")
	if err != nil || back.BoundTo() != "secret/data/pgpseudo/keyset" {
		t.Fatalf("at its own location: %v, bound to %q", err, back.BoundTo())
	}
	if _, err := unmarshalKeyset(t.Context(), blob, kek, "cubbyhole/data/pgpseudo/keyset"); !errors.Is(err, ErrCorruptKeyset) {
		t.Fatalf("a copy elsewhere unwrapped: %v", err)
	}

	// Format 1: the versions alone are the associated data.
	var st storedKeyset
	if err := json.Unmarshal(blob, &st); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.handle.WriteWithContext(t.Context(), keyset.NewBinaryWriter(&buf), kek, metadata(keysetFormatV1, ks.versions, "")); err != nil {
		t.Fatal(err)
	}
	st.Format, st.Keyset = keysetFormatV1, buf.Bytes()
	old, _ := json.Marshal(st)
	v1, err := unmarshalKeyset(t.Context(), old, kek, "anywhere")
	if err != nil || v1.BoundTo() != "" {
		t.Fatalf("format 1: %v, bound to %q", err, v1.BoundTo())
	}
}

// TestReloadOnlyAddsVersions: a reloaded keyset replaces the cached one
// only if it keeps every cached version's key and does not go back.
func TestReloadOnlyAddsVersions(t *testing.T) {
	ks := newTestKeyset(t)
	rotated, err := ks.Rotate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	var c keyCache
	c.set(ks)
	if got, err := c.refresh(rotated); err != nil || got != rotated {
		t.Fatalf("a rotation refused: %v", err)
	}
	// The same keyset read again keeps the one in service (and the
	// transformers built from it).
	same := &Keyset{handle: rotated.handle, prfs: rotated.prfs, versions: rotated.versions, primary: rotated.primary}
	if got, err := c.refresh(same); err != nil || got != rotated || c.get() != rotated {
		t.Fatalf("an unchanged reload replaced the keyset in service: %v", err)
	}
	for name, bad := range map[string]*Keyset{"older primary": ks, "another key for version 1": newTestKeyset(t)} {
		if _, err := c.refresh(bad); !errors.Is(err, ErrCorruptKeyset) {
			t.Errorf("%s: %v", name, err)
		}
		if c.get() != rotated {
			t.Errorf("%s: the cached keyset was replaced", name)
		}
	}
}
