package sqlinfo

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MaxNormalizedText bounds the statement text NormalizedText returns.
const MaxNormalizedText = 16 << 10

// NormalizedText returns a statement as the audit log shows it: every
// literal replaced by $n as pg_stat_statements shows statements
// (pg_query's normalisation), comments
// dropped, and whitespace runs collapsed to one space. The result is then
// rebuilt from the scanner's tokens, and any constant token the
// normalisation left (a grammar position it does not rewrite) becomes "?",
// so no literal survives whatever the normaliser does. Identifiers stay as
// the client wrote them. Text longer than MaxNormalizedText is cut at a
// token and ends in " …". It returns "" for text the scanner cannot read.
func NormalizedText(text string) string {
	n, err := pg_query.Normalize(text)
	if err != nil {
		n = text // the token pass below still removes every constant
	}
	scan, err := pg_query.Scan(n)
	if err != nil {
		return ""
	}
	var b strings.Builder
	prevEnd := int32(0)
	for _, tok := range scan.Tokens {
		if tok.Start < prevEnd || tok.End > int32(len(n)) || tok.Start > tok.End {
			return ""
		}
		switch tok.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			prevEnd = tok.End
			continue
		}
		if b.Len() > 0 && tok.Start > prevEnd {
			b.WriteByte(' ')
		}
		var s string
		switch tok.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
			s = "?"
		default:
			s = n[tok.Start:tok.End]
		}
		if b.Len()+len(s) > MaxNormalizedText {
			b.WriteString(" …")
			break
		}
		b.WriteString(s)
		prevEnd = tok.End
	}
	return b.String()
}
