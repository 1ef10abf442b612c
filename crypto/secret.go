package crypto

import "fmt"

// secret holds derived key bytes. Its formatting methods never print the
// bytes, so a stray %v, %#v or %s in a log line or error cannot leak them.
type secret []byte

// String implements fmt.Stringer without revealing the key.
func (secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer without revealing the key.
func (secret) GoString() string { return "[redacted]" }

// Format implements fmt.Formatter so every verb (%x, %q, %v…) is redacted.
func (secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// redacted is embedded in structs that hold keys or ciphers so that printing
// the struct, with any verb, shows only its type name.
type redacted struct{}

// Format implements fmt.Formatter.
func (redacted) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("{redacted}")) }
