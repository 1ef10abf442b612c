package analyze

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// column is a named column of a range table entry or query output.
type column struct {
	name string
	val  value
	// uncertain: the name PostgreSQL gives this output is not known (an
	// expression whose naming the port does not cover): it may answer to
	// any name.
	uncertain bool
}

// rte is a range table entry: something in FROM that exposes columns.
type rte struct {
	// name qualifies columns ("" for an unaliased join or subquery);
	// schema is set for an unaliased relation (schema.table.column).
	name, schema string
	cols         []column
	// unknown: the column list is not known (system relations, set
	// returning functions); any name may be a column, of value unknownVal.
	unknown    bool
	unknownVal value
	// relVisible: name can qualify columns; colsVisible: columns can be
	// referenced unqualified (false for the inputs of a join, whose join
	// entry exposes them).
	relVisible, colsVisible bool
	// baseRel: a table, which also has system columns; sysRule is set for
	// a table the role does not see in clear, whose system columns (but
	// tableoid) count as blocked: where rows lie follows their clear
	// values (keys are inserted in order).
	baseRel bool
	sysRule string
	sysRoot policy.TableName
	// rowIDs: a table or partitioned table, whose rows have a tableoid
	// and ctid that name them; join: the entry of a JOIN.
	rowIDs, join bool
}

// isSystemColumn: system columns exist on every table and carry no user
// data.
func isSystemColumn(name string) bool {
	switch name {
	case "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid":
		return true
	}
	return false
}

// column looks a column up by name; duplicates (joins without USING)
// are merged.
func (r *rte) column(name string) (column, bool) {
	var found []value
	for _, c := range r.cols {
		if c.name == name {
			found = append(found, c.val)
		}
	}
	switch {
	case len(found) > 0:
		return column{name: name, val: one(found)}, true
	case r.baseRel && isSystemColumn(name):
		if r.sysRule != "" && name != "tableoid" {
			return column{name: name, val: value{origin: originBase, srcs: []*source{{table: r.sysRoot, column: name,
				dec: policy.Decision{Action: policy.Block, Column: name, Rule: r.sysRule}, domain: r.sysRoot.String() + "." + name}}}}, true
		}
		return column{name: name}, true
	case r.unknown:
		return column{name: name, val: r.unknownVal}, true
	}
	return column{}, false
}

// whole is the value of a whole-row reference to the entry.
func (r *rte) whole(name string) value {
	vs := make([]value, 0, len(r.cols)+1)
	for _, c := range r.cols {
		vs = append(vs, c.val)
	}
	if r.unknown {
		vs = append(vs, r.unknownVal)
	}
	v := merge(vs...)
	v.origin, v.wholeRow = originNone, name
	return v
}

// scope is one query level's namespace; parent is the enclosing level
// (for correlated references).
type scope struct {
	parent *scope
	ns     []*rte
	ctes   map[string]*cteInfo
	// setting is the parameter name a query over pg_settings is limited
	// to by WHERE name = '…' (pg_dump's set_config(name, …) idiom).
	setting string
}

type cteInfo struct {
	cols []column
	// pending: a recursive CTE's columns are still being computed.
	pending bool
}

func (sc *scope) lookupCTE(name string) *cteInfo {
	for s := sc; s != nil; s = s.parent {
		if c := s.ctes[name]; c != nil {
			return c
		}
	}
	return nil
}

// level says where a query's result goes.
type level uint8

const (
	levelTop     level = iota // to the client
	levelDerived              // to an enclosing query (FROM subquery, CTE)
	levelSub                  // to a sublink (EXISTS, IN, scalar)
	levelView                 // a view's definition
)

