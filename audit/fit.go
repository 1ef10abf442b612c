package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// FitName makes s acceptable as a name field of a record (user, database,
// application_name, relation, column, domain): invalid UTF-8 is replaced,
// and a value longer than the limit keeps its start and ends with a digest
// of the whole value, so distinct long values stay distinct. Client-
// supplied names go through it: a record the proxy builds is never
// refused for a name a client chose.
func FitName(s string) string {
	if len(s) <= maxName && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxName {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "…sha256:" + hex.EncodeToString(sum[:8])
	keep := maxName - len(suffix)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + suffix
}

// FitCode makes s acceptable as a code field (kind, rule, reason, class,
// transformer): characters outside [A-Za-z0-9_.:-] become '_', a first
// character that is not a letter or digit is prefixed with 'x', and the
// result is cut to 64 bytes. An empty s stays empty.
func FitCode(s string) string {
	if s == "" || isCode(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		switch {
		case b.Len() == 0 && !alnum:
			b.WriteByte('x')
			if c == '_' || c == '.' || c == ':' || c == '-' {
				b.WriteByte(c)
			}
		case alnum, c == '_', c == '.', c == ':', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// Validate reports whether Write would accept ev (nil) or why not; the
// proxy's tests use it to show its records are valid by construction.
func Validate(ev Event) error {
	if ev == nil {
		return invalidf("nil event")
	}
	return ev.validate()
}
