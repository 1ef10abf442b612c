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

// LightKey returns the key under which sql's Light description may be
// shared with other texts: sql with each number that is compared (after
// =, <, >) written as 0 or 0.0. Texts with one key differ only in those
// constants, which the fingerprint ignores and the normalised text
// replaces, so they are described alike. ok is false unless sql keeps to
// a small alphabet (letters, digits, blanks, _ , . ( ) * = < > ;) in
// which no quote, comment, dollar sign, escape or cast can start: there a
// digit always begins a number or continues a name, without a scanner.
// A key serves audit descriptions only, never a decision about data.
func LightKey(sql string) (key string, ok bool) {
	var b []byte // nil until a number is rewritten
	last := 0    // sql[last:] is not yet in b
	prev := byte(' ')
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case isDigit(c) && !isNameByte(prev) && prev != '.':
			j := digitsEnd(sql, i)
			frac := j < len(sql) && sql[j] == '.'
			if frac {
				if k := digitsEnd(sql, j+1); k > j+1 {
					j = k
				} else {
					j++ // "5." is kept as written
					prev, i = '.', j
					continue
				}
			}
			if j < len(sql) && (isNameByte(sql[j]) || sql[j] == '.') || !comparedAt(sql, i) {
				prev, i = sql[j-1], j // kept as written
				continue
			}
			if b == nil {
				b = make([]byte, 0, len(sql))
			}
			b = append(b, sql[last:i]...)
			b = append(b, '0')
			if frac {
				b = append(b, ".0"...)
			}
			last, prev, i = j, '0', j
			continue
		case isNameByte(c), c == ' ', c == '\t', c == '\n', c == '\r':
		case strings.IndexByte(",.()*=<>;", c) >= 0:
		default:
			return "", false
		}
		prev = c
		i++
	}
	if b == nil {
		return sql, true
	}
	return string(append(b, sql[last:]...)), true
}

// comparedAt reports whether the last byte before sql[i] other than a
// blank is a comparison's =, < or >.
func comparedAt(sql string, i int) bool {
	for i--; i >= 0; i-- {
		switch sql[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case '=', '<', '>':
			return true
		}
		return false
	}
	return false
}

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isNameByte reports whether c may continue a name or number in the
// alphabet LightKey accepts.
func isNameByte(c byte) bool {
	return c == '_' || isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
