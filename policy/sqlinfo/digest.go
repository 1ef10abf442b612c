package sqlinfo

import (
	"fmt"
	"regexp"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// DigestAlias is the name of the subquery the digest ordering wraps.
const DigestAlias = "pgpseudo_q"

var hexKey = regexp.MustCompile(`^[0-9a-f]{32,128}$`)

// Outputs describes a statement's result columns for the digest ordering:
// their names in order (as the client must see them; "" when not known)
// and which of them the digest hashes.
type Outputs struct {
	Names []string
	Hash  []bool
	// ByName: Names are only the columns to hash, referenced by name, and
	// the wrapper keeps SELECT * (Hash unused).
	ByName bool
	// RowsOf are the tables (by reference) whose rows' positions the
	// digest hashes too (Tie.RowsOf), as hidden columns.
	RowsOf []string
	// Tags are the columns' digest tags (DigestTag), by position;
	// Release how to hash each as the part that leaves (Tie.Release).
	Tags    []string
	Release []string
	// SortTags are, for the statement's own ORDER BY items in order, the
	// digest tag of each key that is pseudonymised ("" for others): the
	// wrapper sorts such a key by its NULL-ness and its keyed digest.
	SortTags []string
}

// WithDigestOrderOf rewrites the statements of sql marked in which so that
// their rows come back ordered by a keyed digest of each row, never in an
// order that follows clear values (grouping, physical, index or merge
// order). key is the digest key in lower-case hex; it leaves the proxy
// only inside the statement. The result is the deparsed statements.
//
// With a statement's result columns known (outs[i], not ByName) the
// wrapper names every column by position and restores its name, so origins
// and names are unchanged, the digest leaves out the columns it must not
// hash whatever their names, and an ORDER BY on something that is not an
// output column moves out as a hidden sort key:
//
//	SELECT q.c1 AS "name1", … FROM (<statement>, <key> AS k1, …) q(c1, …, k1, …)
//	ORDER BY q.k1, …, sha256(ROW(q.c1, …)::text || key) [LIMIT …]
//
// Otherwise (nil: the whole row; ByName: the named columns) SELECT * of
// the statement is kept, and its ORDER BY, LIMIT and OFFSET move out only
// when the sort keys are output columns (KeepsOrder); else they stay
// inside and the server-side check refuses a LIMIT below the digest.
//
// ties[i] are the tie sites of statement i whose ties the digest breaks
// (see TieSite), whether or not the statement's own rows are reordered.
func WithDigestOrderOf(sql string, which []bool, outs []*Outputs, ties [][]Tie, key string) (string, error) {
	return Rewritten(sql, which, outs, ties, nil, nil, key)
}

// Rewritten is WithDigestOrderOf that also lifts the select-list entries
// lifts[i] of statement i's own query (PostOp): each becomes its bare
// column, under the name the server would have given the entry; and puts
// the clear values of drill-down literals drills[i] in their place
// (Drill).
func Rewritten(sql string, which []bool, outs []*Outputs, ties [][]Tie, lifts [][]Lift, drills [][]Drill, key string) (string, error) {
	if !hexKey.MatchString(key) {
		return "", fmt.Errorf("digest order: key is not hex")
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return "", fmt.Errorf("digest order: %w", err)
	}
	for i, raw := range tree.GetStmts() {
		// The client's own ORDER BY, before ties are broken: only its
		// keys order the result outside.
		clientKeys := 0
		if top := TopQuery(raw.GetStmt()); top != nil {
			clientKeys = len(top.GetSortClause())
		}
		if i < len(lifts) {
			if err := applyLifts(raw, lifts[i]); err != nil {
				return "", fmt.Errorf("statement %d: %w", i+1, err)
			}
		}
		if i < len(drills) {
			if err := applyDrills(raw, drills[i], key); err != nil {
				return "", fmt.Errorf("statement %d: %w", i+1, err)
			}
		}
		if i < len(ties) {
			if err := breakTies(raw, ties[i], key); err != nil {
				return "", fmt.Errorf("digest order: statement %d: %w", i+1, err)
			}
		}
		if i >= len(which) || !which[i] {
			continue
		}
		var o *Outputs
		if i < len(outs) {
			o = outs[i]
		}
		copyAsQuery(raw)
		slot := selectSlot(raw)
		if slot == nil || (*slot).GetSelectStmt() == nil {
			return "", fmt.Errorf("digest order: statement %d is not a query", i+1)
		}
		if o != nil && !o.ByName {
			w, err := wrapPositional((*slot).GetSelectStmt(), o, key, tree.GetVersion(), clientKeys)
			if err != nil {
				return "", fmt.Errorf("digest order: statement %d: %w", i+1, err)
			}
			*slot = w
			continue
		}
		var cols []string
		if o != nil {
			cols = o.Names
		}
		digest, err := digestSortBy(key, cols)
		if err != nil {
			return "", err
		}
		*slot = wrapDigest((*slot).GetSelectStmt(), digest, tree.GetVersion())
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", fmt.Errorf("digest order: deparse: %w", err)
	}
	return out, nil
}

// selectSlot returns where a statement keeps the query whose rows it
// returns.
func selectSlot(raw *pg_query.RawStmt) **pg_query.Node {
	switch x := raw.GetStmt().GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return &raw.Stmt
	case *pg_query.Node_DeclareCursorStmt:
		return &x.DeclareCursorStmt.Query
	case *pg_query.Node_CopyStmt:
		return &x.CopyStmt.Query
	case *pg_query.Node_PrepareStmt:
		return &x.PrepareStmt.Query
	}
	return nil
}