// query analyses a SELECT (or VALUES, or set operation) and returns its
// output columns.
func (a *analyzer) query(parent *scope, s *pg_query.SelectStmt, lvl level) ([]column, error) {
	if s == nil {
		return nil, &Refusal{Reason: "an empty query", Rule: "statements pgpseudo cannot analyse are refused"}
	}
	sc := &scope{parent: parent}
	if w := s.GetWithClause(); w != nil {
		if err := a.with(sc, w); err != nil {
			return nil, err
		}
	}
	if s.GetIntoClause() != nil {
		return nil, &Refusal{StatementKind: "SelectInto", Reason: "SELECT INTO creates a table", Rule: "restricted roles may only run read statements"}
	}
	if len(s.GetLockingClause()) > 0 {
		return nil, &Refusal{Reason: "SELECT … FOR UPDATE/SHARE locks rows", Rule: "restricted roles may only run read statements; row locks write to the rows they lock"}
	}
	if s.GetOp() != pg_query.SetOperation_SETOP_NONE {
		return a.setOp(sc, s, lvl)
	}
	var outs []column
	if len(s.GetValuesLists()) > 0 {
		for _, row := range s.GetValuesLists() {
			for i, item := range row.GetList().GetItems() {
				v, err := a.expr(sc, item, ctx{clause: "VALUES", use: usePass})
				if err != nil {
					return nil, err
				}
				v.origin, v.via = originNone, "VALUES"
				if i >= len(outs) {
					outs = append(outs, column{name: fmt.Sprintf("column%d", i+1), val: v})
				} else {
					outs[i].val = merge(outs[i].val, v)
				}
			}
		}
		return outs, a.finish(sc, s, outs, lvl)
	}
	for _, item := range s.GetFromClause() {
		ns, err := a.fromItem(sc, item, sc)
		if err != nil {
			return nil, err
		}
		sc.ns = append(sc.ns, ns...)
	}
	if w := s.GetWhereClause(); w != nil {
		if _, err := a.expr(sc, w, ctx{clause: "WHERE", use: useOther}); err != nil {
			return nil, err
		}
		sc.setting = settingFilter(sc, w)
	}
	// Select list entries a tie-breaking digest hashes: those that leave
	// as they are or one to one, and those that leave in part (masked,
	// generalised).
	hash, partial := []int{}, []int{}
	tags := map[int]string{}
	lifting := lvl == levelTop && a.liftable != liftNone && liftsAllowed(s)
	for i, t := range s.GetTargetList() {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.GetVal().GetColumnRef(); cr != nil && isStar(cr) {
			cols, err := a.expandStar(sc, cr)
			if err != nil {
				return nil, err
			}
			outs = append(outs, cols...)
			continue
		}
		if lifting {
			if l, v, ok := a.lift(sc, s, rt, i, len(outs)); ok {
				a.lifts = append(a.lifts, l)
				outs = append(outs, column{name: l.Name, val: v})
				hash = append(hash, i)
				tags[i] = digestTag(v)
				continue
			}
		}
		v, err := a.expr(sc, rt.GetVal(), ctx{clause: "the select list", use: usePass})
		var ref *Refusal
		if lvl == levelView && errors.As(err, &ref) {
			// A view column computed from protected data: refused where
			// it is used, not for the whole view.
			v, err = value{taint: ref}, nil
		}
		if err != nil {
			return nil, err
		}
		name, certain := outputName(rt)
		outs = append(outs, column{name: name, val: v, uncertain: !certain})
		switch {
		case !sqlinfo.TieHashable(rt.GetVal()) || blockedValue(v):
		case withheld(v):
			partial = append(partial, i)
		default:
			hash = append(hash, i)
		}
		tags[i] = digestTag(v)
	}
	if lvl != levelView && a.tieHash != nil {
		// The last analysis of a recursive CTE's query counts.
		a.tieHash[s] = tieBreak(s, sc.ns, outs, hash, partial, tags)
	}
	if n := sqlinfo.GroupingSets(s.GetGroupClause(), maxGroupingSets); n > maxGroupingSets {
		return nil, &Refusal{Clause: "GROUP BY", Reason: fmt.Sprintf("it expands to more than %d grouping sets", maxGroupingSets),
			Rule: fmt.Sprintf("restricted roles may group by at most %d grouping sets per query: the server plans and computes each on its own, and thousands keep it busy beyond cancelling", maxGroupingSets)}
	}
	keys := groupKeys{stored: true}
	for _, g := range s.GetGroupClause() {
		if err := a.groupItem(sc, g, outs, &keys); err != nil {
			return nil, err
		}
	}
	if h := s.GetHavingClause(); h != nil {
		if _, err := a.expr(sc, h, ctx{clause: "HAVING", use: useOther}); err != nil {
			return nil, err
		}
	}
	for _, w := range s.GetWindowClause() {
		if err := a.windowDef(sc, w.GetWindowDef()); err != nil {
			return nil, err
		}
	}
	if d := s.GetDistinctClause(); len(d) > 0 {
		if len(d) == 1 && (d[0] == nil || d[0].Node == nil) {
			for _, o := range outs {
				if err := a.check(o.val, ctx{clause: "DISTINCT", use: useGroup}); err != nil {
					return nil, err
				}
				keys.stored = keys.stored && storedColumn(o.val)
			}
		} else {
			for _, n := range d {
				if _, err := a.sortItem(sc, n, outs, ctx{clause: "DISTINCT ON", use: useGroup}); err != nil {
					return nil, err
				}
			}
		}
	}
	if a.storedKeys != nil {
		prev, seen := a.storedKeys[s]
		a.storedKeys[s] = keys.stored && (prev || !seen)
		a.keyAliases[s] = keys.aliases
	}
	return outs, a.finish(sc, s, outs, lvl)
}

// maxGroupingSets bounds ROLLUP, CUBE and GROUPING SETS for restricted
// roles (a CUBE of six keys is 64 sets).
const maxGroupingSets = 64

// storedColumn reports a value that is a base table's column passed on
// unchanged: its values are stored, not computed by the statement.
func storedColumn(v value) bool {
	return v.origin == originBase && !v.mixed && v.taint == nil && v.unresolved == "" && v.wholeRow == ""
}

// tieBreak decides what breaks ties among the rows of query s: its select
// list entries that leave as they are or one to one, and, when some
// entry leaves only in part (masked, generalised: it shows, but not all
// of it), which row each comes from. Hashing the partial value itself
// would order rows by the part that does not leave and show which hidden
// values are equal; hashing nothing would leave them in the server's
// order. So the digest takes the rows' positions (tableoid and ctid of
// each protected table at this level), which are unique and tell nothing
// once hashed; where a row's origin cannot be named (a subquery, view or
// CTE in FROM, an aliased join, a grouping), the partial values are
// hashed after all.
func tieBreak(s *pg_query.SelectStmt, ns []*rte, outs []column, hash, partial []int, tags map[int]string) sqlinfo.Tie {
	t := sqlinfo.Tie{Hash: hash}
	partialOut := false
	for _, o := range outs {
		partialOut = partialOut || withheld(o.val) && !blockedValue(o.val)
	}
	ids, ok := rowIdentity(ns)
	plainDistinct := len(s.GetDistinctClause()) > 0 && s.GetDistinctClause()[0].GetNode() == nil
	ok = ok && len(s.GetGroupClause()) == 0 && s.GetHavingClause() == nil && !plainDistinct
	switch {
	case partialOut && ok:
		t.RowsOf = ids
	case partialOut:
		t.Hash = append(append([]int{}, hash...), partial...)
		slices.Sort(t.Hash)
		t.Partial = true
	case len(hash) == 0 && ok:
		// Nothing to hash (every entry blocked or constant): the rows
		// look alike, but unsorted they would stream in the server's
		// order, and how many arrive before an error shows where the
		// failing row lies. Sorted by their positions, all are read
		// before the first one leaves.
		t.RowsOf = ids
	}
	for _, i := range t.Hash {
		t.Tags = append(t.Tags, tags[i])
		t.Release = append(t.Release, "")
		if t.Partial {
			t.Release[len(t.Release)-1] = releasedForm(outs, s, i)
		}
	}
	return t
}

