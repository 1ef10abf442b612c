package plancheck

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// exprKind says in what syntax a plan property writes its expressions.
type exprKind uint8

const (
	plainExpr  exprKind = iota // an expression
	sortExpr                   // an ORDER BY item (key [DESC] [NULLS …] [USING op])
	fromExpr                   // a FROM item (Function Call: f(x) or ROWS FROM (…))
	windowExpr                 // a WINDOW clause item (w AS (…))
)

// errUnreadable reports an expression of the plan pgpseudo cannot read: the
// statement is refused.
var errUnreadable = errors.New("the server's plan has an expression pgpseudo cannot read")

// Placeholder functions for what EXPLAIN prints outside SQL's grammar.
const (
	fnSubplan     = "pgpseudo_subplan"      // (SubPlan n), (hashed SubPlan n), (alternatives: …)
	fnSubplanCol  = "pgpseudo_subplan_col"  // (SubPlan n).colk
	fnInitplanCol = "pgpseudo_initplan_col" // (InitPlan n).colk
	fnAny         = "pgpseudo_any"          // ANY (x op (SubPlan n).col1), PostgreSQL 17 and later
)

// parseExpr reads one expression of the plan. Its words are checked
// against the server's keyword list too: the server prints names its own
// grammar does not need to quote.
func parseExpr(s string, kind exprKind, kw sqlinfo.Keywords) (*pg_query.Node, error) {
	text, err := placeholders(s)
	if err != nil {
		return nil, err
	}
	var sql string
	switch kind {
	case plainExpr:
		sql = "SELECT " + text
	case sortExpr:
		sql = "SELECT 1 ORDER BY " + text
	case fromExpr:
		sql = "SELECT * FROM " + text
	case windowExpr:
		sql = "SELECT 1 WINDOW " + text
	}
	if kw != nil {
		if skew, err := sqlinfo.CheckKeywords(sql, kw); err != nil || skew != nil {
			return nil, fmt.Errorf("%w: %q (a word the two grammars read differently)", errUnreadable, s)
		}
	}
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.GetStmts()) != 1 {
		return nil, fmt.Errorf("%w: %q", errUnreadable, s)
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if sel == nil || sel.GetWhereClause() != nil || len(sel.GetGroupClause()) > 0 || sel.GetHavingClause() != nil ||
		sel.GetWithClause() != nil || sel.GetLimitCount() != nil || len(sel.GetDistinctClause()) > 0 {
		return nil, fmt.Errorf("%w: %q", errUnreadable, s)
	}
	one := func(n int) bool { return n == 1 }
	switch kind {
	case plainExpr:
		if one(len(sel.GetTargetList())) && len(sel.GetFromClause()) == 0 && len(sel.GetSortClause()) == 0 && len(sel.GetWindowClause()) == 0 {
			if rt := sel.GetTargetList()[0].GetResTarget(); rt != nil && rt.GetName() == "" {
				return rt.GetVal(), nil
			}
		}
	case sortExpr:
		if one(len(sel.GetSortClause())) && len(sel.GetFromClause()) == 0 && len(sel.GetWindowClause()) == 0 {
			return sel.GetSortClause()[0], nil
		}
	case fromExpr:
		if one(len(sel.GetFromClause())) && len(sel.GetSortClause()) == 0 && len(sel.GetWindowClause()) == 0 {
			return sel.GetFromClause()[0], nil
		}
	case windowExpr:
		if one(len(sel.GetWindowClause())) && len(sel.GetFromClause()) == 0 && len(sel.GetSortClause()) == 0 {
			return sel.GetWindowClause()[0], nil
		}
	}
	return nil, fmt.Errorf("%w: %q", errUnreadable, s)
}

