package proxy

import (
	"fmt"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// lexingUnsafe says why the session's settings would let the server read
// SQL text differently from pgpseudo's lexer (UTF-8,
// standard_conforming_strings on), or "" when they do not. The values are
// the server's own, from ParameterStatus: startup options, role and
// database settings and SET all end up there.
func (s *session) lexingUnsafe() string {
	if v := s.trk.Param("standard_conforming_strings"); v != "on" {
		return fmt.Sprintf("the server reports standard_conforming_strings = %q for this session", v)
	}
	if v := s.trk.Param("client_encoding"); !sqlinfo.SafeClientEncoding(v) {
		return fmt.Sprintf("the server reports client_encoding = %q for this session; restricted sessions use UTF8", v)
	}
	return ""
}

// lexingRefusal is the FATAL error that ends a restricted session whose
// lexing settings are unsafe.
func lexingRefusal(role, why string) error {
	return refuse(codeInsufficientPriv, "pgpseudo: "+why+"; role "+role+
		" may not use it (rule: restricted sessions keep standard_conforming_strings on and client_encoding UTF8)", nil)
}
