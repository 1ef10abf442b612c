package sqlinfo

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A query inside a statement can cut, pick, number or frame rows among
// those that tie on its ORDER BY: a LIMIT or OFFSET below the statement's
// own result, DISTINCT ON, a window function that numbers rows or reads
// its neighbours, a window framed by ROWS. Among ties the server's order
// decides (physical, an index's, a hash's), and that order follows clear
// values. The digest ordering breaks such ties by a keyed digest of the
// query's own select list: rows that still tie then look alike to
// everything above the query, so which of them comes first shows nothing.

// TieSite is one query of a statement that decides something among ties.
type TieSite struct {
	// Select is the query's place in Selects.
	Select int
	// Limit: a LIMIT or OFFSET below the statement's own result.
	Limit bool
	// DistinctOn: DISTINCT ON picks one row of each group.
	DistinctOn bool
	// Windows are the inline windows of calls that number rows, read
	// neighbours or are framed by ROWS; Calls are those calls.
	Windows []*pg_query.WindowDef
	Calls   []*pg_query.FuncCall
	// Unbreakable says why the digest cannot break the query's ties (""
	// when it can).
	Unbreakable string

	sel *pg_query.SelectStmt
}

// Tie asks the digest ordering to break the ties of one site by a keyed
// digest of the select list entries Hash (by index) and of the positions
// (tableoid, ctid) of the rows of the tables referenced as RowsOf. With
// neither, the rows left to choose between look alike already.
type Tie struct {
	Select int
	Hash   []int
	// Tags are the entries' digest tags, in the order of Hash (see
	// DigestTag).
	Tags   []string
	RowsOf []string
	// Partial: Hash includes values that leave only in part, because the
	// rows' positions cannot be named.
	Partial bool
	// Release says, in the order of Hash, how to hash an entry that
	// leaves only in part as the part that leaves ("year", "month"; ""
	// as it is).
	Release []string
	// StoredKeys (GroupingsTie) are the queries (by place in Selects)
	// whose every grouping key is a table's column passed on: they need
	// no companions.
	StoredKeys []int
	// KeyAliases (GroupingsTie) are, by query, the GROUP BY names that
	// name select list entries rather than columns of FROM, as the
	// analysis resolved them.
	KeyAliases map[int][]string
}

// ReleasedForm is the SQL field of date_trunc that computes the part of a
// value that leaves, for a value whose one protected source is
// generalised to the year or the month ("" otherwise).
func ReleasedForm(kinds []string) string {
	if len(kinds) == 1 && (kinds[0] == "year" || kinds[0] == "month") {
		return kinds[0]
	}
	return ""
}

// released wraps a hashed value in the computation of its released part.
func released(field string, v *pg_query.Node) *pg_query.Node {
	if field == "" {
		return v
	}
	return pgCall("date_trunc", pg_query.MakeAConstStrNode(field, -1), proto.Clone(v).(*pg_query.Node))
}

// Selects lists the queries of a statement in a fixed order (depth first,
// in field order), the same for every parse of the same text.
func Selects(n *pg_query.Node) []*pg_query.SelectStmt {
	var out []*pg_query.SelectStmt
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if s, ok := m.Interface().(*pg_query.SelectStmt); ok {
			out = append(out, s)
		}
	})
	return out
}

// TopQuery is the query whose rows a statement returns (SELECT, DECLARE,
// PREPARE, COPY (query), EXPLAIN): its own LIMIT cuts after the digest
// ordering of the result.
func TopQuery(n *pg_query.Node) *pg_query.SelectStmt {
	switch {
	case n.GetSelectStmt() != nil:
		return n.GetSelectStmt()
	case n.GetDeclareCursorStmt() != nil:
		return n.GetDeclareCursorStmt().GetQuery().GetSelectStmt()
	case n.GetPrepareStmt() != nil:
		return n.GetPrepareStmt().GetQuery().GetSelectStmt()
	case n.GetCopyStmt() != nil:
		return n.GetCopyStmt().GetQuery().GetSelectStmt()
	case n.GetExplainStmt() != nil:
		return n.GetExplainStmt().GetQuery().GetSelectStmt()
	}
	return nil
}

