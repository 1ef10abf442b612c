package sqlinfo

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// pgpseudo reads SQL with PostgreSQL 17's lexer and grammar, lexing UTF-8
// with standard_conforming_strings on. The server reads the same bytes with
// its own version's grammar and the session's settings. Where the two
// could disagree about what a byte or a word means, a restricted session
// either cannot make them disagree (the settings below are locked) or the
// statement is refused (keyword categories differ); docs/security.md.

// SafeClientEncoding reports whether a client_encoding value (any of
// PostgreSQL's spellings: letters and digits compared case-blind) is
// UTF-8, the only encoding a restricted session may use. Encodings whose
// multibyte characters can contain a quote or backslash byte (SJIS, BIG5,
// GBK, …) let a string literal end where pgpseudo's UTF-8 lexer sees it go
// on; every other encoding cannot represent some characters, so the
// server's conversion error on a value, or a token that changes with the
// encoding, would tell which characters a protected value holds.
func SafeClientEncoding(name string) bool {
	if name == "UTF8" {
		return true // what nearly every session reports
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		}
	}
	n := b.String()
	return n == "utf8" || n == "unicode"
}

// LockedSetting says why a restricted session may not change a setting,
// or "" when it may. value is the new value, ok false when it is not a
// constant (or the change is a RESET, which returns to the session's
// checked default: value "" and ok true).
func LockedSetting(name, value string, ok bool) string {
	switch strings.ToLower(name) {
	case "standard_conforming_strings":
		return "standard_conforming_strings stays on for restricted roles: with it off the server reads backslashes in string literals differently from pgpseudo"
	case "client_encoding", "names":
		if ok && (value == "" || SafeClientEncoding(value)) {
			return ""
		}
		return "client_encoding stays UTF8 for restricted roles: other encodings either let a character hide a quote or backslash byte, or cannot represent every value (conversion errors and tokens would reveal its characters)"
	case "plan_cache_mode":
		return "plan_cache_mode is used by pgpseudo's server-side check of statements"
	case "client_min_messages":
		switch strings.ToLower(value) {
		case "", "notice", "warning", "error", "default":
			if ok {
				return ""
			}
		}
		return "client_min_messages stays at notice or above for restricted roles: the server's LOG and DEBUG messages show statements as pgpseudo rewrote them, and sort and plan traces"
	}
	if n := strings.ToLower(name); strings.HasPrefix(n, "trace_") || strings.HasPrefix(n, "debug_") {
		return name + " is a developer setting: its output shows statements, plans and sorts"
	}
	return ""
}

// Keywords is a grammar's keyword list: word → category as
// pg_get_keywords() reports it ('U' unreserved, 'C' column name, 'T' type
// or function name, 'R' reserved).
type Keywords map[string]byte

// KeywordSkew is a word whose category differs between pgpseudo's parser
// and the server.
type KeywordSkew struct {
	Word           string
	Parser, Server byte // 0: not a keyword
}

// nameLike: no keyword, or an unreserved one.
func nameLike(c byte) bool { return c == 0 || c == 'U' }

var kindCategory = map[pg_query.KeywordKind]byte{
	pg_query.KeywordKind_UNRESERVED_KEYWORD:     'U',
	pg_query.KeywordKind_COL_NAME_KEYWORD:       'C',
	pg_query.KeywordKind_TYPE_FUNC_NAME_KEYWORD: 'T',
	pg_query.KeywordKind_RESERVED_KEYWORD:       'R',
}

// CheckKeywords reports the first word of sql whose keyword category
// differs between pgpseudo's parser and the server (server), where the
// difference can change what a statement means:
//
//   - A word that is an unreserved keyword in one grammar and no keyword in
//     the other is accepted wherever either accepts a name, and means that
//     name: columns called "path" or "source" keep working.
//   - A column-name keyword (json, json_scalar, … from PostgreSQL 16 and 17)
//     differs from a plain name only where a function or type name can
//     stand; as a type both mean the same type, so only the word followed
//     by "(" (a call in one grammar, a constructor in the other) is a skew.
//   - Every other difference is a skew: system_user is a reserved word
//     (the session's login) from PostgreSQL 16 on and a column name before.
//
// The server-side check of each statement still sees what the server made
// of it.
func CheckKeywords(sql string, server Keywords) (*KeywordSkew, error) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	toks := res.GetTokens()
	for i, tok := range toks {
		var parser byte
		switch {
		case tok.KeywordKind != pg_query.KeywordKind_NO_KEYWORD:
			parser = kindCategory[tok.KeywordKind]
		case tok.Token == pg_query.Token_IDENT:
		default:
			continue
		}
		if tok.Start < 0 || int(tok.End) > len(sql) || tok.Start >= tok.End {
			continue
		}
		text := sql[tok.Start:tok.End]
		if strings.HasPrefix(text, `"`) {
			continue // quoted identifiers are never keywords
		}
		word := strings.ToLower(text)
		srv := server[word]
		if srv == parser || nameLike(srv) && nameLike(parser) {
			continue
		}
		if (srv == 'C' || parser == 'C') && (nameLike(srv) || nameLike(parser)) &&
			!(i+1 < len(toks) && toks[i+1].Token == pg_query.Token_ASCII_40) {
			continue
		}
		return &KeywordSkew{Word: word, Parser: parser, Server: srv}, nil
	}
	return nil, nil
}
