package crypto

import (
	"context"
	"slices"
)

// AuditKey derives the key of the audit log's HMAC chain. It comes from
// the keyset's oldest version so that key rotation never changes it: one
// log stays verifiable with one key (the audit key is rotated by starting
// a new log).
func (k *Keyset) AuditKey() ([]byte, error) {
	versions := k.Versions()
	if len(versions) == 0 {
		return nil, ErrNoKeyset
	}
	oldest := slices.MinFunc(versions, func(a, b VersionInfo) int { return int(a.Version) - int(b.Version) }).Version
	s, err := k.derive(oldest, "audit-chain", "", 32)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// AuditKeySource adapts a KeyProvider to the audit writer's key source.
type AuditKeySource struct{ Provider KeyProvider }

// AuditKey implements audit.KeySource.
func (s AuditKeySource) AuditKey(ctx context.Context) ([]byte, error) {
	ks, err := s.Provider.Keyset(ctx)
	if err != nil {
		return nil, err
	}
	return ks.AuditKey()
}