// TieSites finds the queries of a statement that decide among ties.
func TieSites(n *pg_query.Node) []TieSite {
	top := TopQuery(n)
	sels := Selects(n)
	index := make(map[*pg_query.SelectStmt]int, len(sels))
	for i, s := range sels {
		index[s] = i
	}
	var sites []TieSite
	at := map[*pg_query.SelectStmt]int{}
	site := func(s *pg_query.SelectStmt) *TieSite {
		if i, ok := at[s]; ok {
			return &sites[i]
		}
		at[s] = len(sites)
		sites = append(sites, TieSite{Select: index[s], sel: s, Unbreakable: unbreakable(s)})
		return &sites[len(sites)-1]
	}
	var walk func(m protoreflect.Message, cur *pg_query.SelectStmt)
	walk = func(m protoreflect.Message, cur *pg_query.SelectStmt) {
		switch x := m.Interface().(type) {
		case *pg_query.SelectStmt:
			cur = x
			if x != top && (x.GetLimitCount() != nil || x.GetLimitOffset() != nil) {
				site(x).Limit = true
			}
			if d := x.GetDistinctClause(); len(d) > 0 && d[0].GetNode() != nil {
				site(x).DistinctOn = true
			}
		case *pg_query.FuncCall:
			if w := x.GetOver(); w != nil && cur != nil && TieBreakable(x) {
				st := site(cur)
				st.Windows, st.Calls = append(st.Windows, w), append(st.Calls, x)
				if w.GetRefname() != "" || w.GetName() != "" {
					st.Unbreakable = "a window function over a named window"
				}
			}
		}
		EachChild(m, func(c protoreflect.Message) bool {
			walk(c, cur)
			return true
		})
	}
	walk(n.ProtoReflect(), nil)
	return sites
}

// TieBreakable reports a window function call whose result depends on
// the order of rows that tie, and whose meaning does not change when the
// digest breaks those ties: functions that number rows or read neighbours
// (they ignore frames and peers), and any function framed by ROWS (a frame
// of rows, not of peers). rank(), RANGE and GROUPS frames count peers,
// which the digest would change.
func TieBreakable(f *pg_query.FuncCall) bool {
	w := f.GetOver()
	if w == nil {
		return false
	}
	switch funcLastName(f) {
	case "row_number", "ntile", "lag", "lead":
		return true
	}
	const frameRows, frameGroups = 0x4, 0x8 // FRAMEOPTION_ROWS, FRAMEOPTION_GROUPS
	return w.GetFrameOptions()&frameRows != 0 && w.GetFrameOptions()&frameGroups == 0
}

func funcLastName(f *pg_query.FuncCall) string {
	if fn := f.GetFuncname(); len(fn) > 0 {
		return strings.ToLower(fn[len(fn)-1].GetString_().GetSval())
	}
	return ""
}

// unbreakable says why the digest cannot be added to a query's orderings.
func unbreakable(s *pg_query.SelectStmt) string {
	switch {
	case s.GetOp() != pg_query.SetOperation_SETOP_NONE:
		return "a set operation's ORDER BY can only name its output columns"
	case len(s.GetValuesLists()) > 0:
		return "VALUES has no select list to break ties by"
	case len(s.GetDistinctClause()) > 0 && s.GetDistinctClause()[0].GetNode() == nil:
		return "SELECT DISTINCT can only be ordered by its output columns"
	}
	for _, t := range s.GetTargetList() {
		if cr := t.GetResTarget().GetVal().GetColumnRef(); cr != nil && isStarRef(cr) {
			return "a select list with * does not name the columns to break ties by"
		}
	}
	return ""
}

// TieHashable reports a select list entry the tie-breaking digest may
// hash: not a constant or parameter (the same for every row) and no
// window function (which a window's ORDER BY cannot contain).
func TieHashable(e *pg_query.Node) bool {
	for e.GetTypeCast() != nil {
		e = e.GetTypeCast().GetArg()
	}
	if e.GetAConst() != nil || e.GetParamRef() != nil {
		return false
	}
	ok := true
	Walk(e.ProtoReflect(), func(m protoreflect.Message) {
		if f, isCall := m.Interface().(*pg_query.FuncCall); isCall && f.GetOver() != nil {
			ok = false
		}
	})
	return ok
}