// placeholders rewrites the parts of EXPLAIN's expressions that are not
// SQL into calls of placeholder functions. It works on the scanner's
// tokens, so text inside literals and quoted names is never touched; the
// words it looks for are printed by EXPLAIN with capitals ("SubPlan"),
// which a name in the plan would only have quoted.
func placeholders(s string) (string, error) {
	res, err := pg_query.Scan(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q", errUnreadable, s)
	}
	toks := res.GetTokens()
	raw := func(i int) string {
		if i < 0 || i >= len(toks) {
			return ""
		}
		return s[toks[i].Start:toks[i].End]
	}
	var b strings.Builder
	last := int32(0)
	emit := func(from int32, text string, to int32) {
		b.WriteString(s[last:from])
		b.WriteString(text)
		last = to
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case raw(i) == "(" && raw(i+1) == "SubPlan" && isInt(raw(i+2)) && raw(i+3) == ")":
			emit(t.Start, subplanCall(raw(i+2), toks, i+4, s), colEnd(toks, i+4, s, toks[i+3].End))
			i = colSkip(toks, i+4, s)
		case raw(i) == "(" && raw(i+1) == "hashed" && raw(i+2) == "SubPlan" && isInt(raw(i+3)) && raw(i+4) == ")":
			emit(t.Start, subplanCall(raw(i+3), toks, i+5, s), colEnd(toks, i+5, s, toks[i+4].End))
			i = colSkip(toks, i+5, s)
		case raw(i) == "(" && raw(i+1) == "alternatives" && raw(i+2) == ":" && raw(i+3) == "SubPlan" && isInt(raw(i+4)) &&
			strings.EqualFold(raw(i+5), "or") && raw(i+6) == "hashed" && raw(i+7) == "SubPlan" && isInt(raw(i+8)) && raw(i+9) == ")":
			emit(t.Start, fnSubplan+"("+raw(i+4)+", "+raw(i+8)+")", toks[i+9].End)
			i += 9
		case raw(i) == "(" && raw(i+1) == "InitPlan" && isInt(raw(i+2)) && raw(i+3) == ")" && raw(i+4) == "." && strings.HasPrefix(raw(i+5), "col"):
			emit(t.Start, fnInitplanCol+"("+raw(i+2)+", "+strings.TrimPrefix(raw(i+5), "col")+")", toks[i+5].End)
			i += 5
		case strings.EqualFold(raw(i), "OVER") && raw(i+1) == "(" && raw(i+2) == "?" && raw(i+3) == ")":
			// PostgreSQL before 17 does not print window definitions; the
			// check treats every window function as ordered by anything.
			emit(t.Start, "OVER ()", toks[i+3].End)
			i += 3
		case (strings.EqualFold(raw(i), "ANY") || strings.EqualFold(raw(i), "ALL")) && raw(i-1) == "(" && raw(i+1) == "(":
			emit(t.Start, fnAny, t.End)
		case raw(i) == "SubPlan" || raw(i) == "InitPlan":
			return "", fmt.Errorf("%w: %q", errUnreadable, s)
		}
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// subplanCall is the placeholder for a subplan reference, with its column
// when one follows (".colk").
func subplanCall(n string, toks []*pg_query.ScanToken, after int, s string) string {
	if after+1 < len(toks) && s[toks[after].Start:toks[after].End] == "." {
		if c := s[toks[after+1].Start:toks[after+1].End]; strings.HasPrefix(c, "col") && isInt(c[3:]) {
			return fnSubplanCol + "(" + n + ", " + c[3:] + ")"
		}
	}
	return fnSubplan + "(" + n + ")"
}

// colEnd is where a subplan reference ends: after ".colk" if present.
func colEnd(toks []*pg_query.ScanToken, after int, s string, end int32) int32 {
	if after+1 < len(toks) && s[toks[after].Start:toks[after].End] == "." {
		if c := s[toks[after+1].Start:toks[after+1].End]; strings.HasPrefix(c, "col") && isInt(c[3:]) {
			return toks[after+1].End
		}
	}
	return end
}

// colSkip is the index of the last token of a subplan reference.
func colSkip(toks []*pg_query.ScanToken, after int, s string) int {
	if after+1 < len(toks) && s[toks[after].Start:toks[after].End] == "." {
		if c := s[toks[after+1].Start:toks[after+1].End]; strings.HasPrefix(c, "col") && isInt(c[3:]) {
			return after + 1
		}
	}
	return after - 1
}

func isInt(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