// releasedForm is how the digest may hash a value that leaves only in
// part as the part that leaves (a generalisation to the year or month is
// date_trunc of the same field): rows that look alike then tie, and
// rows with equal hidden values no longer hash alike. "" when the value
// must be hashed as it is.
func releasedForm(outs []column, s *pg_query.SelectStmt, i int) string {
	// outs follow the select list one to one here: tie sites have no *.
	if i >= len(outs) || len(s.GetTargetList()) != len(outs) {
		return ""
	}
	return sqlinfo.ReleasedForm(kindsOf(outs[i].val))
}

// kindsOf are the transforms of a value's protected sources.
func kindsOf(v value) []string {
	var ks []string
	for _, src := range v.srcs {
		ks = append(ks, string(src.dec.Spec.Kind))
	}
	return ks
}

// digestTag names where a hashed value comes from: the token domains of
// the protected columns that flow into it ("" for unprotected data). The
// digest hashes the tag with the value, so a value typed in as a literal
// (a guess) never hashes like the same value read from a protected
// column: the order of rows cannot be matched against guesses.
func digestTag(v value) string {
	var ds []string
	for _, s := range v.srcs {
		if !slices.Contains(ds, s.domain) {
			ds = append(ds, s.domain)
		}
	}
	slices.Sort(ds)
	return strings.Join(ds, ",")
}

// rowIdentity names the protected tables of one query level by the
// reference that reaches their system columns; ok is false when a row
// carrying protected values cannot be traced to such a table.
func rowIdentity(ns []*rte) (names []string, ok bool) {
	for _, r := range ns {
		switch {
		case r.join:
			// Its columns are those of the entries it joins, listed too.
		case r.baseRel && r.sysRule != "":
			if !r.relVisible || r.name == "" || !r.rowIDs {
				return nil, false
			}
			names = append(names, r.name)
		case r.baseRel:
		default:
			for _, c := range r.cols {
				if len(c.val.srcs) > 0 || c.val.taint != nil || c.val.unresolved != "" {
					return nil, false
				}
			}
			if r.unknown && (len(r.unknownVal.srcs) > 0 || r.unknownVal.taint != nil) {
				return nil, false
			}
		}
	}
	return names, true
}

// settingFilter returns X for FROM pg_settings WHERE name = 'X'.
func settingFilter(sc *scope, where *pg_query.Node) string {
	if len(sc.ns) != 1 || sc.ns[0].schema != "pg_catalog" || sc.ns[0].name != "pg_settings" {
		return ""
	}
	e := where.GetAExpr()
	if e == nil || e.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP {
		return ""
	}
	if _, op := opName(e.GetName()); op != "=" || singleName(e.GetLexpr()) != "name" {
		return ""
	}
	v, _ := constString(e.GetRexpr())
	return v
}

// liftsAllowed reports a query whose select list is computed row by row
// or group by group, and whose rows are not de-duplicated: a cast or
// prefix of a column in it may be computed by the proxy on the column's
// rewritten value (sqlinfo.Lift), unless the query sorts or groups by it
// in a way the bare column would change (lift).
func liftsAllowed(s *pg_query.SelectStmt) bool {
	if len(s.GetDistinctClause()) > 0 || len(s.GetWindowClause()) > 0 {
		return false
	}
	ok := true
	for _, t := range s.GetTargetList() {
		sqlinfo.Walk(t.ProtoReflect(), func(m protoreflect.Message) {
			if f, isCall := m.Interface().(*pg_query.FuncCall); isCall && f.GetOver() != nil {
				ok = false
			}
		})
	}
	return ok
}

func funcIsCount(f *pg_query.FuncCall) bool {
	_, name := funcName(f.GetFuncname())
	return name == "count"
}

// lift analyses select-list entry i (result column out) as the PostOp of
// a pseudonymised column, when it is one: the proxy then sends the bare
// column and computes the entry on its rewritten value.
func (a *analyzer) lift(sc *scope, s *pg_query.SelectStmt, rt *pg_query.ResTarget, i, out int) (sqlinfo.Lift, value, bool) {
	cr, op, ok := sqlinfo.Liftable(rt.GetVal())
	if !ok || a.liftable == liftCursor && (op.Kind != 'c' || op.Max > 0) {
		return sqlinfo.Lift{}, value{}, false
	}
	v, err := a.expr(sc, &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: cr}}, ctx{clause: "the select list", use: usePass})
	if err != nil || len(v.srcs) == 0 || v.mixed || v.taint != nil || v.unresolved != "" || v.wholeRow != "" {
		return sqlinfo.Lift{}, value{}, false
	}
	name := rt.GetName()
	if name == "" {
		if name, ok = sqlinfo.ColumnName(rt.GetVal()); !ok {
			return sqlinfo.Lift{}, value{}, false
		}
	}
	if sortedBy(s.GetSortClause(), rt, out, name) {
		// The server would sort by the function's value.
		return sqlinfo.Lift{}, value{}, false
	}
	if grouped(s) {
		// Grouped or aggregated, the entry is the group's key or a value
		// of it: a cast to text without a length groups as the column
		// does, and a GROUP BY may name it by position or name, which
		// then names the bare column.
		if op.Kind != 'c' || op.Max > 0 {
			return sqlinfo.Lift{}, value{}, false
		}
		for _, g := range s.GetGroupClause() {
			if sqlinfo.SameExpr(g, rt.GetVal()) || g.GetGroupingSet() != nil {
				return sqlinfo.Lift{}, value{}, false
			}
		}
	}
	return sqlinfo.Lift{Target: i, Output: out, Name: name, Op: op}, v, true
}