// breakTies adds the digest of each tie's select list entries as the last
// key of the orderings its query decides by.
func breakTies(raw *pg_query.RawStmt, ties []Tie, key string) error {
	if len(ties) == 0 {
		return nil
	}
	sites := TieSites(raw.GetStmt())
	bySelect := make(map[int]*TieSite, len(sites))
	for i := range sites {
		bySelect[sites[i].Select] = &sites[i]
	}
	for _, t := range ties {
		switch t.Select {
		case AggregatesTie:
			orderAggregates(raw.GetStmt(), key)
			continue
		case GroupingsTie:
			groupCompanions(raw.GetStmt(), t.StoredKeys, t.KeyAliases)
			continue
		}
		st := bySelect[t.Select]
		if st == nil {
			return fmt.Errorf("query %d decides nothing among ties", t.Select+1)
		}
		if st.Unbreakable != "" {
			return fmt.Errorf("query %d: %s", t.Select+1, st.Unbreakable)
		}
		targets := st.sel.GetTargetList()
		if len(t.Tags) != len(t.Hash) {
			return fmt.Errorf("query %d: %d tags for %d hashed entries", t.Select+1, len(t.Tags), len(t.Hash))
		}
		args := make([]*pg_query.Node, 0, 2*len(t.Hash))
		for k, i := range t.Hash {
			if i < 0 || i >= len(targets) || targets[i].GetResTarget() == nil {
				return fmt.Errorf("query %d has no select list entry %d", t.Select+1, i+1)
			}
			rel := ""
			if k < len(t.Release) {
				rel = t.Release[k]
			}
			args = append(args, DigestTag(t.Tags[k]), released(rel, targets[i].GetResTarget().GetVal()))
		}
		args = append(args, RowPositions(t.RowsOf)...)
		digest := func() *pg_query.Node { return tieDigest(key, args) }
		if (st.Limit || st.DistinctOn) && len(args) > 0 {
			if st.DistinctOn && len(st.sel.GetSortClause()) == 0 {
				// DISTINCT ON must lead the ORDER BY it is given.
				for _, d := range st.sel.GetDistinctClause() {
					st.sel.SortClause = append(st.sel.SortClause, sortBy(proto.Clone(d).(*pg_query.Node)))
				}
			}
			st.sel.SortClause = append(st.sel.SortClause, digest())
		}
		// A window function reads its arguments from rows the select
		// list may not show (sum(amount) OVER (ROWS …)): they are hashed
		// too.
		for _, f := range st.Calls {
			for _, a := range f.GetArgs() {
				if TieHashable(a) && !slices.ContainsFunc(args, func(b *pg_query.Node) bool { return SameExpr(a, b) }) {
					// Arguments are not in the select list; the server-side
					// check refuses one that carries protected values
					// without its tag.
					args = append(args, DigestTag(""), a)
				}
			}
		}
		if len(args) == 0 {
			continue
		}
		for _, w := range st.Windows {
			w.OrderClause = append(w.OrderClause, digest())
		}
	}
	return nil
}

// tieDigest is the ORDER BY item of the keyed digest of args.
func tieDigest(key string, args []*pg_query.Node) *pg_query.Node {
	row := &pg_query.RowExpr{RowFormat: pg_query.CoercionForm_COERCE_EXPLICIT_CALL}
	for _, a := range args {
		row.Args = append(row.Args, proto.Clone(a).(*pg_query.Node))
	}
	text := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg: &pg_query.Node{Node: &pg_query.Node_RowExpr{RowExpr: row}}, TypeName: catalogType("text")}}}
	keyConst := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg: pg_query.MakeAConstStrNode(`\x`+key, -1), TypeName: catalogType("bytea")}}}
	concat := &pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: &pg_query.A_Expr{Kind: pg_query.A_Expr_Kind_AEXPR_OP,
		Name:  []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode("||")},
		Lexpr: pgCall("convert_to", text, pg_query.MakeAConstStrNode("UTF8", -1)), Rexpr: keyConst}}}
	return sortBy(pgCall("sha256", concat))
}

func sortBy(n *pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: &pg_query.SortBy{Node: n,
		SortbyDir: pg_query.SortByDir_SORTBY_DEFAULT, SortbyNulls: pg_query.SortByNulls_SORTBY_NULLS_DEFAULT}}}
}

func catalogType(name string) *pg_query.TypeName {
	return &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode(name)}, Typemod: -1}
}

// RowPositions are the expressions that name a row of each table
// referenced by refs: its tableoid (for partitions and inheritance) and
// its ctid, after the tag of row positions.
func RowPositions(refs []string) []*pg_query.Node {
	var out []*pg_query.Node
	for _, r := range rowPositionRefs(refs) {
		out = append(out, DigestTag(RowTag), r)
	}
	return out
}

