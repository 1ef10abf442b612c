package config

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// AuditSigner is the checkpoint signer an audit configuration names, with
// the public keys that verify its signatures.
type AuditSigner interface {
	audit.Signer
	// PublicKeys returns every public key of the signer (all versions of
	// a Transit key).
	PublicKeys(ctx context.Context) ([]ed25519.PublicKey, error)
}

// NewAuditSigner returns the signer of cfg: the Ed25519 key file, or the
// Vault Transit key reached through keys (which must then be the Vault
// provider).
func NewAuditSigner(cfg audit.Config, keys crypto.KeyProvider) (AuditSigner, error) {
	switch {
	case cfg.SigningKeyFile != "":
		s, err := audit.LoadSigningKey(cfg.SigningKeyFile)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return s, nil
	case cfg.SigningTransitKey != "":
		vp, ok := keys.(*crypto.VaultProvider)
		if !ok {
			return nil, errors.New("audit.signing_transit_key needs keys.provider: vault")
		}
		s, err := vp.TransitSigner(cfg.SigningTransitKey)
		if err != nil {
			return nil, fmt.Errorf("audit.signing_transit_key: %w", err)
		}
		return s, nil
	}
	return nil, errors.New("audit: " + audit.NoSigningKeyMsg)
}

// AuditPublicKeys returns the public keys of a signer as a verifier's key
// set.
func AuditPublicKeys(ctx context.Context, s AuditSigner) (audit.PublicKeys, error) {
	pubs, err := s.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := audit.PublicKeys{}
	for _, p := range pubs {
		keys.Add(p)
	}
	return keys, nil
}
