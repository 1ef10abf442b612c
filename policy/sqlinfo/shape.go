package sqlinfo

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A statement's shape is its text with the values of its literal
// constants cut out. BI tools and pgbench send the same statement again
// and again with other literals; a decision made once for the statement
// with those literals turned into parameters (its Template) then holds
// for every text of the shape, as it holds for every value a client can
// bind to a prepared statement's parameters. The cut uses PostgreSQL's
// own scanner (pg_query), so it follows the server's lexing: restricted
// sessions keep the lexing settings locked.

// Shape is a statement text with its constants cut out.
type Shape struct {
	// Key is the text with each cut constant replaced by NUL and its
	// kind. A Query or Parse string cannot hold NUL, so no key is ever
	// equal to a statement text.
	Key string
	// Consts are the cut constants, in text order.
	Consts []Const
}

// Const is one cut constant: its span in the text and its kind ('i' an
// integer, 'f' a numeric, 's' a string, 'b' a bit string).
type Const struct {
	Start, End int
	Kind       byte
}

// ShapeOf cuts the plain constants out of sql: decimal integers and
// numerics, quoted and dollar-quoted strings, bit strings. Constants in
// newer syntaxes that an older server reads otherwise (0x1F, 1_000,
// U&'…') stay in the key verbatim. ok is false when the scanner cannot
// read sql, when it has parameters of its own, or when it has nothing to
// cut.
func ShapeOf(sql string) (sh Shape, ok bool) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return Shape{}, false
	}
	var b strings.Builder
	b.Grow(len(sql))
	prev := 0
	for _, tok := range res.GetTokens() {
		start, end := int(tok.GetStart()), int(tok.GetEnd())
		if start < prev || end > len(sql) || start > end {
			return Shape{}, false
		}
		if tok.GetToken() == pg_query.Token_PARAM {
			return Shape{}, false
		}
		kind := constKind(tok.GetToken(), sql[start:end])
		if kind == 0 {
			continue
		}
		b.WriteString(sql[prev:start])
		b.WriteByte(0)
		b.WriteByte(kind)
		sh.Consts = append(sh.Consts, Const{Start: start, End: end, Kind: kind})
		prev = end
	}
	if len(sh.Consts) == 0 {
		return Shape{}, false
	}
	b.WriteString(sql[prev:])
	sh.Key = b.String()
	return sh, true
}

// constKind is the kind of a constant token ShapeOf cuts, or 0.
func constKind(t pg_query.Token, text string) byte {
	switch t {
	case pg_query.Token_ICONST:
		if allDigits(text) {
			return 'i'
		}
	case pg_query.Token_FCONST:
		if strings.Trim(text, "0123456789.eE+-") == "" {
			return 'f'
		}
	case pg_query.Token_SCONST:
		if text != "" && (text[0] == '\'' || text[0] == '$' || strings.HasPrefix(text, "E'") || strings.HasPrefix(text, "e'")) {
			return 's'
		}
	case pg_query.Token_BCONST, pg_query.Token_XCONST:
		return 'b'
	}
	return 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Template is a statement with the constants that stand for plain values
// turned into parameters.
type Template struct {
	// SQL is the text with those constants replaced by $1…$n.
	SQL string
	// Types are the parameters' types as PostgreSQL types such literals
	// (int4, int8 or numeric; bit; unknown for strings, resolved by
	// their context as a string literal's is).
	Types []uint32
	// Fixed marks, per constant of the shape, one that stayed in the text:
	// its value can change what the statement means (ORDER BY 1, a type
	// modifier, a negative number), so texts of the shape share the
	// template only with the same value there.
	Fixed []bool
}

// Type OIDs of the parameters a template's constants become.
const (
	oidUnknown = 0 // unspecified: resolved as an unknown-type literal is
	oidInt4    = 23
	oidInt8    = 20
	oidNumeric = 1700
	oidBit     = 1560
)

// TemplateOf builds the template of sql (parsed as tree, of shape sh). A
// constant becomes a parameter only where the parse shows it as a
// value: an A_Const node starting at the constant, outside ORDER BY,
// GROUP BY, DISTINCT ON, window definitions and type names, where
// PostgreSQL reads a constant as something other than a value. ok is
// false when no constant qualifies.
func TemplateOf(sql string, tree *pg_query.ParseResult, sh Shape) (Template, bool) {
	values := map[int]bool{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.SortBy, *pg_query.WindowDef, *pg_query.TypeName:
			return
		case *pg_query.TypeCast:
			// DATE '…', int4 '…': the grammar takes only a string
			// there (the cast has no location of its own or one before
			// the string).
			if c := x.GetArg().GetAConst(); c != nil && x.GetLocation() < c.GetLocation() {
				return
			}
		case *pg_query.A_Const:
			if !x.GetIsnull() {
				values[int(x.GetLocation())] = true
			}
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch fd.Name() {
			case "group_clause", "distinct_clause", "sort_clause", "window_clause":
				return true
			}
			switch {
			case fd.Message() == nil || fd.IsMap():
			case fd.IsList():
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message())
				}
			default:
				walk(v.Message())
			}
			return true
		})
	}
	for _, st := range tree.GetStmts() {
		walk(st.ProtoReflect())
	}
	t := Template{Fixed: make([]bool, len(sh.Consts))}
	var b strings.Builder
	prev := 0
	for i, c := range sh.Consts {
		if !values[c.Start] {
			t.Fixed[i] = true
			continue
		}
		b.WriteString(sql[prev:c.Start])
		t.Types = append(t.Types, paramType(c, sql[c.Start:c.End]))
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(len(t.Types)))
		prev = c.End
	}
	if len(t.Types) == 0 {
		return Template{}, false
	}
	b.WriteString(sql[prev:])
	t.SQL = b.String()
	if !sameTokens(sql, t) {
		return Template{}, false
	}
	if tt, err := pg_query.Parse(t.SQL); err != nil || len(tt.GetStmts()) != len(tree.GetStmts()) {
		return Template{}, false
	}
	return t, true
}

