package sqlinfo

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A grouping (GROUP BY, DISTINCT, ROLLUP and its kin) keeps, of the rows
// of a group, the key as the first row it reads had it. Values can compare
// equal and print differently (1.0 and 1.00, 0 and -0, '1 day' and
// '24 hours', text under a case-insensitive collation), and a computed key
// can be made to print differently on every row (round(1.0, f(row))):
// the kept key then names the first row read, physically or in a sort over
// clear values. The proxy adds to every key its companion, the key's text
// as bytes (in queries that group by more than stored columns): rows of a
// group then print their keys alike, so which of them the server read
// first cannot show.

// GroupingsTie is the Tie.Select that asks for every grouping key of a
// statement to be joined by its companion (GroupCompanion).
const GroupingsTie = -2

// GroupCompanion is the expression that compares equal exactly when e
// prints alike: its text as the type's own output function writes it
// (concat(); a cast to text trims char(n)'s spaces), as bytes (a COLLATE
// "C" would not show in the server's plan, and another collation could
// fold two spellings together).
func GroupCompanion(e *pg_query.Node) *pg_query.Node {
	return pgCall("convert_to", pgCall("concat", proto.Clone(e).(*pg_query.Node)), pg_query.MakeAConstStrNode("UTF8", -1))
}

// pgCall is a call of the built-in function name.
func pgCall(name string, args ...*pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
		Funcname: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode(name)}, Args: args,
		Funcformat: pg_query.CoercionForm_COERCE_EXPLICIT_CALL}}}
}

// CompanionOf returns the key a companion is the companion of (nil when e
// is not one), as the server prints it: convert_to(concat(x), 'UTF8') of
// the built-in functions (printed unqualified only when they are the ones
// their names find).
func CompanionOf(e *pg_query.Node) *pg_query.Node {
	conv := builtinCall(e, "convert_to", 2)
	if conv == nil {
		return nil
	}
	enc := conv.GetArgs()[1]
	for enc.GetTypeCast() != nil {
		enc = enc.GetTypeCast().GetArg()
	}
	if enc.GetAConst().GetSval().GetSval() != "UTF8" {
		return nil
	}
	if f := builtinCall(conv.GetArgs()[0], "concat", 1); f != nil {
		return f.GetArgs()[0]
	}
	return nil
}

// builtinCall is e as a plain call of the built-in function name with n
// arguments (nil otherwise).
func builtinCall(e *pg_query.Node, name string, n int) *pg_query.FuncCall {
	f := e.GetFuncCall()
	if f == nil || !builtinName(f.GetFuncname(), name) || len(f.GetArgs()) != n || f.GetAggStar() || f.GetOver() != nil ||
		f.GetFuncVariadic() || len(f.GetAggOrder()) > 0 || f.GetAggFilter() != nil {
		return nil
	}
	return f
}

// builtinName reports a name that is name, unqualified or in pg_catalog.
func builtinName(names []*pg_query.Node, name string) bool {
	switch len(names) {
	case 1:
		return names[0].GetString_().GetSval() == name
	case 2:
		return names[0].GetString_().GetSval() == "pg_catalog" && names[1].GetString_().GetSval() == name
	}
	return false
}

// groupCompanions adds the companion of every grouping key of every query
// of a statement: after the keys of GROUP BY, and inside ROLLUP, CUBE and
// GROUPING SETS next to the key in the same set. A SELECT DISTINCT that
// is a plain query over its select list becomes a GROUP BY of its select
// list with their companions; other DISTINCTs and set operations are left
// to the server-side check, which refuses computed keys without a
// companion.
//
// The queries at the positions in stored (in Selects) group only by
// columns of tables passed on, whose values are stored rather than
// computed by the statement: they are left alone. aliases are, by
// position, the GROUP BY names that name select list entries (the server
// prefers a column of FROM of the same name).
func groupCompanions(n *pg_query.Node, stored []int, aliases map[int][]string) {
	for i, s := range Selects(n) {
		switch {
		case slices.Contains(stored, i):
		case len(s.GetGroupClause()) > 0:
			s.GroupClause = withCompanions(s.GetGroupClause(), s.GetTargetList(), aliases[i])
		case distinctAsGrouping(s):
			var keys []*pg_query.Node
			for _, t := range s.GetTargetList() {
				if v := t.GetResTarget().GetVal(); v.GetAConst() == nil {
					keys = append(keys, proto.Clone(v).(*pg_query.Node))
				}
			}
			s.DistinctClause = nil
			s.GroupClause = withCompanions(keys, s.GetTargetList(), nil)
		}
	}
}

