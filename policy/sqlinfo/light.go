package sqlinfo

import (
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Light describes the statements of sql for audit records only: kind and
// fingerprint, without building a parse tree in Go. It is for sessions
// that need no analysis (roles that see everything), where a full Parse
// would dominate the cost of auditing.
func Light(sql string) ([]Statement, error) {
	parts, err := pg_query.SplitWithScanner(sql, true)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, 0, len(parts))
	for _, p := range parts {
		st := Statement{Kind: firstKeyword(p), Unanalysed: true}
		if fp, err := pg_query.Fingerprint(p); err == nil {
			st.Fingerprint, st.Text = fp, p
		}
		out = append(out, st)
	}
	return out, nil
}

// firstKeyword returns the statement's first keyword in the parse-node
// style ("Select", "Copy"), skipping comments, blanks and parentheses.
func firstKeyword(s string) string {
	for {
		s = strings.TrimLeftFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '(' })
		switch {
		case strings.HasPrefix(s, "--"):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
				continue
			}
			return "Empty"
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
				continue
			}
			return "Empty"
		}
		break
	}
	end := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(s)
	}
	w := strings.ToLower(s[:end])
	if w == "" {
		return "Empty"
	}
	return strings.ToUpper(w[:1]) + w[1:]
}