// grouped reports a query that groups or aggregates.
func grouped(s *pg_query.SelectStmt) bool {
	if len(s.GetGroupClause()) > 0 || s.GetHavingClause() != nil {
		return true
	}
	agg := false
	for _, t := range s.GetTargetList() {
		sqlinfo.Walk(t.ProtoReflect(), func(m protoreflect.Message) {
			if f, isCall := m.Interface().(*pg_query.FuncCall); isCall && (f.GetAggStar() || sqlinfo.OrderedAggregate(f) || funcIsCount(f)) {
				agg = true
			}
		})
	}
	return agg
}

// sortedBy reports an ORDER BY item that names result column out (called
// name), by position, by name or as the same expression.
func sortedBy(items []*pg_query.Node, rt *pg_query.ResTarget, out int, name string) bool {
	for _, item := range items {
		k := item.GetSortBy().GetNode()
		if p := position(k); p > 0 && p == out+1 || singleName(k) == name || sqlinfo.SameExpr(k, rt.GetVal()) {
			return true
		}
	}
	return false
}

// finish analyses ORDER BY, LIMIT and OFFSET and, for the statement's
// own result, the output columns.
func (a *analyzer) finish(sc *scope, s *pg_query.SelectStmt, outs []column, lvl level) error {
	for _, n := range s.GetSortClause() {
		sb := n.GetSortBy()
		if sb == nil {
			continue
		}
		c := ctx{clause: "ORDER BY", use: useOther}
		distinctOn := len(s.GetDistinctClause()) > 0 && s.GetDistinctClause()[0].GetNode() != nil
		if lvl == levelTop && sb.GetSortbyDir() != pg_query.SortByDir_SORTBY_USING && !distinctOn {
			// (DISTINCT ON picks each group's row by the clear order.)
			// The statement's own order: a pseudonymised key is sorted by
			// its keyed digest (Outputs.SortTags), never its clear value.
			c.use = useSort
		}
		v, err := a.sortItem(sc, sb.GetNode(), outs, c)
		if err != nil {
			return err
		}
		if c.use == useSort {
			tag := ""
			if len(v.srcs) > 0 {
				tag, a.digestOrder = digestTag(v), true
			}
			a.sortTags = append(a.sortTags, tag)
		}
	}
	for _, l := range []struct {
		n      *pg_query.Node
		clause string
	}{{s.GetLimitCount(), "LIMIT"}, {s.GetLimitOffset(), "OFFSET"}} {
		if l.n != nil {
			if _, err := a.expr(sc, l.n, ctx{clause: l.clause, use: useOther}); err != nil {
				return err
			}
		}
	}
	if lvl == levelTop {
		for _, o := range outs {
			if err := a.check(o.val, ctx{clause: "the select list", use: useOutput}); err != nil {
				return err
			}
		}
	}
	return nil
}

// setOp analyses UNION, INTERSECT and EXCEPT.
func (a *analyzer) setOp(sc *scope, s *pg_query.SelectStmt, lvl level) ([]column, error) {
	branch := levelDerived
	if lvl == levelView {
		branch = levelView
	}
	l, err := a.query(sc, s.GetLarg(), branch)
	if err != nil {
		return nil, err
	}
	r, err := a.query(sc, s.GetRarg(), branch)
	if err != nil {
		return nil, err
	}
	op := map[pg_query.SetOperation]string{pg_query.SetOperation_SETOP_UNION: "UNION",
		pg_query.SetOperation_SETOP_INTERSECT: "INTERSECT", pg_query.SetOperation_SETOP_EXCEPT: "EXCEPT"}[s.GetOp()]
	compares := !(s.GetOp() == pg_query.SetOperation_SETOP_UNION && s.GetAll())
	outs := make([]column, 0, len(l))
	for i := range l {
		if i >= len(r) {
			break
		}
		if compares {
			// Removing duplicates compares values across the branches.
			if err := a.equality([]value{l[i].val, r[i].val}, ctx{clause: op}); err != nil {
				return nil, err
			}
		}
		v := merge(l[i].val, r[i].val)
		v.via = "a set operation (" + op + ")"
		outs = append(outs, column{name: l[i].name, val: v})
	}
	return outs, a.finish(sc, s, outs, lvl)
}

