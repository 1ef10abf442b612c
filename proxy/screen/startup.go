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
		for _, opt := range settingsOf(p.Value) {
			if why := check(opt[0], opt[1]); why != "" {
				return why
			}
		}
	}
	return ""
}

// postgresSwitches is the backend's command-line option string (its
// getopt letters; a colon marks one that takes an argument), as the
// server applies a startup packet's options.
const postgresSwitches = "B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:"

// settingsOf returns the name=value settings options gives, read as the
// server reads them: split like pg_split_opts (whitespace separates, a
// backslash takes the next character as it is), then walked like getopt
// (switches may be joined, "-Pc name=value"; an argument is the rest of
// its word or the next word), -c and -- naming settings, with '-' in a
// name read as '_'. Reading the text any other way would let an escaped
// or joined form set what the plain form may not.
func settingsOf(options string) [][2]string {
	var words []string
	var b strings.Builder
	inWord, escaped := false, false
	for _, r := range options {
		switch {
		case escaped:
			b.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inWord = true, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			if inWord {
				words, inWord = append(words, b.String()), false
				b.Reset()
			}
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, b.String())
	}
	var out [][2]string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if len(w) < 2 || w[0] != '-' {
			break // getopt stops at the first word that is not a switch
		}
		for j := 1; j < len(w); j++ {
			k := strings.IndexByte(postgresSwitches, w[j])
			if k < 0 {
				break
			}
			if k+1 >= len(postgresSwitches) || postgresSwitches[k+1] != ':' {
				continue // a switch without an argument
			}
			arg := w[j+1:]
			if arg == "" && i+1 < len(words) {
				i++
				arg = words[i]
			}
			if w[j] == 'c' || w[j] == '-' {
				name, value, _ := strings.Cut(arg, "=")
				out = append(out, [2]string{strings.ReplaceAll(name, "-", "_"), value})
			}
			break // the argument took the rest of the word
		}
	}
	return out
}