// KeepsOrder reports whether the digest ordering can be given to a
// statement without changing the order its client asked for: it has no
// ORDER BY, or every sort key is one of its output columns (the digest
// then only breaks ties). COPY of a table counts as a query.
func KeepsOrder(raw *pg_query.RawStmt, version int32) bool {
	if c := raw.GetStmt().GetCopyStmt(); c != nil {
		return !c.GetIsFrom() && c.GetFilename() == "" && !c.GetIsProgram() && (c.GetQuery() != nil || c.GetRelation() != nil) &&
			(c.GetQuery() == nil || keepsOrder(c.GetQuery().GetSelectStmt(), version))
	}
	slot := selectSlot(raw)
	return slot != nil && keepsOrder((*slot).GetSelectStmt(), version)
}

func keepsOrder(s *pg_query.SelectStmt, version int32) bool {
	if s == nil {
		return false
	}
	if len(s.GetSortClause()) == 0 {
		return true
	}
	_, ok := outerSortKeys(s, version)
	return ok
}

// copyAsQuery turns COPY table [(columns)] TO STDOUT into the same COPY
// of a query, SELECT columns FROM ONLY table, which the digest ordering
// can wrap; the output is the same rows in the same format.
func copyAsQuery(raw *pg_query.RawStmt) {
	c := raw.GetStmt().GetCopyStmt()
	if c == nil || c.GetQuery() != nil || c.GetRelation() == nil || c.GetIsFrom() {
		return
	}
	sel := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT}
	for _, a := range c.GetAttlist() {
		sel.TargetList = append(sel.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Val: &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{proto.Clone(a).(*pg_query.Node)}}}}}}})
	}
	if len(sel.TargetList) == 0 {
		sel.TargetList = []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Val: &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{
				Fields: []*pg_query.Node{{Node: &pg_query.Node_AStar{AStar: &pg_query.A_Star{}}}}}}}}}}}
	}
	rel := proto.Clone(c.GetRelation()).(*pg_query.RangeVar)
	rel.Inh = false // COPY of a table copies that table only
	sel.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: rel}}}
	c.Relation, c.Attlist = nil, nil
	c.Query = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
}