// withCompanions is a GROUP BY list with the companions of its keys.
func withCompanions(items, targets []*pg_query.Node, aliases []string) []*pg_query.Node {
	var comps []*pg_query.Node
	for _, it := range items {
		if gs := it.GetGroupingSet(); gs != nil {
			setCompanions(gs, targets, aliases)
			continue
		}
		if k := groupKeyExpr(it, targets, aliases); k != nil {
			comps = append(comps, GroupCompanion(k))
		}
	}
	return append(items, comps...)
}

// setCompanions pairs each key of a ROLLUP, CUBE or GROUPING SETS with its
// companion, as one element, so both are in or out of every set together.
func setCompanions(gs *pg_query.GroupingSet, targets []*pg_query.Node, aliases []string) {
	for i, el := range gs.GetContent() {
		switch {
		case el.GetGroupingSet() != nil:
			setCompanions(el.GetGroupingSet(), targets, aliases)
		case el.GetRowExpr() != nil && el.GetRowExpr().GetRowFormat() != pg_query.CoercionForm_COERCE_EXPLICIT_CALL:
			// A parenthesised list of keys: one element already.
			r := el.GetRowExpr()
			for _, a := range r.GetArgs() {
				if k := groupKeyExpr(a, targets, aliases); k != nil {
					r.Args = append(r.Args, GroupCompanion(k))
				}
			}
		default:
			if k := groupKeyExpr(el, targets, aliases); k != nil {
				gs.Content[i] = &pg_query.Node{Node: &pg_query.Node_RowExpr{RowExpr: &pg_query.RowExpr{
					Args: []*pg_query.Node{el, GroupCompanion(k)}, RowFormat: pg_query.CoercionForm_COERCE_IMPLICIT_CAST}}}
			}
		}
	}
}

// groupKeyExpr is the expression a GROUP BY item groups by: a position
// names a select list entry, and so does a lone name among aliases (the
// analysis found no column of FROM of that name). nil: a constant, which
// needs no companion.
func groupKeyExpr(it *pg_query.Node, targets []*pg_query.Node, aliases []string) *pg_query.Node {
	if c := it.GetAConst(); c != nil {
		if iv := c.GetIval(); iv != nil && !c.GetIsnull() {
			if p := int(iv.GetIval()); p >= 1 && p <= len(targets) {
				return targets[p-1].GetResTarget().GetVal()
			}
		}
		return nil
	}
	if cr := it.GetColumnRef(); cr != nil && len(cr.GetFields()) == 1 && cr.GetFields()[0].GetString_() != nil {
		name := cr.GetFields()[0].GetString_().GetSval()
		if slices.Contains(aliases, name) {
			for _, t := range targets {
				if rt := t.GetResTarget(); rt.GetName() == name {
					return rt.GetVal()
				}
			}
		}
	}
	return it
}

