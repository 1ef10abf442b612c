package proxy

import (
	"fmt"
	"strings"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
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

// lockedStartup says why a restricted session's startup parameters would
// set a locked setting (as a parameter of its own, or in options' -c
// name=value and --name=value), or "" when none does. The server reports
// some settings back (ParameterStatus), not all: those it does not report
// are checked here.
func lockedStartup(params []wire.Param) string {
	check := func(name, value string) string {
		if why := sqlinfo.LockedSetting(name, value, true); why != "" {
			return "the startup parameters set " + name + " (" + why + ")"
		}
		return ""
	}
	for _, p := range params {
		if p.Key != "options" {
			if why := check(p.Key, p.Value); why != "" {
				return why
			}
			continue
		}
		f := strings.Fields(p.Value)
		for i := 0; i < len(f); i++ {
			arg := f[i]
			switch {
			case arg == "-c" && i+1 < len(f):
				i++
				arg = f[i]
			case strings.HasPrefix(arg, "-c"):
				arg = arg[2:]
			case strings.HasPrefix(arg, "--"):
				arg = arg[2:]
			default:
				continue
			}
			name, value, _ := strings.Cut(arg, "=")
			if why := check(strings.ReplaceAll(name, "-", "_"), value); why != "" {
				return why
			}
		}
	}
	return ""
}
