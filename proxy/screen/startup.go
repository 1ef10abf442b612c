package screen

import (
	"strings"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// LockedStartup says why a restricted session's startup parameters would
// set a locked setting (as a parameter of its own, or in options' -c
// name=value and --name=value), or "" when none does. The server reports
// some settings back (ParameterStatus), not all: those it does not report
// are checked here.
func LockedStartup(params []wire.Param) string {
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
