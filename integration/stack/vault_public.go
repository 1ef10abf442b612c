package stack

import "context"

// StartVault starts a separate Vault dev server whose files live in dir,
// tied to ctx, for tests that must stop Vault without disturbing the
// shared stack's server. Stop it with (*Vault).Stop.
func StartVault(ctx context.Context, dir string) (*Vault, error) {
	return startVault(ctx, dir, false)
}