// distinctAsGrouping reports a SELECT DISTINCT that means the same as a
// GROUP BY of its select list: no grouping, aggregate or window of its
// own, no *, and some entry that is not a constant.
func distinctAsGrouping(s *pg_query.SelectStmt) bool {
	if d := s.GetDistinctClause(); len(d) != 1 || d[0].GetNode() != nil {
		return false
	}
	if s.GetOp() != pg_query.SetOperation_SETOP_NONE || len(s.GetValuesLists()) > 0 || s.GetHavingClause() != nil ||
		len(s.GetWindowClause()) > 0 {
		return false
	}
	keys := 0
	for _, t := range s.GetTargetList() {
		v := t.GetResTarget().GetVal()
		if cr := v.GetColumnRef(); cr != nil && isStarRef(cr) {
			return false
		}
		if v.GetAConst() == nil {
			keys++
		}
		ok := true
		Walk(v.ProtoReflect(), func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *pg_query.SelectStmt:
				ok = false // a subquery's own aggregates are not this query's; keep it simple
			case *pg_query.FuncCall:
				if x.GetOver() != nil || OrderedAggregate(x) || funcLastName(x) == "count" || x.GetAggWithinGroup() {
					ok = false
				}
			}
		})
		if !ok {
			return false
		}
	}
	return keys > 0
}

// UnpairedDedup names the de-duplication of a query whose keys the
// rewrite cannot pair with companions while some of them are not columns
// passed on: a set operation without ALL (whose arms may not even have
// constants, which the server-side check cannot tell from computed
// values), or a SELECT DISTINCT that is not a plain query over its select
// list, with an entry that is neither a column nor a constant. "" when
// there is none.
func UnpairedDedup(s *pg_query.SelectStmt) string {
	switch {
	case s.GetOp() != pg_query.SetOperation_SETOP_NONE && !s.GetAll():
		for _, arm := range []*pg_query.SelectStmt{s.GetLarg(), s.GetRarg()} {
			if arm.GetOp() == pg_query.SetOperation_SETOP_NONE && computedTargets(arm, false) {
				return strings.TrimPrefix(s.GetOp().String(), "SETOP_") + " without ALL"
			}
		}
	case groups(s) && len(s.GetGroupClause()) == 0 && !distinctAsGrouping(s) && computedTargets(s, true):
		return "SELECT DISTINCT"
	}
	return ""
}

func groups(s *pg_query.SelectStmt) bool {
	d := s.GetDistinctClause()
	return len(s.GetGroupClause()) > 0 || len(d) == 1 && d[0].GetNode() == nil
}

// Groups reports a query that groups or de-duplicates by GROUP BY or
// SELECT DISTINCT: its keys get their companions (GroupingsTie).
func Groups(s *pg_query.SelectStmt) bool { return groups(s) }

// computedTargets reports a select list (or VALUES list) with an entry
// that is not a column passed on (nor, with constants, a constant or a
// parameter).
func computedTargets(s *pg_query.SelectStmt, constants bool) bool {
	if len(s.GetValuesLists()) > 0 {
		return true
	}
	for _, t := range s.GetTargetList() {
		v := t.GetResTarget().GetVal()
		if constants {
			for v.GetTypeCast() != nil {
				v = v.GetTypeCast().GetArg()
			}
		}
		if v.GetColumnRef() == nil && !(constants && (v.GetAConst() != nil || v.GetParamRef() != nil)) {
			return true
		}
	}
	return false
}

// GroupingSets is how many grouping sets a GROUP BY list expands to
// (ROLLUP of n keys is n+1, CUBE 2^n, a list the product of its items), up
// to max+1: the server plans and computes each set on its own, and
// thousands keep it busy beyond cancelling.
func GroupingSets(items []*pg_query.Node, max int) int {
	total := 1
	for _, it := range items {
		total = min(total*setsOf(it, max), max+1)
	}
	return total
}

func setsOf(n *pg_query.Node, max int) int {
	gs := n.GetGroupingSet()
	if gs == nil {
		return 1
	}
	switch gs.GetKind() {
	case pg_query.GroupingSetKind_GROUPING_SET_ROLLUP:
		return min(len(gs.GetContent())+1, max+1)
	case pg_query.GroupingSetKind_GROUPING_SET_CUBE:
		if len(gs.GetContent()) >= 31 {
			return max + 1
		}
		return min(1<<len(gs.GetContent()), max+1)
	case pg_query.GroupingSetKind_GROUPING_SET_SETS:
		sum := 0
		for _, c := range gs.GetContent() {
			sum = min(sum+setsOf(c, max), max+1)
		}
		return sum
	}
	return 1
}