// digestSortBy is the ORDER BY item of the digest: of the whole row, or
// of the named columns only.
func digestSortBy(key string, columns []string) (*pg_query.Node, error) {
	row := "(" + DigestAlias + ".*)"
	if columns != nil {
		refs := make([]string, len(columns))
		for i, c := range columns {
			refs[i] = DigestAlias + "." + quoteIdent(c)
		}
		row = "ROW(" + strings.Join(refs, ", ") + ")"
	}
	t, err := pg_query.Parse("SELECT 1 ORDER BY pg_catalog.sha256(pg_catalog.convert_to(" + row +
		"::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) '\\x" + key + "'::pg_catalog.bytea)")
	if err != nil {
		return nil, fmt.Errorf("digest order: %w", err)
	}
	return t.GetStmts()[0].GetStmt().GetSelectStmt().GetSortClause()[0], nil
}

// wrapDigest wraps s in the digest ordering.
func wrapDigest(s *pg_query.SelectStmt, digest *pg_query.Node, version int32) *pg_query.Node {
	inner := proto.Clone(s).(*pg_query.SelectStmt)
	outer := &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Val: &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{
				Fields: []*pg_query.Node{{Node: &pg_query.Node_AStar{AStar: &pg_query.A_Star{}}}}}}}}}}},
		Op:          pg_query.SetOperation_SETOP_NONE,
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}
	if moved, ok := outerSortKeys(inner, version); ok {
		outer.SortClause = moved
		outer.LimitCount, outer.LimitOffset, outer.LimitOption = inner.GetLimitCount(), inner.GetLimitOffset(), inner.GetLimitOption()
		inner.SortClause, inner.LimitCount, inner.LimitOffset = nil, nil, nil
		inner.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
	}
	outer.SortClause = append(outer.SortClause, digest)
	outer.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: inner}},
		Alias:    &pg_query.Alias{Aliasname: DigestAlias},
	}}}}
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: outer}}
}

