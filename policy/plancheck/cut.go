package plancheck

import (
	"fmt"
	"regexp"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Whether a statement fails is one bit its client always sees. Where the
// server may stop reading rows at a point its read order decides — a
// Limit, an EXISTS, IN or ANY subplan that stops at the first match, a
// semi- or anti-join or an inner-unique join that stops at the first
// match, a merge join that stops when one side runs out, a client that
// stops fetching — an expression that fails on one row shows, by failing
// or not, whether that row was read before the stopping point: one bit of
// the physical order or of a sort over clear values. About 9 000 such
// statements rank a tokenized column.
//
// In a statement over protected tables the check therefore finds every
// expression evaluated on rows whose reading can be cut short, and
// refuses one that can fail on some rows and not others: only column
// references, constants, comparisons of scalars, boolean logic, NULL
// tests and a few functions that fail on no input are allowed there.
// Below a node that reads all its input before it returns a row (Sort,
// Hash, a plain or hashed Aggregate, a hashed SetOp, a hashed subplan),
// nothing is cut short, unless whole runs of that node can be left out.
// What the plan does not print (LIMIT counts, frame offsets) the
// analysis refuses when it is computed from an outer row.

// hashedSubplan finds "hashed SubPlan n" in EXPLAIN's expressions.
var hashedSubplan = regexp.MustCompile(`\bhashed SubPlan (\d+)\b`)

// cut is how far a node's work can be cut short at a point the server's
// read order decides.
type cut uint8

const (
	// whole: the node runs to its end.
	whole cut = iota
	// rows: the node's output may be read only in part; what it has
	// read of its input before it returned a row stands.
	rows
	// runs: whole executions of the node may be left out (the inner side
	// of a join, a subplan, for rows above that are never reached), so
	// everything below it counts, however fully each run reads.
	runs
)

// cutShort checks the plan from its root, which a client may stop
// reading at any row.
func (c *checker) cutShort(root *node) error {
	if len(c.protectedAnywhere) == 0 || c.in.PlanOnly {
		return nil
	}
	c.hashed = map[string]bool{}
	root.walk(func(n *node) {
		for _, s := range n.exprStrings() {
			for _, m := range hashedSubplan.FindAllStringSubmatch(s, -1) {
				c.hashed["SubPlan "+m[1]] = true
			}
		}
	})
	w := &cutWalker{c: c, ctes: map[string]cut{}}
	if err := w.walk(root, rows); err != nil {
		return err
	}
	// A CTE is computed as its scans read it: cut short where one of them
	// is.
	for done := false; !done; {
		done = true
		for name, how := range w.ctes {
			cte := c.subplans["CTE "+name]
			if cte == nil || cte.cutChecked >= how {
				continue
			}
			cte.cutChecked, done = how, false
			if err := w.walk(cte, how); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutWalker carries how far each CTE is cut.
type cutWalker struct {
	c    *checker
	ctes map[string]cut
}

// walk checks node n, cut short as how says, and the nodes below it.
func (w *cutWalker) walk(n *node, how cut) error {
	stopsAtMatch := n.joinType == "Semi" || n.joinType == "Anti" || n.innerUnique
	switch {
	case how == rows && w.c.inDigestOrder(n):
		// Its rows come in the proxy's digest order: where they are cut
		// short follows no clear value and no position.
	case how > whole:
		if err := w.c.failFree(n, how, false); err != nil {
			return err
		}
		if n.typ == "CTE Scan" {
			w.ctes[n.cteName] = max(w.ctes[n.cteName], rows)
		}
	case stopsAtMatch:
		// Pairs after the first match are not tested.
		if err := w.c.failFree(n, how, true); err != nil {
			return err
		}
	}
	for i, k := range n.kids {
		kh := how
		switch {
		case k.parentRel == "InitPlan" && strings.HasPrefix(k.subplan, "CTE "):
			continue // checked where its scans are cut
		case k.parentRel == "SubPlan" || k.parentRel == "InitPlan":
			// Run for the rows of n that are reached; EXISTS, IN and ANY
			// stop at the first row that decides; a hashed subplan reads
			// all its rows first.
			switch {
			case how > whole:
				kh = runs
			case w.c.hashed[k.subplan]:
				kh = whole
			default:
				kh = rows
			}
		case how == runs:
		case n.reads(w.c):
			kh = whole
		case n.typ == "Nested Loop" && i == 1:
			// Run again for each outer row, each run stopping at the
			// first match for a semi-, anti- or unique join.
			switch {
			case how > whole:
				kh = runs
			case stopsAtMatch:
				kh = rows
			}
		case n.typ == "Limit" || n.typ == "Merge Join" || n.typ == "WindowAgg" && n.hasProp("Run Condition"):
			// A WindowAgg with a run condition stops once it fails.
			kh = max(how, rows)
		}
		if err := w.walk(k, kh); err != nil {
			return err
		}
	}
	return nil
}

// inDigestOrder reports a node whose rows come in the order of the
// proxy's digest: a sort by it, or a node that keeps the order of its
// input (a Limit, a projection) over one.
func (c *checker) inDigestOrder(n *node) bool {
	for {
		switch n.typ {
		case "Sort", "Incremental Sort":
			return c.digestSort(n)
		case "Limit", "Result", "Subquery Scan", "Unique", "Gather Merge", "Materialize":
		default:
			return false
		}
		var in *node
		for _, k := range n.kids {
			if k.parentRel != "InitPlan" && k.parentRel != "SubPlan" {
				in = k
				break
			}
		}
		if in == nil {
			return false
		}
		n = in
	}
}

func (n *node) hasProp(key string) bool {
	for _, p := range n.props {
		if p.key == key {
			return true
		}
	}
	return false
}

// reads reports a node that reads all its input before it returns a row,
// or (an incremental sort by the proxy's digest) all rows that agree on
// the statement's own sort keys, which come in the order of those visible
// keys.
func (n *node) reads(c *checker) bool {
	switch n.typ {
	case "Sort", "Hash", "HashSetOp":
		return true
	case "Incremental Sort":
		return c.digestSort(n)
	case "Aggregate":
		return n.strategy == "Plain" || n.strategy == "Hashed" || n.strategy == "Mixed"
	case "SetOp":
		return n.strategy == "Hashed"
	}
	return false
}

// exprStrings are n's expressions as EXPLAIN printed them.
func (n *node) exprStrings() []string {
	out := append([]string{}, n.output...)
	for _, p := range n.props {
		out = append(out, p.exprs...)
	}
	return out
}

// failFree refuses an expression of n that can fail on some rows: all of
// them, or (joinOnly) the join filter a join stopping at the first match
// tests. Cut by rows, what a node that reads all its input computed
// while reading (a plain aggregate's one row, aggregates) stands; cut by
// runs, it counts too.
func (c *checker) failFree(n *node, how cut, joinOnly bool) error {
	read := how == rows && n.reads(c)
	check := func(where, e string, kind exprKind) error {
		ex, err := c.expr(e, kind, c.in.Keywords)
		if err != nil {
			return err
		}
		if kind == sortExpr {
			ex = ex.GetSortBy().GetNode()
		}
		what := c.mayFail(n, ex, read)
		if what == "" && (where == "group Key" || where == "cache Key") && !c.scalarOperand(n, ex) {
			what = recordCompare // keys are compared with each other
		}
		if what != "" {
			return c.cutRefusal(n, where, what)
		}
		return nil
	}
	if how == rows && oneRow(n) {
		return nil // one row, computed before it is returned
	}
	if !joinOnly {
		for _, e := range n.output {
			if err := check("an output", e, plainExpr); err != nil {
				return err
			}
		}
	}
	for _, p := range n.props {
		kind := plainExpr
		switch p.key {
		case "Join Filter":
		case "Sort Key", "Presorted Key":
			if joinOnly || n.sorted() && how == rows {
				continue // a sort reads all its input
			}
			kind = sortExpr
		case "Function Call", "Table Function Call":
			if joinOnly {
				continue
			}
			kind = fromExpr
		case "Window":
			continue // partitions and orders compare values
		case "Sampling Parameters", "Repeatable Seed":
			// TABLESAMPLE checks its arguments on every run: a computed
			// percentage fails out of 0..100.
			for _, e := range p.exprs {
				if ex, err := c.expr(e, plainExpr, c.in.Keywords); err != nil || !constant(ex) {
					return c.cutRefusal(n, "sampling parameters", "a sample's computed parameters")
				}
			}
			continue
		default:
			if joinOnly {
				continue
			}
		}
		for _, e := range p.exprs {
			if err := check(strings.ToLower(p.key[:1])+p.key[1:], e, kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutRefusal refuses what, at where of n, which can fail on some rows
// where the server may stop early.
func (c *checker) cutRefusal(n *node, where, what string) error {
	s := c.protectedAnywhere[0]
	return &analyze.Refusal{StatementKind: "Select", Table: s.table, Clause: where + " of " + n.typ + " in the server's plan",
		Reason: "the server may stop reading these rows at a point its read order decides (" + cutBy(n) + "), and " + what +
			" can fail on some rows: failing or not would show which rows the server reads first",
		Rule: "restricted roles may use only comparisons, boolean logic and functions that cannot fail where the server can stop reading early over tables they do not see in clear (" + ruleServer + ")"}
}

// cutBy names what can stop reading at n, for messages.
func cutBy(n *node) string {
	switch {
	case n.joinType == "Semi" || n.joinType == "Anti":
		return "a " + strings.ToLower(n.joinType) + "-join stops at the first match"
	case n.innerUnique:
		return "a join on a unique key stops at the first match"
	}
	return "a LIMIT, EXISTS, IN or ANY, a semi-join, a merge join or the client can stop before the last row"
}

// mayFail names the part of e, evaluated at n, that can fail on some
// input ("" if none can): anything but column references, constants,
// parameters, one-row or hashed subplan results, comparisons of scalars,
// boolean logic, NULL and boolean tests, CASE, COALESCE, NULLIF,
// GREATEST/LEAST of scalars, casts of constants or to text, a time
// shifted by a small constant, the proxy's digest and grouping
// companions, and the functions failFreeCall lists.
//
// read: n read all its input before returning a row, and aggregates were
// computed then.
func (c *checker) mayFail(n *node, e *pg_query.Node, read bool) string {
	found := ""
	var visit func(m protoreflect.Message) bool
	visit = func(m protoreflect.Message) bool {
		if found != "" {
			return false
		}
		if x, ok := m.Interface().(*pg_query.Node); ok && c.drill(x) {
			return true // current_setting(name, true) and a constant: never fails
		}
		if x, ok := m.Interface().(*pg_query.Node); ok && (c.digest(x) || sqlinfo.CompanionOf(x) != nil) {
			// sha256 of bytes; convert_to(concat(x), 'UTF8') of any
			// text: neither fails (x itself is visited).
			if k := sqlinfo.CompanionOf(x); k != nil {
				return visit(k.ProtoReflect())
			}
			return true
		}
		switch x := m.Interface().(type) {
		case *pg_query.CaseExpr:
			if a := x.GetArg(); a != nil {
				// CASE x WHEN v compares x with each v.
				ops := []*pg_query.Node{a}
				for _, w := range x.GetArgs() {
					ops = append(ops, w.GetCaseWhen().GetExpr())
				}
				if !c.scalarOperands(n, ops...) {
					found = recordCompare
				}
			}
		case *pg_query.Node, *pg_query.ColumnRef, *pg_query.A_Const, *pg_query.BoolExpr, *pg_query.NullTest,
			*pg_query.BooleanTest, *pg_query.CaseWhen, *pg_query.CoalesceExpr,
			*pg_query.RowExpr, *pg_query.SQLValueFunction, *pg_query.String, *pg_query.Integer,
			*pg_query.Float, *pg_query.Boolean, *pg_query.A_Star, *pg_query.List:
		case *pg_query.TypeName, *pg_query.SortBy:
		case *pg_query.TypeCast:
			// A stored value can fail a cast as well (postal codes above
			// 32767 as smallint).
			if x.GetArg().GetAConst() == nil && !textType(x.GetTypeName()) {
				found = "a cast to " + typeName(x.GetTypeName())
			}
		case *pg_query.ParamRef:
			if ip := c.params[fmt.Sprintf("$%d", x.GetNumber())]; ip != nil && !oneRow(ip) {
				found = "a subquery that may return more than one row"
			}
		case *pg_query.A_Expr:
			if c.shiftedTime(n, x) {
				return true
			}
			if what := failFreeOperator(x); what != "" {
				found = what
			} else if !c.scalarOperands(n, x.GetLexpr(), x.GetRexpr()) {
				found = recordCompare
			}
		case *pg_query.MinMaxExpr:
			if !c.scalarOperands(n, x.GetArgs()...) {
				found = recordCompare
			}
		case *pg_query.A_ArrayExpr:
			// ARRAY[a, b] of arrays fails when their dimensions differ
			// ("multidimensional arrays must have array expressions with
			// matching dimensions"), and a column may hold an array.
			for _, el := range x.GetElements() {
				if p := el.GetParamRef(); c.drill(el) || p != nil && c.in.DrillParams[int(p.GetNumber())] != "" {
					continue // a scalar of the column's type
				}
				if t := el.GetTypeCast(); el.GetAConst() == nil && (t == nil || t.GetArg().GetAConst() == nil || !scalarType(t.GetTypeName()) ||
					len(t.GetTypeName().GetArrayBounds()) > 0) {
					found = "an ARRAY constructor of values that may be arrays"
				}
			}
		case *pg_query.FuncCall:
			if read && aggregateCall(x) {
				return true // computed while the node read all its input
			}
			if what := c.failFreeCall(n, x); what != "" {
				found = what
			} else if compares(x) && !c.scalarOperands(n, append(append([]*pg_query.Node{}, x.GetArgs()...), sortNodes(x.GetAggOrder())...)...) {
				found = recordCompare
			}
		case *pg_query.WindowDef:
			// A window's partition and order compare values; its frame
			// offsets are constants.
			if !c.scalarOperands(n, append(append([]*pg_query.Node{}, x.GetPartitionClause()...), sortNodes(x.GetOrderClause())...)...) {
				found = recordCompare
			}
		case *pg_query.CollateClause:
		default:
			found = "an expression (" + string(m.Descriptor().Name()) + ")"
		}
		if found != "" {
			return false
		}
		return sqlinfo.EachChild(m, visit)
	}
	visit(e.ProtoReflect())
	return found
}

// textType reports a cast that cannot fail: to a text type, which writes
// the value with its type's output function.
func textType(t *pg_query.TypeName) bool {
	switch typeName(t) {
	case "text", "varchar", "character varying", "name":
		return true
	}
	return false
}

// typeName is a built-in type's name ("?" for a type of another schema:
// a domain named text may check its values).
func typeName(t *pg_query.TypeName) string {
	ns := t.GetNames()
	if len(ns) == 0 || len(ns) > 2 || len(ns) == 2 && ns[0].GetString_().GetSval() != "pg_catalog" {
		return "?"
	}
	return ns[len(ns)-1].GetString_().GetSval()
}

// recordCompare names what a comparison of records can do.
const recordCompare = "a comparison of values that may be records or arrays (two records of different column types compare with an error)"

// scalarOperands reports operands whose comparison cannot fail: each one
// scalar value (a table's column passed on, a constant, a parameter, a
// listed function's result, a cast to text, the proxy's digest or
// companion, a one-row or hashed subquery's column), or CASE, COALESCE,
// GREATEST, LEAST or NULLIF of such, or a boolean. Records can fail (ROW(1,
// 'a') = ROW(1, 2) raises "cannot compare dissimilar column types" on the
// row that builds the first), and a computed column or an array may hold
// them.
func (c *checker) scalarOperands(n *node, ops ...*pg_query.Node) bool {
	for _, e := range ops {
		if e != nil && !c.scalarOperand(n, e) {
			return false
		}
	}
	return true
}

func (c *checker) scalarOperand(n *node, e *pg_query.Node) bool {
	switch x := e.GetNode().(type) {
	case *pg_query.Node_AConst, *pg_query.Node_ParamRef, *pg_query.Node_SqlvalueFunction, *pg_query.Node_BoolExpr,
		*pg_query.Node_NullTest, *pg_query.Node_BooleanTest:
		return true
	case *pg_query.Node_TypeCast:
		// EXPLAIN prints ROW(1, 'a') folded as '(1,a)'::record: a
		// constant is scalar only when its type is.
		t := x.TypeCast.GetTypeName()
		return textType(t) || x.TypeCast.GetArg().GetAConst() != nil && scalarType(t)
	case *pg_query.Node_ColumnRef:
		f := x.ColumnRef.GetFields()
		return len(f) > 0 && f[len(f)-1].GetAStar() == nil && c.eval(n, e).bare
	case *pg_query.Node_CollateClause:
		return c.scalarOperand(n, x.CollateClause.GetArg())
	case *pg_query.Node_List:
		return c.scalarOperands(n, x.List.GetItems()...)
	case *pg_query.Node_AExpr:
		if x.AExpr.GetKind() == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return c.scalarOperands(n, x.AExpr.GetLexpr(), x.AExpr.GetRexpr())
		}
		return true // a comparison's result, a boolean (arithmetic is refused as it is)
	case *pg_query.Node_CaseExpr:
		ops := []*pg_query.Node{x.CaseExpr.GetDefresult()}
		for _, w := range x.CaseExpr.GetArgs() {
			ops = append(ops, w.GetCaseWhen().GetResult())
		}
		return c.scalarOperands(n, ops...)
	case *pg_query.Node_CoalesceExpr:
		return c.scalarOperands(n, x.CoalesceExpr.GetArgs()...)
	case *pg_query.Node_MinMaxExpr:
		return c.scalarOperands(n, x.MinMaxExpr.GetArgs()...)
	case *pg_query.Node_FuncCall:
		if c.digest(e) || sqlinfo.CompanionOf(e) != nil {
			return true
		}
		f := x.FuncCall
		switch funcName(f) {
		case fnSubplan, fnSubplanCol, fnInitplanCol:
			return c.scalarSubplan(f)
		case "coalesce":
			return c.scalarOperands(n, f.GetArgs()...)
		}
		return c.failFreeCall(n, f) == ""
	}
	return false
}

// compares reports a call that compares its arguments with each other:
// min and max, a DISTINCT aggregate, and any aggregate's ORDER BY.
func compares(f *pg_query.FuncCall) bool {
	switch funcName(f) {
	case "min", "max":
		return true
	}
	return f.GetAggDistinct() || len(f.GetAggOrder()) > 0
}

// scalarType reports a built-in scalar type (or an array of one), whose
// values compare without failing.
func scalarType(t *pg_query.TypeName) bool {
	switch typeName(t) {
	case "text", "varchar", "character varying", "name", "bpchar", "character", "char", "int2", "int4", "int8", "integer",
		"smallint", "bigint", "numeric", "float4", "float8", "real", "double precision", "bool", "boolean", "date",
		"time", "timetz", "timestamp", "timestamptz", "timestamp without time zone", "timestamp with time zone",
		"time without time zone", "time with time zone", "interval", "uuid", "bytea", "oid", "jsonb", "inet", "cidr",
		"macaddr", "money":
		return true
	}
	return false
}

// scalarSubplan reports a subplan reference that yields one scalar: a
// hashed subplan (the comparison is its ANY), or a one-row subquery whose
// output is not a ROW.
func (c *checker) scalarSubplan(f *pg_query.FuncCall) bool {
	kind := "SubPlan"
	if funcName(f) == fnInitplanCol {
		kind = "InitPlan"
	}
	args := f.GetArgs()
	if len(args) == 0 {
		return false
	}
	key := fmt.Sprintf("%s %d", kind, args[0].GetAConst().GetIval().GetIval())
	if c.hashed[key] {
		return true
	}
	sp := c.subplans[key]
	if sp == nil || !oneRow(sp) {
		return false
	}
	for _, o := range sp.output {
		ex, err := c.expr(o, plainExpr, c.in.Keywords)
		if err != nil || ex.GetRowExpr() != nil || strings.HasSuffix(o, ".*") {
			return false
		}
	}
	return true
}

// smallShift reports a constant interval of small parts ('30 days',
// '1 year 2 mons', '02:00:00'): added to or taken from a time between 4713
// BC and 294 276 AD that a table holds or now() gives, it stays in that
// range (a year part below 1 000, months and weeks below 10 000, other
// parts below 100 000).
func smallShift(s string) bool {
	f := strings.Fields(s)
	if len(f) == 0 {
		return false
	}
	for i := 0; i < len(f); i++ {
		if strings.Contains(f[i], ":") {
			// A time of day part, last: h:mm[:ss[.f]].
			hms := strings.Split(strings.TrimLeft(f[i], "+-"), ":")
			if i != len(f)-1 || len(hms) > 3 || !digits(hms[0], 5) {
				return false
			}
			for _, p := range hms[1:] {
				if !digits(strings.SplitN(p, ".", 2)[0], 2) {
					return false
				}
			}
			continue
		}
		if i+1 >= len(f) {
			return false
		}
		num, unit := strings.TrimLeft(f[i], "+-"), strings.TrimSuffix(strings.ToLower(f[i+1]), "s")
		i++
		width := 0
		switch unit {
		case "year":
			width = 3
		case "mon", "month", "week":
			width = 4
		case "day", "hour", "minute", "min", "second", "sec", "millisecond", "microsecond":
			width = 5
		default:
			return false
		}
		if !digits(strings.SplitN(num, ".", 2)[0], width) {
			return false
		}
	}
	return true
}

// digits reports 1 to n decimal digits.
func digits(s string, n int) bool {
	if len(s) == 0 || len(s) > n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// shiftedTime reports a time shifted by a small constant: now() or a
// table's column passed on (stored values, not the role's choice), plus
// or minus a constant of small numbers ("ordered_at > now() - interval
// '30 days'").
func (c *checker) shiftedTime(n *node, x *pg_query.A_Expr) bool {
	if x.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP || len(x.GetName()) != 1 {
		return false
	}
	if op := x.GetName()[0].GetString_().GetSval(); op != "+" && op != "-" {
		return false
	}
	small := func(e *pg_query.Node) bool {
		for e.GetTypeCast() != nil {
			e = e.GetTypeCast().GetArg()
		}
		switch k := e.GetAConst(); {
		case k.GetSval() != nil:
			return smallShift(k.GetSval().GetSval())
		case k.GetIval() != nil:
			return k.GetIval().GetIval() > -100000 && k.GetIval().GetIval() < 100000
		}
		return false
	}
	l, r := x.GetLexpr(), x.GetRexpr()
	return l != nil && r != nil && (c.timeSource(n, l) && small(r) || small(l) && c.timeSource(n, r) && x.GetName()[0].GetString_().GetSval() == "+")
}

// timeSource reports the current time or a table's column passed on: a
// stored value, not a constant the role chose at the edge of the range.
func (c *checker) timeSource(n *node, e *pg_query.Node) bool {
	if e.GetSqlvalueFunction() != nil {
		return true
	}
	if f := e.GetFuncCall(); f != nil && len(f.GetArgs()) == 0 {
		switch funcName(f) {
		case "now", "transaction_timestamp", "statement_timestamp":
			return true
		}
	}
	return e.GetColumnRef() != nil && c.eval(n, e).bare
}

// failFreeOperator says why an operator can fail ("" when it cannot):
// comparisons and LIKE with a constant pattern that does not end in its
// escape character cannot.
func failFreeOperator(x *pg_query.A_Expr) string {
	op := ""
	if ns := x.GetName(); len(ns) > 0 {
		op = ns[len(ns)-1].GetString_().GetSval()
		if len(ns) == 2 && ns[0].GetString_().GetSval() != "pg_catalog" {
			return "the operator " + op + " of another schema"
		}
	}
	switch x.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NULLIF,
		pg_query.A_Expr_Kind_AEXPR_IN:
		return ""
	case pg_query.A_Expr_Kind_AEXPR_OP, pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
	default:
		return "the operator " + op
	}
	switch op {
	case "=", "<>", "<", ">", "<=", ">=":
		return ""
	case "~~", "!~~", "~~*", "!~~*":
		if p := x.GetRexpr(); p != nil {
			for p.GetTypeCast() != nil {
				p = p.GetTypeCast().GetArg()
			}
			// A pattern of many wildcards recurses once per '%' and
			// runs out of stack on long enough text.
			if s := p.GetAConst().GetSval(); s != nil && !strings.HasSuffix(s.GetSval(), `\`) &&
				strings.Count(s.GetSval(), "%") <= maxLikeWildcards && len(s.GetSval()) <= maxLikePattern {
				return ""
			}
		}
		return "LIKE with a pattern that is not a short constant"
	}
	return "the operator " + op
}

// LIKE patterns allowed where the server stops early: short, and with
// few '%' (each one a level of recursion in the matcher).
const (
	maxLikeWildcards = 16
	maxLikePattern   = 1000
)

// oneRow reports a subplan that returns exactly one row (a plain
// aggregate): it cannot fail for returning more than one.
func oneRow(sp *node) bool {
	for (sp.typ == "Result" || sp.typ == "Limit") && len(sp.kids) > 0 && sp.kids[0].parentRel == "Outer" {
		sp = sp.kids[0]
	}
	if sp.typ == "Aggregate" && sp.strategy == "Plain" {
		// GROUPING SETS ((), ()) gives a row per empty set.
		return sp.sets <= 1
	}
	if sp.typ != "Result" {
		return false
	}
	for _, k := range sp.kids {
		if k.parentRel != "InitPlan" && k.parentRel != "SubPlan" {
			return false
		}
	}
	return true // a Result without input: one row
}

// failFreeCall says why a function call can fail ("" when it cannot):
// count, min and max, bool_and and bool_or, numbering window functions,
// lower, upper and the lengths of text, coalesce, now(), and date_trunc
// and date_part of a field every date and time type has.
func (c *checker) failFreeCall(n *node, f *pg_query.FuncCall) string {
	name := funcName(f)
	if fn := f.GetFuncname(); len(fn) == 2 && fn[0].GetString_().GetSval() != "pg_catalog" {
		return "the function " + fn[0].GetString_().GetSval() + "." + name + "()"
	}
	switch name {
	case fnSubplan, fnSubplanCol, fnInitplanCol:
		// Its plan is checked as run for the rows reached; a scalar
		// subquery fails when it returns more than one row (EXISTS and
		// ANY cannot be told from it before PostgreSQL 17; hashed, it
		// is ANY).
		kind, nums := "SubPlan", f.GetArgs()
		switch name {
		case fnInitplanCol:
			kind, nums = "InitPlan", nums[:1]
		case fnSubplanCol:
			nums = nums[:1]
		}
		if name == fnSubplan && len(nums) > 1 {
			return "" // (alternatives: SubPlan n or hashed SubPlan m): ANY
		}
		for _, a := range nums {
			key := fmt.Sprintf("%s %d", kind, a.GetAConst().GetIval().GetIval())
			if sp := c.subplans[key]; !c.hashed[key] && (sp == nil || !oneRow(sp)) {
				return "a subquery that may return more than one row"
			}
		}
		return ""
	case fnAny:
		return ""
	case "count", "min", "max", "bool_and", "bool_or", "every", "row_number", "rank", "dense_rank", "percent_rank", "cume_dist",
		"lower", "upper", "coalesce", "now",
		"transaction_timestamp", "statement_timestamp":
		return ""
	case "length", "char_length", "character_length", "octet_length":
		if len(f.GetArgs()) == 1 {
			return "" // length(bytea, encoding) fails on bytes invalid in it
		}
	case "date_trunc", "date_part", "extract":
		// Of a field the value's type has, and of a stored value or the
		// current time: date_trunc('year', '4714-11-24 BC') leaves the
		// range of timestamps. date_trunc takes timestamps and intervals
		// (a date is cast, which counts as failing); date_part and
		// extract also take dates and times, which lack most fields
		// (extract(hour FROM a date) fails on every row it reaches), so
		// of those only epoch, which every type has.
		if len(f.GetArgs()) != 2 || !c.timeSource(n, f.GetArgs()[1]) {
			break
		}
		field := strings.ToLower(constText(f.GetArgs()[0]))
		if name == "date_trunc" && everyDateField(field) || field == "epoch" {
			return ""
		}
	}
	return name + "()"
}

// aggregateCall reports a call of an aggregate: with the syntax only
// aggregates have, or a built-in one by name.
func aggregateCall(f *pg_query.FuncCall) bool {
	if f.GetAggStar() || f.GetAggDistinct() || f.GetAggWithinGroup() || len(f.GetAggOrder()) > 0 || f.GetAggFilter() != nil ||
		sqlinfo.OrderedAggregate(f) {
		return true
	}
	switch funcName(f) {
	case "count", "mode", "percentile_cont", "percentile_disc":
		return true
	}
	return false
}

// everyDateField reports a field that date_trunc accepts for timestamps
// and intervals alike.
func everyDateField(f string) bool {
	switch f {
	case "microseconds", "milliseconds", "second", "minute", "hour", "day", "month", "quarter", "year", "decade", "century",
		"millennium":
		return true
	}
	return false
}

// constText is the value of a string constant (casts left out).
func constText(e *pg_query.Node) string {
	for e.GetTypeCast() != nil {
		e = e.GetTypeCast().GetArg()
	}
	return e.GetAConst().GetSval().GetSval()
}
