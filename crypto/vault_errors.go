package crypto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/hashicorp/vault/api"
)

// vaultErr wraps a Vault client error with the address, the operation and
// path, and the sentinel(s) that classify it, e.g.
//
//	vault at https://vault:8200: reading secret/data/pgpseudo/keyset: vault permission denied: <cause>
//
// It matches ErrVaultUnavailable, ErrVaultSealed, ErrPermissionDenied,
// ErrAuthFailed or ErrNoKeyset with errors.Is, and still unwraps to the
// client's own error.
func vaultErr(addr, op, path string, login bool, err error) error {
	kinds := classifyVault(err, login)
	prefix := fmt.Sprintf("vault at %s: %s %s", addr, op, path)
	switch len(kinds) {
	case 0:
		return fmt.Errorf("%s: %w", prefix, err)
	case 1:
		return fmt.Errorf("%s: %w: %w", prefix, kinds[0], err)
	}
	return fmt.Errorf("%s: %w (%w): %w", prefix, kinds[0], kinds[1], err)
}

func classifyVault(err error, login bool) []error {
	if errors.Is(err, api.ErrSecretNotFound) {
		return []error{ErrNoKeyset}
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		sealed := false
		for _, e := range re.Errors {
			if strings.Contains(strings.ToLower(e), "sealed") {
				sealed = true
			}
		}
		switch {
		case sealed:
			return []error{ErrVaultUnavailable, ErrVaultSealed}
		case re.StatusCode == 403 && login:
			return []error{ErrAuthFailed}
		case re.StatusCode == 403:
			return []error{ErrPermissionDenied}
		case re.StatusCode >= 500:
			return []error{ErrVaultUnavailable}
		case login && (re.StatusCode == 400 || re.StatusCode == 401):
			return []error{ErrAuthFailed}
		}
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	var (
		ue *url.Error
		oe *net.OpError
	)
	if errors.As(err, &ue) || errors.As(err, &oe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		return []error{ErrVaultUnavailable}
	}
	return nil
}