// sameTokens reports whether the scanner reads t.SQL as it reads sql with
// each templated constant replaced by one parameter token: a $n written
// against a keyword or name would join it into another token (DISTINCT.5
// would become the name distinct$1) and change the statement.
func sameTokens(sql string, t Template) bool {
	k := 0 // constants of the shape seen so far
	ok := tokensAlike(sql, t.SQL, func(tok pg_query.Token, text string) bool {
		if constKind(tok, text) == 0 {
			return false
		}
		k++
		return !t.Fixed[k-1]
	}, func(tok pg_query.Token, _ string) bool { return tok == pg_query.Token_PARAM })
	return ok && k == len(t.Fixed)
}

// tokensAlike reports whether the scanner reads a and b as the same tokens,
// except that where hole marks a token of a, b has one token that fits.
func tokensAlike(a, b string, hole func(pg_query.Token, string) bool, fits func(pg_query.Token, string) bool) bool {
	at, err := pg_query.Scan(a)
	if err != nil {
		return false
	}
	bt, err := pg_query.Scan(b)
	if err != nil || len(at.GetTokens()) != len(bt.GetTokens()) {
		return false
	}
	for i, x := range at.GetTokens() {
		y := bt.GetTokens()[i]
		xtext, ytext := a[x.GetStart():x.GetEnd()], b[y.GetStart():y.GetEnd()]
		if hole(x.GetToken(), xtext) {
			if !fits(y.GetToken(), ytext) {
				return false
			}
			continue
		}
		if x.GetToken() != y.GetToken() || xtext != ytext {
			return false
		}
	}
	return true
}

// paramType is the type PostgreSQL gives the literal text of c.
func paramType(c Const, text string) uint32 {
	switch c.Kind {
	case 'i':
		return oidInt4 // the scanner reads integers beyond int4 as numerics
	case 'f':
		if allDigits(text) {
			if _, err := strconv.ParseInt(text, 10, 64); err == nil {
				return oidInt8
			}
		}
		return oidNumeric
	case 'b':
		return oidBit
	}
	return oidUnknown
}

// FixedTexts are the texts of the constants of sh that t keeps fixed, in
// order (for comparing later texts of the shape with SameFixedTexts).
func FixedTexts(t Template, sql string, sh Shape) []string {
	var out []string
	for i, f := range t.Fixed {
		if f {
			out = append(out, sql[sh.Consts[i].Start:sh.Consts[i].End])
		}
	}
	return out
}

// SameFixedTexts reports whether sql (of shape sh) has the texts fixed
// at the constants fixed marks.
func SameFixedTexts(fixed []bool, texts []string, sql string, sh Shape) bool {
	if len(sh.Consts) != len(fixed) {
		return false
	}
	k := 0
	for i, f := range fixed {
		if !f {
			continue
		}
		if k >= len(texts) || sql[sh.Consts[i].Start:sh.Consts[i].End] != texts[k] {
			return false
		}
		k++
	}
	return k == len(texts)
}

// Literals are the texts of the constants of sh that a template with the
// fixed marks turned into parameters, in parameter order.
func Literals(fixed []bool, sql string, sh Shape) []string {
	var out []string
	for i, f := range fixed {
		if !f && i < len(sh.Consts) {
			out = append(out, sql[sh.Consts[i].Start:sh.Consts[i].End])
		}
	}
	return out
}

// Fillable is a template's rewritten text (the digest ordering of its
// statements, with $1…$n where the template has them) split at its
// parameters, so each text of the shape gets the rewrite with its own
// literals without another parse.
type Fillable struct {
	parts  []string
	params []int // 0-based literal index of each parameter, between parts
}

// SplitParams splits sql at its parameter tokens, which must be $1…$n.
func SplitParams(sql string, n int) (Fillable, bool) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return Fillable{}, false
	}
	var f Fillable
	prev := 0
	for _, tok := range res.GetTokens() {
		if tok.GetToken() != pg_query.Token_PARAM {
			continue
		}
		start, end := int(tok.GetStart()), int(tok.GetEnd())
		if start < prev || end > len(sql) || sql[start] != '$' {
			return Fillable{}, false
		}
		k, err := strconv.Atoi(sql[start+1 : end])
		if err != nil || k < 1 || k > n {
			return Fillable{}, false
		}
		f.parts = append(f.parts, sql[prev:start])
		f.params = append(f.params, k-1)
		prev = end
	}
	f.parts = append(f.parts, sql[prev:])
	return f, true
}

// Fill writes the text with each parameter replaced by its literal, set
// apart by blanks so that it cannot join a neighbouring token.
func (f Fillable) Fill(lits []string) (string, bool) {
	var b strings.Builder
	for i, p := range f.parts {
		b.WriteString(p)
		if i < len(f.params) {
			k := f.params[i]
			if k >= len(lits) {
				return "", false
			}
			b.WriteByte(' ')
			b.WriteString(lits[k])
			b.WriteByte(' ')
		}
	}
	return b.String(), true
}

// FilledAsWritten reports whether the scanner reads filled (a Fill of
// the rewritten template sql) as sql with each parameter token replaced
// by one constant token: the check a template's first text makes of the
// substitution before the rewrite is shared.
func FilledAsWritten(sql, filled string) bool {
	return tokensAlike(sql, filled, func(tok pg_query.Token, _ string) bool { return tok == pg_query.Token_PARAM },
		func(tok pg_query.Token, text string) bool { return constKind(tok, text) != 0 })
}