// with registers a WITH clause's CTEs in sc. Without RECURSIVE a CTE sees
// only the ones before it (a later name means a relation); with RECURSIVE
// every CTE of the list sees every other one, also later ones and itself,
// so all are registered first and analysed together until their columns
// no longer change.
func (a *analyzer) with(sc *scope, w *pg_query.WithClause) error {
	sc.ctes = map[string]*cteInfo{}
	var ctes []*pg_query.CommonTableExpr
	for _, n := range w.GetCtes() {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		if q := cte.GetCtequery(); q.GetSelectStmt() == nil {
			return &Refusal{StatementKind: sqlinfo.KindOf(q), Reason: "a data-modifying WITH (" + statementName(sqlinfo.KindOf(q)) + " in " + quoteIdent(cte.GetCtename()) + ")",
				Rule: "restricted roles may only run read statements"}
		}
		ctes = append(ctes, cte)
	}
	if !w.GetRecursive() {
		for _, cte := range ctes {
			cols, err := a.query(sc, cte.GetCtequery().GetSelectStmt(), levelDerived)
			if err != nil {
				return err
			}
			cols = renameCols(cols, cte.GetAliascolnames())
			sc.ctes[cte.GetCtename()] = &cteInfo{cols: cols}
			if err := a.cteClauses(cte, cols); err != nil {
				return err
			}
		}
		return nil
	}
	infos := make([]*cteInfo, len(ctes))
	for i, cte := range ctes {
		infos[i] = &cteInfo{pending: true}
		sc.ctes[cte.GetCtename()] = infos[i]
	}
	// Seed each recursive CTE with its non-recursive term, so the first
	// round does not take the recursive reference for a clean value.
	for i, cte := range ctes {
		if sel := cte.GetCtequery().GetSelectStmt(); sel.GetOp() != pg_query.SetOperation_SETOP_NONE {
			cols, err := a.query(sc, sel.GetLarg(), levelDerived)
			if err != nil {
				return err
			}
			infos[i].cols = renameCols(noOrigin(cols), cte.GetAliascolnames())
		}
	}
	converged := false
	for round := 0; round < 16 && !converged; round++ {
		converged = true
		for i, cte := range ctes {
			cols, err := a.query(sc, cte.GetCtequery().GetSelectStmt(), levelDerived)
			if err != nil {
				return err
			}
			cols = renameCols(noOrigin(cols), cte.GetAliascolnames())
			if infos[i].cols == nil || !sameSources(cols, infos[i].cols) {
				converged = false
			}
			infos[i].cols = cols
		}
	}
	if !converged {
		return &Refusal{StatementKind: "Select", Reason: "a recursive WITH whose columns pgpseudo cannot settle",
			Rule: "SQL pgpseudo cannot analyse is refused for restricted roles"}
	}
	for i, cte := range ctes {
		infos[i].pending = false
		if err := a.cteClauses(cte, infos[i].cols); err != nil {
			return err
		}
	}
	return nil
}