// wrapPositional wraps s naming its outputs by position (see
// WithDigestOrderOf); the first clientKeys items of its ORDER BY are the
// client's, the rest break ties inside.
func wrapPositional(s *pg_query.SelectStmt, o *Outputs, key string, version int32, clientKeys int) (*pg_query.Node, error) {
	if len(o.Names) != len(o.Hash) {
		return nil, fmt.Errorf("%d names for %d columns", len(o.Names), len(o.Hash))
	}
	inner := proto.Clone(s).(*pg_query.SelectStmt)
	setOp := inner.GetOp() != pg_query.SetOperation_SETOP_NONE
	if !setOp && len(inner.GetTargetList()) == 0 {
		return nil, fmt.Errorf("no select list")
	}
	// DISTINCT ON picks each group's row by the statement's ORDER BY: that
	// and the LIMIT stay inside; outside, the groups keep the order of
	// their leading keys (one row each), the digest breaks nothing else.
	distinctOn := len(inner.GetDistinctClause()) > 0 && inner.GetDistinctClause()[0].GetNode() != nil
	n := len(o.Names)
	col := func(name string) *pg_query.Node {
		return &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{
			pg_query.MakeStrNode(DigestAlias), pg_query.MakeStrNode(name)}}}}
	}
	cname := func(i int) string { return fmt.Sprintf("c%d", i+1) }
	// The statement's sort keys: an output column (by position, its unique
	// name, or the same expression) or a hidden key column.
	exprs := make([]string, 0, len(inner.GetTargetList()))
	for _, t := range inner.GetTargetList() {
		exprs = append(exprs, deparseExpr(t.GetResTarget().GetVal(), version))
	}
	count, position := map[string]int{}, map[string]int{}
	for i, nm := range o.Names {
		count[nm]++
		position[nm] = i + 1
	}
	byName := func(nm string) int {
		if nm != "" && count[nm] == 1 {
			return position[nm]
		}
		return 0
	}
	var keys []*pg_query.Node
	var hidden []string
	for j, item := range inner.GetSortClause()[:min(clientKeys, len(inner.GetSortClause()))] {
		sb := proto.Clone(item).(*pg_query.Node)
		k := sb.GetSortBy().GetNode()
		pos := 0
		switch {
		case k.GetAConst() != nil && k.GetAConst().GetIval() != nil:
			pos = int(k.GetAConst().GetIval().GetIval())
		case byName(singleName(k)) > 0:
			pos = byName(singleName(k))
		default:
			if d := deparseExpr(k, version); d != "" && len(exprs) == n {
				for i, e := range exprs {
					if e == d {
						pos = i + 1
						break
					}
				}
			}
		}
		var ref string
		switch {
		case pos >= 1 && pos <= n:
			ref = cname(pos - 1)
		case distinctOn:
			// ref stays empty: only the leading output keys order the groups.
		case setOp:
			return nil, fmt.Errorf("an ORDER BY of a set operation that is not an output column")
		case len(inner.GetDistinctClause()) > 0:
			// A hidden key would take part in the DISTINCT.
			return nil, fmt.Errorf("an ORDER BY of a SELECT DISTINCT that is not an output column")
		default:
			ref = fmt.Sprintf("k%d", len(hidden)+1)
			hidden = append(hidden, ref)
			inner.TargetList = append(inner.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
				Name: DigestAlias + "_" + ref, Val: proto.Clone(k).(*pg_query.Node)}}})
		}
		if ref == "" {
			break
		}
		if j < len(o.SortTags) && o.SortTags[j] != "" {
			keys = append(keys, digestSortKeys(sb.GetSortBy(), col(ref), o.SortTags[j], key)...)
			continue
		}
		sb.GetSortBy().Node = col(ref)
		keys = append(keys, sb)
	}
	outer := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT}
	if !distinctOn {
		outer.LimitOption, outer.LimitCount, outer.LimitOffset = inner.GetLimitOption(), inner.GetLimitCount(), inner.GetLimitOffset()
		inner.SortClause, inner.LimitCount, inner.LimitOffset = nil, nil, nil
		inner.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
	}
	if len(o.Tags) != len(o.Names) {
		return nil, fmt.Errorf("%d tags for %d columns", len(o.Tags), len(o.Names))
	}
	var hashed []*pg_query.Node // the digest's arguments: tag, value, …
	aliases := make([]*pg_query.Node, 0, n+len(hidden))
	for i, nm := range o.Names {
		if nm == "" {
			return nil, fmt.Errorf("the name of output column %d is not known", i+1)
		}
		aliases = append(aliases, pg_query.MakeStrNode(cname(i)))
		outer.TargetList = append(outer.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Name: nm, Val: col(cname(i))}}})
		if o.Hash[i] {
			rel := ""
			if i < len(o.Release) {
				rel = o.Release[i]
			}
			hashed = append(hashed, DigestTag(o.Tags[i]), released(rel, col(cname(i))))
		}
	}
	for _, h := range hidden {
		aliases = append(aliases, pg_query.MakeStrNode(h))
	}
	for i, p := range rowPositionRefs(o.RowsOf) {
		ref := fmt.Sprintf("r%d", i+1)
		inner.TargetList = append(inner.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Name: DigestAlias + "_" + ref, Val: p}}})
		aliases = append(aliases, pg_query.MakeStrNode(ref))
		hashed = append(hashed, DigestTag(RowTag), col(ref))
	}
	outer.SortClause = keys
	if len(hashed) > 0 {
		outer.SortClause = append(outer.SortClause, tieDigest(key, hashed))
	}
	outer.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: inner}},
		Alias:    &pg_query.Alias{Aliasname: DigestAlias, Colnames: aliases},
	}}}}
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: outer}}, nil
}

