// Package audit is pgpseudo's tamper-evident access log: the record types
// the proxy writes (connections, statements, policy loads, key rotations,
// detokenizations), the append-only JSON Lines writer with its HMAC chain,
// checkpoints, rotation and configurable durability, and the verifier,
// query and report used by auditors (docs/audit.md).
//
// The record types have typed fields only: literals, parameters and result
// values have no field to go into. Statement text is stored only as the
// normalised fingerprint the caller computes.
package audit
