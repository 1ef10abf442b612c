package crypto

import "errors"

// Sentinel errors; test for them with errors.Is.
var (
	// ErrUnsupported means a transformer cannot produce a valid value for the
	// requested PostgreSQL type and wire format. Returned by New only.
	ErrUnsupported = errors.New("unsupported transformer for this type and format")
	// ErrInvalidSpec means a transformer's options are inconsistent.
	ErrInvalidSpec = errors.New("invalid transformer spec")
	// ErrInvalidValue means a column value could not be parsed as its type
	// (e.g. a text date not in ISO DateStyle). The caller must not forward
	// the original value.
	ErrInvalidValue = errors.New("value cannot be parsed as its type")
	// ErrUnchanged means a transformer could not change a value (too few
	// digits to encrypt, invalid check digits, a float too large to round):
	// the value is withheld, never forwarded as it was.
	ErrUnchanged = errors.New("value withheld: the transform cannot change it")
	// ErrUnknownVersion means a key version is not in the keyset.
	ErrUnknownVersion = errors.New("unknown key version")
	// ErrNotReversible means a token or transformer cannot be reversed.
	ErrNotReversible = errors.New("not reversible")
	// ErrInvalidToken means a token is malformed, or was not made in this
	// domain with this keyset.
	ErrInvalidToken = errors.New("invalid token")

	// ErrNoKeyset means the provider has no keyset yet ("pgpseudo keys init").
	ErrNoKeyset = errors.New("no keyset found (run keys init)")
	// ErrKeysetExists means keys init was asked to overwrite a keyset.
	ErrKeysetExists = errors.New("a keyset already exists")
	// ErrInsecureKeyFile means a keyset file is readable by group or others.
	ErrInsecureKeyFile = errors.New("keyset file permissions are too open (want 0600)")
	// ErrCorruptKeyset means the stored keyset cannot be decoded or decrypted.
	ErrCorruptKeyset = errors.New("stored keyset is corrupt or was encrypted with another key")

	// ErrVaultUnavailable means Vault could not be reached or is not serving
	// (connection refused, timeout, 5xx, sealed).
	ErrVaultUnavailable = errors.New("vault unavailable")
	// ErrVaultSealed means Vault answered that it is sealed. Errors carrying
	// it also match ErrVaultUnavailable.
	ErrVaultSealed = errors.New("vault is sealed")
	// ErrPermissionDenied means Vault refused the operation (HTTP 403).
	ErrPermissionDenied = errors.New("vault permission denied")
	// ErrAuthFailed means logging in to Vault failed (bad token, role or
	// credentials).
	ErrAuthFailed = errors.New("vault authentication failed")

	// ErrInvalidConfig means the key provider configuration is invalid.
	ErrInvalidConfig = errors.New("invalid keys configuration")
)