// digestSortKeys sort by a pseudonymised value v as sb asks (direction,
// NULLS FIRST/LAST) without its clear order: NULLs where they belong,
// then the values by their keyed digest under tag, which orders equal
// values together, the same way in every query of the role, so pages
// follow each other.
func digestSortKeys(sb *pg_query.SortBy, v *pg_query.Node, tag, key string) []*pg_query.Node {
	desc := sb.GetSortbyDir() == pg_query.SortByDir_SORTBY_DESC
	nullsFirst := desc
	switch sb.GetSortbyNulls() {
	case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
		nullsFirst = true
	case pg_query.SortByNulls_SORTBY_NULLS_LAST:
		nullsFirst = false
	}
	isNull := sortBy(&pg_query.Node{Node: &pg_query.Node_NullTest{NullTest: &pg_query.NullTest{
		Arg: proto.Clone(v).(*pg_query.Node), Nulltesttype: pg_query.NullTestType_IS_NULL}}})
	if nullsFirst {
		isNull.GetSortBy().SortbyDir = pg_query.SortByDir_SORTBY_DESC
	}
	digest := tieDigest(key, []*pg_query.Node{DigestTag(tag), v})
	if desc {
		digest.GetSortBy().SortbyDir = pg_query.SortByDir_SORTBY_DESC
	}
	return []*pg_query.Node{isNull, digest}
}

// outerSortKeys maps a query's ORDER BY onto the wrapper's output: a
// position stays a position, an output name a name, an expression of the
// select list its position. ok is false when a key cannot be mapped, or
// when the ORDER BY decides which rows DISTINCT ON keeps.
func outerSortKeys(s *pg_query.SelectStmt, version int32) ([]*pg_query.Node, bool) {
	if len(s.GetDistinctClause()) > 0 && s.GetDistinctClause()[0].GetNode() != nil {
		return nil, false // DISTINCT ON
	}
	names := map[string]int{}
	var exprs []string
	for _, t := range s.GetTargetList() {
		rt := t.GetResTarget()
		if rt == nil {
			return nil, false
		}
		if cr := rt.GetVal().GetColumnRef(); cr != nil && isStarRef(cr) && len(s.GetSortClause()) > 0 {
			return nil, false // positions after a star are not known here
		}
		name := rt.GetName()
		if name == "" {
			if cr := rt.GetVal().GetColumnRef(); cr != nil {
				f := cr.GetFields()
				name = f[len(f)-1].GetString_().GetSval()
			}
		}
		if name != "" {
			names[name]++
		}
		exprs = append(exprs, deparseExpr(rt.GetVal(), version))
	}
	var out []*pg_query.Node
	for _, item := range s.GetSortClause() {
		sb := proto.Clone(item).(*pg_query.Node)
		key := sb.GetSortBy().GetNode()
		switch {
		case key.GetAConst() != nil && key.GetAConst().GetIval() != nil:
		case singleName(key) != "" && names[singleName(key)] == 1:
		default:
			pos := -1
			if d := deparseExpr(key, version); d != "" {
				for i, e := range exprs {
					if e == d {
						pos = i + 1
						break
					}
				}
			}
			if pos < 0 {
				return nil, false
			}
			sb.GetSortBy().Node = &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{
				Val: &pg_query.A_Const_Ival{Ival: &pg_query.Integer{Ival: int32(pos)}}}}}
		}
		out = append(out, sb)
	}
	return out, true
}

func isStarRef(cr *pg_query.ColumnRef) bool {
	f := cr.GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

func singleName(n *pg_query.Node) string {
	if cr := n.GetColumnRef(); cr != nil && len(cr.GetFields()) == 1 {
		return cr.GetFields()[0].GetString_().GetSval()
	}
	return ""
}

// deparseExpr writes an expression as SQL ("" when it cannot), to compare
// expressions without their source locations.
func deparseExpr(n *pg_query.Node, version int32) string {
	tree := &pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: n}}}},
		Op:         pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}}}}}}
	s, err := pg_query.Deparse(tree)
	if err != nil {
		return ""
	}
	return s
}
