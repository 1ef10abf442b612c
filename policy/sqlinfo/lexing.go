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

// safeClientEncodings are the client encodings, by their names with
// everything but letters and digits removed and lower-cased (as PostgreSQL
// compares them), whose multibyte characters never contain a byte below
// 0x80: in them a quote or backslash byte is always that character. SJIS,
// SHIFT_JIS_2004, BIG5, GBK, UHC, JOHAB and GB18030 are missing on
// purpose: their trailing bytes can be ASCII, so a string literal can end
// where a UTF-8 lexer sees it go on.
var safeClientEncodings = map[string]bool{
	"sqlascii": true, "utf8": true, "unicode": true, "muleinternal": true,
	"eucjp": true, "euccn": true, "euckr": true, "euctw": true, "eucjis2004": true,
	"latin1": true, "latin2": true, "latin3": true, "latin4": true, "latin5": true,
	"latin6": true, "latin7": true, "latin8": true, "latin9": true, "latin10": true,
	"iso88591": true, "iso88592": true, "iso88593": true, "iso88594": true, "iso88595": true,
	"iso88596": true, "iso88597": true, "iso88598": true, "iso88599": true, "iso885910": true,
	"iso885913": true, "iso885914": true, "iso885915": true, "iso885916": true,
	"koi8": true, "koi8r": true, "koi8u": true, "alt": true, "win": true,
	"win866": true, "windows866": true, "win874": true, "windows874": true,
	"win1250": true, "win1251": true, "win1252": true, "win1253": true, "win1254": true,
	"win1255": true, "win1256": true, "win1257": true, "win1258": true,
	"windows1250": true, "windows1251": true, "windows1252": true, "windows1253": true,
	"windows1254": true, "windows1255": true, "windows1256": true, "windows1257": true,
	"windows1258": true, "abc": true, "tcvn": true, "tcvn5712": true, "vscii": true,
}

// SafeClientEncoding reports whether a client_encoding value (any of
// PostgreSQL's spellings) lets no multibyte character hide a quote or a
// backslash.
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
	return safeClientEncodings[b.String()]
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
		return "client_encoding may only be set to an encoding in which no multibyte character can contain a quote or backslash byte (not SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC, JOHAB or GB18030)"
	case "plan_cache_mode":
		return "plan_cache_mode is used by pgpseudo's server-side check of statements"
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