// cteClauses checks the columns a CTE's SEARCH and CYCLE clauses use.
func (a *analyzer) cteClauses(cte *pg_query.CommonTableExpr, cols []column) error {
	if sc := cte.GetSearchClause(); sc != nil {
		if err := a.cteColumns(cols, sc.GetSearchColList(), "SEARCH"); err != nil {
			return err
		}
	}
	if cc := cte.GetCycleClause(); cc != nil {
		if err := a.cteColumns(cols, cc.GetCycleColList(), "CYCLE"); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyzer) cteColumns(cols []column, names []*pg_query.Node, clause string) error {
	for _, n := range names {
		name := n.GetString_().GetSval()
		for _, c := range cols {
			if c.name == name {
				if err := a.check(c.val, ctx{clause: clause, use: useOther}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func noOrigin(cols []column) []column {
	out := make([]column, len(cols))
	for i, c := range cols {
		c.val.origin, c.val.via = originNone, "a recursive WITH query"
		out[i] = c
	}
	return out
}

// sameSources reports whether two column lists carry the same sources.
func sameSources(a, b []column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].val.srcs) != len(b[i].val.srcs) || (a[i].val.taint == nil) != (b[i].val.taint == nil) {
			return false
		}
		for j := range a[i].val.srcs {
			x, y := a[i].val.srcs[j], b[i].val.srcs[j]
			if x.table != y.table || x.column != y.column || x.domain != y.domain {
				return false
			}
		}
	}
	return true
}

func renameCols(cols []column, names []*pg_query.Node) []column {
	if len(names) == 0 {
		return cols
	}
	out := make([]column, len(cols))
	copy(out, cols)
	for i, n := range names {
		if i < len(out) {
			out[i].name, out[i].uncertain = n.GetString_().GetSval(), false
		}
	}
	return out
}

// outputName is the name PostgreSQL gives a select-list item, and
// whether it is certain.
func outputName(rt *pg_query.ResTarget) (string, bool) {
	if rt.GetName() != "" {
		return rt.GetName(), true
	}
	name, certain := sqlinfo.ColumnName(rt.GetVal())
	if !certain {
		return "?column?", false
	}
	return name, true
}

// withUncertain makes a derived table's uncertain names count as "any
// name": a reference that matches no certain name resolves to them rather
// than to a column of an outer query (PostgreSQL looks in the nearest
// scope first).
func withUncertain(r *rte) *rte {
	var vs []value
	for _, c := range r.cols {
		if c.uncertain {
			vs = append(vs, c.val)
		}
	}
	if len(vs) > 0 {
		r.unknown = true
		if r.unknownVal.srcs == nil && r.unknownVal.taint == nil {
			r.unknownVal = merge(vs...)
		} else {
			r.unknownVal = merge(append(vs, r.unknownVal)...)
		}
	}
	return r
}

func isStar(cr *pg_query.ColumnRef) bool {
	f := cr.GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

// expandStar expands * and t.* in a select list.
func (a *analyzer) expandStar(sc *scope, cr *pg_query.ColumnRef) ([]column, error) {
	f := cr.GetFields()
	var out []column
	add := func(r *rte) {
		out = append(out, r.cols...)
		if r.unknown {
			out = append(out, column{name: "?column?", val: r.unknownVal})
		}
	}
	if len(f) == 1 {
		for _, r := range sc.ns {
			if r.colsVisible {
				add(r)
			}
		}
		return out, nil
	}
	r := a.findRel(sc, f[:len(f)-1])
	if r == nil {
		return nil, a.unresolvedRelation(f[:len(f)-1])
	}
	add(r)
	return out, nil
}

// fromItem analyses one FROM item; lat is the scope LATERAL items see.
func (a *analyzer) fromItem(sc *scope, n *pg_query.Node, lat *scope) ([]*rte, error) {
	nonLat := &scope{parent: sc.parent, ctes: sc.ctes}
	switch {
	case n.GetRangeVar() != nil:
		r, err := a.rangeVar(sc, n.GetRangeVar())
		if err != nil {
			return nil, err
		}
		return []*rte{r}, nil
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		parent := nonLat
		if rs.GetLateral() {
			parent = lat
		}
		cols, err := a.query(parent, rs.GetSubquery().GetSelectStmt(), levelDerived)
		if err != nil {
			return nil, err
		}
		r := &rte{relVisible: true, colsVisible: true, cols: cols}
		if al := rs.GetAlias(); al != nil {
			r.name = al.GetAliasname()
			r.cols = renameCols(cols, al.GetColnames())
		}
		return []*rte{withUncertain(r)}, nil
	case n.GetRangeFunction() != nil:
		rf := n.GetRangeFunction()
		// Functions in FROM are implicitly LATERAL.
		name := ""
		for _, item := range rf.GetFunctions() {
			l := item.GetList().GetItems()
			if len(l) == 0 {
				continue
			}
			if fc := l[0].GetFuncCall(); fc != nil && name == "" {
				fn := fc.GetFuncname()
				name = fn[len(fn)-1].GetString_().GetSval()
			}
			if _, err := a.expr(lat, l[0], ctx{clause: "FROM", use: useOther}); err != nil {
				return nil, err
			}
		}
		if al := rf.GetAlias(); al != nil {
			name = al.GetAliasname()
		}
		return []*rte{{name: name, relVisible: true, colsVisible: true, unknown: true}}, nil
	case n.GetJoinExpr() != nil:
		return a.join(sc, n.GetJoinExpr(), lat)
	case n.GetRangeTableSample() != nil:
		ts := n.GetRangeTableSample()
		ns, err := a.fromItem(sc, ts.GetRelation(), lat)
		if err != nil {
			return nil, err
		}
		for _, arg := range append(ts.GetArgs(), ts.GetRepeatable()) {
			if _, err := a.expr(lat, arg, ctx{clause: "TABLESAMPLE", use: useOther}); err != nil {
				return nil, err
			}
		}
		_, method := funcName(ts.GetMethod())
		for _, r := range ns {
			if r.sysRule == "" || method == "bernoulli" && ts.GetRepeatable() == nil {
				continue
			}
			// A sample is drawn by a public hash of each row's position
			// and the seed (BERNOULLI … REPEATABLE), or by whole blocks
			// (SYSTEM): which rows it keeps shows where they lie, which
			// follows their clear keys. BERNOULLI with a random seed
			// shows nothing.
			return nil, &Refusal{Table: r.sysRoot, Column: "ctid", Clause: "TABLESAMPLE",
				Reason: "TABLESAMPLE " + strings.ToUpper(method) + " with a chosen seed, or by blocks, picks rows by their physical position",
				Rule:   r.sysRule + "; restricted roles may sample such tables only with TABLESAMPLE BERNOULLI and no REPEATABLE"}
		}
		return ns, nil
	case n.GetRangeTableFunc() != nil, n.GetJsonTable() != nil:
		// XMLTABLE and JSON_TABLE: their inputs are function arguments.
		if err := a.children(lat, n.ProtoReflect(), ctx{clause: "FROM", how: "in XMLTABLE/JSON_TABLE", use: useOther}); err != nil {
			return nil, err
		}
		name := ""
		if t := n.GetRangeTableFunc(); t != nil && t.GetAlias() != nil {
			name = t.GetAlias().GetAliasname()
		}
		if t := n.GetJsonTable(); t != nil && t.GetAlias() != nil {
			name = t.GetAlias().GetAliasname()
		}
		return []*rte{{name: name, relVisible: true, colsVisible: true, unknown: true}}, nil
	}
	return nil, &Refusal{Reason: "the FROM item " + sqlinfo.KindOf(n) + " is not supported", Rule: "SQL pgpseudo cannot analyse is refused for restricted roles"}
}

// join analyses a JOIN, with USING and NATURAL merged columns.
func (a *analyzer) join(sc *scope, j *pg_query.JoinExpr, lat *scope) ([]*rte, error) {
	lns, err := a.fromItem(sc, j.GetLarg(), lat)
	if err != nil {
		return nil, err
	}
	latR := &scope{parent: lat.parent, ctes: lat.ctes, ns: append(append([]*rte{}, lat.ns...), lns...)}
	rns, err := a.fromItem(sc, j.GetRarg(), latR)
	if err != nil {
		return nil, err
	}
	lcols, lunk := visibleCols(lns)
	rcols, runk := visibleCols(rns)
	var using []string
	if j.GetIsNatural() {
		if lunk != nil || runk != nil {
			all := append(append([]column{}, lcols...), rcols...)
			for _, c := range all {
				if len(c.val.srcs) > 0 || c.val.taint != nil {
					return nil, &Refusal{Table: c.val.srcs[0].table, Column: c.val.srcs[0].column, Clause: "JOIN",
						How: "in a NATURAL JOIN with a relation whose columns are unknown", Reason: a.describe(c.val.srcs[0]),
						Rule: c.val.srcs[0].dec.Rule + "; " + rulePseudo}
				}
			}
		}
		for _, l := range lcols {
			for _, r := range rcols {
				if l.name == r.name && !contains(using, l.name) {
					using = append(using, l.name)
				}
			}
		}
	}
	for _, u := range j.GetUsingClause() {
		using = append(using, u.GetString_().GetSval())
	}
	find := func(cols []column, unk *value, name string) value {
		var vs []value
		for _, c := range cols {
			if c.name == name {
				vs = append(vs, c.val)
			}
		}
		if unk != nil {
			vs = append(vs, *unk)
		}
		if len(vs) == 0 {
			return value{}
		}
		return one(vs)
	}
	var joined []column
	for _, name := range using {
		lv, rv := find(lcols, lunk, name), find(rcols, runk, name)
		if err := a.equality([]value{lv, rv}, ctx{clause: "JOIN", how: "in USING (" + quoteIdent(name) + ")"}); err != nil {
			return nil, err
		}
		m := merge(lv, rv)
		switch j.GetJointype() {
		case pg_query.JoinType_JOIN_RIGHT:
			m.origin, m.view, m.viewCol = rv.origin, rv.view, rv.viewCol
		case pg_query.JoinType_JOIN_FULL:
			m.via = "the merged column of a FULL JOIN"
		default:
			m.origin, m.view, m.viewCol = lv.origin, lv.view, lv.viewCol
		}
		joined = append(joined, column{name: name, val: m})
	}
	for _, c := range lcols {
		if !contains(using, c.name) {
			joined = append(joined, c)
		}
	}
	for _, c := range rcols {
		if !contains(using, c.name) {
			joined = append(joined, c)
		}
	}
	if q := j.GetQuals(); q != nil {
		qs := &scope{parent: sc.parent, ctes: sc.ctes, ns: append(append([]*rte{}, lns...), rns...)}
		if _, err := a.expr(qs, q, ctx{clause: "JOIN", use: useOther}); err != nil {
			return nil, err
		}
	}
	alias := j.GetAlias()
	for _, r := range append(append([]*rte{}, lns...), rns...) {
		r.colsVisible = false
		if alias != nil {
			r.relVisible = false
		}
	}
	jr := &rte{colsVisible: true, cols: joined, join: true}
	if lunk != nil || runk != nil {
		jr.unknown = true
		var vs []value
		if lunk != nil {
			vs = append(vs, *lunk)
		}
		if runk != nil {
			vs = append(vs, *runk)
		}
		jr.unknownVal = merge(vs...)
	}
	if alias != nil {
		jr.name, jr.relVisible = alias.GetAliasname(), true
		jr.cols = renameCols(joined, alias.GetColnames())
	}
	return append(append(lns, rns...), jr), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// visibleCols lists the columns unqualified references can reach, and
// the value of unknown columns if any entry's list is unknown.
func visibleCols(ns []*rte) ([]column, *value) {
	var cols []column
	var unk []value
	for _, r := range ns {
		if !r.colsVisible {
			continue
		}
		cols = append(cols, r.cols...)
		if r.unknown {
			unk = append(unk, r.unknownVal)
		}
	}
	if len(unk) == 0 {
		return cols, nil
	}
	v := merge(unk...)
	return cols, &v
}

// rangeVar resolves a relation or CTE name in FROM.
func (a *analyzer) rangeVar(sc *scope, rv *pg_query.RangeVar) (*rte, error) {
	name := rv.GetRelname()
	r := &rte{name: name, relVisible: true, colsVisible: true}
	if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" {
		if cte := sc.lookupCTE(name); cte != nil {
			r.cols = cte.cols
			if cte.pending && cte.cols == nil {
				r.unknown = true
			}
			a.alias(r, rv.GetAlias())
			return withUncertain(r), nil
		}
	}
	rel, err := a.lookup(rv)
	if err != nil {
		return nil, err
	}
	r.schema = rel.Name.Schema
	r.name = rel.Name.Table
	switch {
	case isSystemSchema(rel.Name.Schema):
		r.baseRel = true
		for _, c := range rel.Columns {
			col := column{name: c}
			if sqlinfo.SensitiveCatalogColumn(rel.Name.Table, c) {
				// (A statistics view's columns that say what statements did.)
				col.val = value{origin: originBase, srcs: []*source{{table: rel.Name, column: c, domain: rel.Name.String() + "." + c,
					dec: policy.Decision{Action: policy.Block, Column: c, Rule: "statistics and activity views are refused for restricted roles, but for a table's name and row estimate"}}}}
			}
			r.cols = append(r.cols, col)
		}
		r.unknown = rel.Columns == nil
	case rel.Kind == 'v':
		vi, err := a.view(rel)
		if err != nil {
			return nil, err
		}
		for _, t := range vi.rels {
			a.noteRelation(t)
		}
		if vi.taint != nil {
			ref := *vi.taint
			return nil, &ref
		}
		r.cols = vi.cols
	default:
		r.baseRel = true
		r.rowIDs = rel.Kind == 'r' || rel.Kind == 'p'
		root := rel.root()
		if a.pol.Protects(a.role, root) {
			r.sysRoot = root
			r.sysRule = "system columns of a table role " + a.role.Name + " does not see in clear show where its rows lie, which follows their clear values"
		}
		for _, c := range rel.Columns {
			v := value{origin: originBase}
			d := a.pol.Decide(a.role, root, c)
			if rel.Kind == 'm' {
				// A copy made at the last refresh, from definitions that
				// may have changed since: not traced through them.
				d = a.pol.DecideMatview(a.role, root, c)
			}
			if d.Action != policy.Allow {
				v.srcs = []*source{{table: root, column: c, dec: d, domain: a.domain(root, c)}}
			}
			r.cols = append(r.cols, column{name: c, val: v})
		}
		if rel.Columns == nil {
			r.unknown = true
			r.unknownVal = value{srcs: []*source{{table: root, column: "*",
				dec: policy.Decision{Action: policy.Block, Rule: "the columns of " + root.String() + " are unknown"}}}}
		}
	}
	a.alias(r, rv.GetAlias())
	return r, nil
}

func (a *analyzer) alias(r *rte, al *pg_query.Alias) {
	if al == nil {
		return
	}
	r.name, r.schema = al.GetAliasname(), ""
	r.cols = renameCols(r.cols, al.GetColnames())
}

// domain is a column's token domain; a column without one is its own.
func (a *analyzer) domain(t policy.TableName, col string) string { return a.pol.TokenDomain(t, col) }

func isSystemSchema(s string) bool {
	return s == "pg_catalog" || s == "information_schema" || strings.HasPrefix(s, "pg_toast")
}

// lookup resolves a relation name in the catalog.
func (a *analyzer) lookup(rv *pg_query.RangeVar) (*Relation, error) {
	shown := rv.GetRelname()
	if rv.GetSchemaname() != "" {
		shown = quoteIdent(rv.GetSchemaname()) + "." + quoteIdent(shown)
	}
	if sqlinfo.SensitiveCatalog(rv.GetRelname()) && !sqlinfo.PartlyReadableCatalog(rv.GetRelname()) {
		return nil, &Refusal{Relation: shown, Reason: "exposes values of classified columns or what statements did (statistics, other sessions' SQL)",
			Rule: "statistics and activity views are refused for restricted roles"}
	}
	rel, found, err := a.cat.Relation(a.ctx, rv.GetSchemaname(), rv.GetRelname(), a.searchPath)
	if err != nil {
		return nil, fmt.Errorf("analyze: catalog lookup of %s: %w", shown, err)
	}
	if !found {
		return nil, &Refusal{Relation: shown, Reason: "does not exist or is not visible with search_path " + quoteIdent(strings.Join(a.searchPath, ", ")),
			Rule: "relations pgpseudo cannot find in the catalog are refused for restricted roles"}
	}
	a.noteRelation(rel.Name)
	return rel, nil
}

// viewInfo is a view's analysed definition.
type viewInfo struct {
	cols      []column
	taint     *Refusal
	rels      []policy.TableName
	analysing bool
}

// view analyses a view's definition once per Analyze call.
func (a *analyzer) view(rel *Relation) (*viewInfo, error) {
	if vi := a.views[rel.Name]; vi != nil {
		if vi.analysing {
			return &viewInfo{taint: &Refusal{Relation: rel.Name.String(), Reason: "is defined in terms of itself",
				Rule: "views pgpseudo cannot resolve to base tables are refused"}}, nil
		}
		return vi, nil
	}
	vi := &viewInfo{analysing: true}
	a.views[rel.Name] = vi
	defer func() { vi.analysing = false }()
	taint := func(reason string) *viewInfo {
		vi.taint = &Refusal{Relation: rel.Name.String(), Reason: reason, Rule: "views pgpseudo cannot resolve to base tables are refused"}
		return vi
	}
	if a.viewDepth >= maxViewDepth {
		return taint("nests views too deeply"), nil
	}
	if ref := grammarSkew(rel.ViewSQL, a.s.Keywords); ref != nil {
		ref.View = rel.Name
		vi.taint = ref
		return vi, nil
	}
	tree, err := pg_query.Parse(rel.ViewSQL)
	if err != nil || len(tree.GetStmts()) != 1 || tree.GetStmts()[0].GetStmt().GetSelectStmt() == nil {
		return taint("has a definition pgpseudo cannot parse"), nil
	}
	savedPath, savedRels := a.searchPath, a.rels
	a.searchPath, a.rels = nil, nil
	a.viewDepth++
	cols, err := a.query(&scope{}, tree.GetStmts()[0].GetStmt().GetSelectStmt(), levelView)
	a.viewDepth--
	vi.rels = a.rels
	a.searchPath, a.rels = savedPath, savedRels
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		if ref.View.Table == "" {
			ref.View = rel.Name
		}
		vi.taint = ref
		return vi, nil
	case err != nil:
		return nil, err
	}
	for i := range cols {
		name := cols[i].name
		if i < len(rel.Columns) {
			name = rel.Columns[i]
		}
		v := cols[i].val
		if v.taint != nil && v.taint.View.Table == "" {
			t := *v.taint
			t.View = rel.Name
			v.taint = &t
		}
		v.origin, v.view, v.viewCol, v.viewMat = originView, rel.Name, name, rel.Kind == 'm'
		vi.cols = append(vi.cols, column{name: name, val: v})
	}
	return vi, nil
}
