// Package crypto holds pgpseudo's value transformers (tokens, format-preserving
// encryption, generalisation, masks) and the key providers that supply their
// keys (HashiCorp Vault for production, a file for demos and tests).
//
// The proxy builds one Transformer per output column when it plans a result
// set (New), then calls Transform on raw DataRow/CopyData bytes. Every
// unsupported (kind, type, format) combination is rejected by New, so policy
// load fails instead of queries.
//
// Keys come from a Keyset (a tink PRF keyset with numbered versions); every
// transformer derives its own subkey per token domain and key version once,
// at construction. Key material never appears in logs, errors or fmt output.
package crypto