// rowPositionRefs are tableoid and ctid of each table referenced by refs.
func rowPositionRefs(refs []string) []*pg_query.Node {
	var out []*pg_query.Node
	for _, r := range refs {
		for _, col := range []string{"tableoid", "ctid"} {
			out = append(out, &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{
				Fields: []*pg_query.Node{pg_query.MakeStrNode(r), pg_query.MakeStrNode(col)}}}})
		}
	}
	return out
}

// RowTag is the digest tag of row positions: a tid typed in as a literal
// hashes under the empty tag, never like a row's own position.
const RowTag = "pgpseudo row position"

// DigestTag is the constant that precedes each value in the digest's
// ROW(…): the token domains the value comes from ("" for unprotected
// data), so that the same value from another source hashes differently.
func DigestTag(tag string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg: pg_query.MakeAConstStrNode(tag, -1), TypeName: catalogType("text")}}}
}

// AggregatesTie is the Tie.Select that asks for the statement's inexact
// aggregates to read their input in digest order (orderAggregates).
const AggregatesTie = -1

// OrderedAggregate reports a built-in aggregate whose result can depend
// on the order it reads rows in, so that the proxy gives it the digest
// order: over floats, rounding absorbs small values added after a large
// one (the sum of 2^54 and many 1.0 counts the rows read before the large
// one); min and max keep the later of two values that compare equal but
// print differently (1.0 and 1.00, 0 and -0, '1 day' and '24 hours'), and
// so name the row read last. count() is exact and left alone.
// Ordered-set and hypothetical-set calls (WITHIN GROUP) are not matched.
func OrderedAggregate(f *pg_query.FuncCall) bool {
	if f.GetAggWithinGroup() {
		return false
	}
	switch n := funcLastName(f); n {
	case "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
		"corr", "covar_pop", "covar_samp", "any_value", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or", "every",
		"string_agg", "array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg",
		"json_agg_strict", "jsonb_agg_strict", "json_object_agg_strict", "jsonb_object_agg_strict",
		"json_object_agg_unique", "jsonb_object_agg_unique", "json_object_agg_unique_strict", "jsonb_object_agg_unique_strict",
		"range_agg", "range_intersect_agg":
		return true
	default:
		return strings.HasPrefix(n, "regr_")
	}
}

// InexactWindowOrderable reports an inexact aggregate over a window whose
// frame is the whole partition (no ORDER BY, the default frame): it can
// read the partition in digest order without changing its result.
func InexactWindowOrderable(w *pg_query.WindowDef) bool {
	const frameDefault = 0x2 | 0x20 | 0x400 // RANGE UNBOUNDED PRECEDING AND CURRENT ROW
	return w.GetRefname() == "" && w.GetName() == "" && len(w.GetOrderClause()) == 0 &&
		(w.GetFrameOptions() == frameDefault || w.GetFrameOptions() == 0)
}

// orderAggregates gives every aggregate of a statement that can depend on
// the order it reads rows in (OrderedAggregate) the keyed digest of its
// arguments as the last key of its ORDER BY: rows then come in an order
// that follows no clear value and no position, and rows that still tie
// carry arguments that print alike, whose order changes nothing. An
// aggregate over a whole-partition window reads the partition in that
// order too (ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING is
// the same frame). DISTINCT calls (whose ORDER BY may only name their
// arguments) and other windows are left as they are: the analysis
// refuses them.
func orderAggregates(n *pg_query.Node, key string) {
	const frameWholeRows = 0x1 | 0x4 | 0x10 | 0x20 | 0x100
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		f, ok := m.Interface().(*pg_query.FuncCall)
		if !ok || !OrderedAggregate(f) || f.GetAggDistinct() || f.GetAggStar() || len(f.GetArgs()) == 0 {
			return
		}
		args := make([]*pg_query.Node, 0, 2*len(f.GetArgs()))
		for _, a := range f.GetArgs() {
			args = append(args, DigestTag(""), a)
		}
		switch w := f.GetOver(); {
		case w == nil:
			f.AggOrder = append(f.AggOrder, tieDigest(key, args))
		case InexactWindowOrderable(w):
			w.OrderClause = []*pg_query.Node{tieDigest(key, args)}
			w.FrameOptions = frameWholeRows
		}
	})
}
