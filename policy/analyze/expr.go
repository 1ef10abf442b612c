package analyze

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// nodeLabel describes expression nodes in messages.
func nodeLabel(kind string) string {
	switch kind {
	case "CaseExpr":
		return "in CASE"
	case "CoalesceExpr":
		return "in COALESCE"
	case "MinMaxExpr":
		return "in GREATEST/LEAST"
	case "RowExpr":
		return "in ROW()"
	case "A_ArrayExpr":
		return "in an ARRAY constructor"
	case "NullTest":
		return "in IS NULL"
	case "BooleanTest":
		return "in IS TRUE/FALSE"
	case "XmlExpr":
		return "in an XML expression"
	case "XmlSerialize":
		return "in XMLSERIALIZE"
	case "CollateClause":
		return "in COLLATE"
	case "A_Indirection":
		return "in a subscript or field selection"
	case "JsonObjectConstructor":
		return "in a JSON constructor"
	case "JsonArrayConstructor":
		return "in a JSON constructor"
	case "JsonIsPredicate":
		return "in IS JSON"
	case "JsonFuncExpr":
		return "in a JSON function"
	case "SQLValueFunction":
		return "in an expression"
	}
	return ""
}

// expr analyses an expression at position c and returns its value: the
// protected columns it passes on unchanged (a bare column, a scalar
// subquery), nothing for anything computed.
func (a *analyzer) expr(sc *scope, n *pg_query.Node, c ctx) (value, error) {
	if n == nil || n.Node == nil {
		return value{}, nil
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		v, err := a.columnRef(sc, x.ColumnRef.GetFields())
		if err != nil {
			return value{}, err
		}
		a.noteReads(v)
		return v, a.check(v, c)
	case *pg_query.Node_AConst, *pg_query.Node_ParamRef, *pg_query.Node_SqlvalueFunction:
		return value{}, nil
	case *pg_query.Node_FuncCall:
		return value{}, a.funcCall(sc, x.FuncCall, c)
	case *pg_query.Node_AExpr:
		return value{}, a.aExpr(sc, x.AExpr, c)
	case *pg_query.Node_BoolExpr:
		for _, arg := range x.BoolExpr.GetArgs() {
			if _, err := a.expr(sc, arg, c.other()); err != nil {
				return value{}, err
			}
		}
		return value{}, nil
	case *pg_query.Node_SubLink:
		return a.subLink(sc, x.SubLink, c)
	case *pg_query.Node_TypeCast:
		if names := x.TypeCast.GetTypeName().GetNames(); a.restricted && len(names) > 1 {
			if schema := names[0].GetString_().GetSval(); schema != "pg_catalog" && schema != "information_schema" {
				// A cast to a domain runs its CHECK, an owner's function
				// the allow list never sees, which may raise any message.
				return value{}, &Refusal{Function: "a cast to " + schema + "." + names[len(names)-1].GetString_().GetSval(), Clause: c.clause,
					Reason: "casts to a type outside pg_catalog, whose checks run functions the policy does not list",
					Rule:   "user-defined functions must be listed under functions.allow in the policy"}
			}
		}
		_, err := a.expr(sc, x.TypeCast.GetArg(), c.with("in a cast"))
		return value{}, err
	case *pg_query.Node_NullTest:
		arg := ctx{clause: c.clause, how: nodeLabel("NullTest"), use: useCount}
		if x.NullTest.GetArg().GetColumnRef() == nil {
			arg.use = useOther // a row's IS NULL tests every field
		}
		_, err := a.expr(sc, x.NullTest.GetArg(), arg)
		return value{}, err
	case *pg_query.Node_AIndirection:
		ind := x.AIndirection
		if cr := ind.GetArg().GetColumnRef(); cr != nil && !isStar(cr) {
			fields := append([]*pg_query.Node{}, cr.GetFields()...)
			allNames := true
			for _, i := range ind.GetIndirection() {
				if i.GetString_() == nil {
					allNames = false
				}
			}
			if allNames {
				// (t).col is the column col of t.
				v, err := a.columnRef(sc, append(fields, ind.GetIndirection()...))
				if err != nil {
					return value{}, err
				}
				return v, a.check(v, c)
			}
		}
		return value{}, a.children(sc, n.ProtoReflect(), c.with(nodeLabel("A_Indirection")))
	case *pg_query.Node_GroupingFunc:
		for _, arg := range x.GroupingFunc.GetArgs() {
			if _, err := a.expr(sc, arg, ctx{clause: c.clause, how: "in GROUPING()", use: useGroup}); err != nil {
				return value{}, err
			}
		}
		return value{}, nil
	case *pg_query.Node_List:
		for _, item := range x.List.GetItems() {
			if _, err := a.expr(sc, item, c); err != nil {
				return value{}, err
			}
		}
		return value{}, nil
	case *pg_query.Node_SelectStmt:
		cols, err := a.query(sc, x.SelectStmt, levelSub)
		if err != nil {
			return value{}, err
		}
		for _, col := range cols {
			if err := a.check(col.val, c.with("in a subquery")); err != nil {
				return value{}, err
			}
		}
		return value{}, nil
	case *pg_query.Node_ResTarget:
		_, err := a.expr(sc, x.ResTarget.GetVal(), c)
		return value{}, err
	case *pg_query.Node_SortBy:
		_, err := a.expr(sc, x.SortBy.GetNode(), c.with("in ORDER BY"))
		return value{}, err
	case *pg_query.Node_WindowDef:
		return value{}, a.windowDef(sc, x.WindowDef)
	case *pg_query.Node_RangeVar,
		*pg_query.Node_RangeSubselect, *pg_query.Node_JoinExpr, *pg_query.Node_CommonTableExpr:
		return value{}, &Refusal{Reason: "a " + sqlinfo.KindOf(n) + " inside an expression is not supported", Rule: "SQL pgpseudo cannot analyse is refused for restricted roles"}
	}
	label := nodeLabel(sqlinfo.KindOf(n))
	if label == "" {
		label = "in an expression"
	}
	if c.how == "" || label != "in an expression" {
		c.how = label
	}
	return value{}, a.children(sc, n.ProtoReflect(), c.other())
}

// children analyses every expression below m at position c.
func (a *analyzer) children(sc *scope, m protoreflect.Message, c ctx) error {
	var err error
	visit := func(cm protoreflect.Message) bool {
		if n, ok := cm.Interface().(*pg_query.Node); ok {
			_, err = a.expr(sc, n, c)
		} else {
			err = a.children(sc, cm, c)
		}
		return err == nil
	}
	sqlinfo.EachChild(m, visit)
	return err
}

// columnRef resolves a column reference (fields as written).
// noteReads records the classified columns a reference reads.
func (a *analyzer) noteReads(v value) {
	for _, s := range v.srcs {
		if s.column == "" || s.column == "*" || s.dec.Category == "" {
			continue
		}
		if !slices.ContainsFunc(a.reads, func(r ColumnRead) bool { return r.Table == s.table && r.Column == s.column }) {
			a.reads = append(a.reads, ColumnRead{Table: s.table, Column: s.column, Decision: s.dec})
		}
	}
}

func (a *analyzer) columnRef(sc *scope, fields []*pg_query.Node) (value, error) {
	names := make([]string, 0, len(fields))
	star := false
	for _, f := range fields {
		if f.GetAStar() != nil {
			star = true
			break
		}
		names = append(names, f.GetString_().GetSval())
	}
	if star {
		if len(names) == 0 {
			var vs []value
			for _, r := range sc.ns {
				if r.colsVisible {
					vs = append(vs, r.whole("*"))
				}
			}
			v := merge(vs...)
			v.wholeRow = "*"
			return v, nil
		}
		r := a.findRel(sc, fields[:len(names)])
		if r == nil {
			return value{}, a.unresolvedRelation(fields[:len(names)])
		}
		return r.whole(strings.Join(names, ".")), nil
	}
	if len(names) == 0 {
		return value{}, &Refusal{Reason: "an empty column reference", Rule: "SQL pgpseudo cannot analyse is refused for restricted roles"}
	}
	if len(names) == 1 {
		if v, ok := a.resolveUnqualified(sc, names[0]); ok {
			return v, nil
		}
		if r := a.findRel(sc, fields[:1]); r != nil {
			return r.whole(names[0]), nil
		}
		return a.strictest(sc, names[0]), nil
	}
	// Qualified: [catalog.]schema.table.column, table.column, or a field
	// of a composite column.
	for q := len(names) - 1; q >= 1; q-- {
		if r := a.findRel(sc, fields[:q]); r != nil {
			col, ok := r.column(names[q])
			if !ok {
				return value{}, a.unknownColumn(r, names[q], "")
			}
			v := col.val
			if q < len(names)-1 {
				// A field of a composite column: no longer the column.
				v.origin, v.via = originNone, "a field selection"
			}
			return v, nil
		}
	}
	if v, ok := a.resolveUnqualified(sc, names[0]); ok {
		v.origin, v.via = originNone, "a field selection"
		return v, nil
	}
	return a.strictest(sc, strings.Join(names, ".")), nil
}

// resolveUnqualified finds an unqualified column name, innermost query
// level first. Entries with unknown column lists may hold any name, so
// they are kept as candidates while the search goes on outward.
func (a *analyzer) resolveUnqualified(sc *scope, name string) (value, bool) {
	var cand []value
	for s := sc; s != nil; s = s.parent {
		var found, unknown []value
		for _, r := range s.ns {
			if !r.colsVisible {
				continue
			}
			switch {
			case containsName(r.cols, name), r.baseRel && isSystemColumn(name):
				c, _ := r.column(name)
				found = append(found, c.val)
			case r.unknown:
				unknown = append(unknown, r.unknownVal)
			}
		}
		if len(found) > 0 {
			return one(append(cand, found...)), true
		}
		cand = append(cand, unknown...)
	}
	if len(cand) == 0 {
		return value{}, false
	}
	v := merge(cand...)
	v.mixed = false // candidates, not a mixture of values
	return v, true
}

func containsName(cols []column, name string) bool {
	for _, c := range cols {
		if c.name == name {
			return true
		}
	}
	return false
}

// findRel finds the range entry a qualifier names: [schema.]name.
func (a *analyzer) findRel(sc *scope, q []*pg_query.Node) *rte {
	var schema, name string
	switch len(q) {
	case 1:
		name = q[0].GetString_().GetSval()
	case 2, 3:
		schema, name = q[len(q)-2].GetString_().GetSval(), q[len(q)-1].GetString_().GetSval()
	default:
		return nil
	}
	for s := sc; s != nil; s = s.parent {
		for _, r := range s.ns {
			if r.relVisible && r.name == name && (schema == "" || r.schema == schema) && name != "" {
				return r
			}
		}
	}
	return nil
}

// strictest is the value of an unresolvable reference: every protected
// column of every relation in scope.
func (a *analyzer) strictest(sc *scope, name string) value {
	var vs []value
	for s := sc; s != nil; s = s.parent {
		for _, r := range s.ns {
			vs = append(vs, r.whole(""))
		}
	}
	v := merge(vs...)
	v.wholeRow, v.unresolved = "", name
	return v
}

func (a *analyzer) unresolvedRelation(q []*pg_query.Node) error {
	var parts []string
	for _, n := range q {
		parts = append(parts, quoteIdent(n.GetString_().GetSval()))
	}
	return &Refusal{Relation: strings.Join(parts, "."), Reason: "is not in the query's FROM clause",
		Rule: ruleUnresolvedRef}
}

func (a *analyzer) unknownColumn(r *rte, name, clause string) error {
	return &Refusal{Column: r.name + "." + name, Clause: clause,
		Reason: "does not exist (t.name could call a function name(t) on the whole row)",
		Rule:   ruleUnresolvedRef}
}

// isColumnLike reports expressions that pass a column's values on
// unchanged: a column reference, (t).col, a scalar subquery.
func isColumnLike(n *pg_query.Node) bool {
	switch {
	case n.GetColumnRef() != nil:
		return !isStar(n.GetColumnRef())
	case n.GetAIndirection() != nil:
		ind := n.GetAIndirection()
		if ind.GetArg().GetColumnRef() == nil {
			return false
		}
		for _, i := range ind.GetIndirection() {
			if i.GetString_() == nil {
				return false
			}
		}
		return true
	case n.GetSubLink() != nil:
		return n.GetSubLink().GetSubLinkType() == pg_query.SubLinkType_EXPR_SUBLINK
	}
	return false
}

func opName(names []*pg_query.Node) (schema, op string) {
	if len(names) == 0 {
		return "", ""
	}
	op = names[len(names)-1].GetString_().GetSval()
	if len(names) > 1 {
		schema = names[len(names)-2].GetString_().GetSval()
	}
	return schema, op
}

// aExpr analyses operators, comparisons, IN, LIKE, BETWEEN, ….
func (a *analyzer) aExpr(sc *scope, e *pg_query.A_Expr, c ctx) error {
	schema, op := opName(e.GetName())
	if schema != "" && schema != "pg_catalog" && !a.functionAllowed(schema, op) {
		// Operators run their function; only explicitly qualified ones
		// can be told apart here (see the package documentation).
		return &Refusal{Function: "OPERATOR(" + schema + "." + op + ")", Clause: c.clause, Reason: "is not a pg_catalog operator",
			Rule: "user-defined functions and operators must be listed under functions.allow in the policy"}
	}
	kind := e.GetKind()
	if handled, err := a.drillDown(sc, e, op, c); handled {
		return err
	}
	if (kind == pg_query.A_Expr_Kind_AEXPR_OP && op == "=" || kind == pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT) &&
		isColumnLike(e.GetLexpr()) && isColumnLike(e.GetRexpr()) {
		l, err := a.expr(sc, e.GetLexpr(), c.pass())
		if err != nil {
			return err
		}
		r, err := a.expr(sc, e.GetRexpr(), c.pass())
		if err != nil {
			return err
		}
		return a.equality([]value{l, r}, ctx{clause: c.clause, how: "in an equality"})
	}
	how := ""
	switch kind {
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		how = "in LIKE/ILIKE/SIMILAR TO"
	case pg_query.A_Expr_Kind_AEXPR_IN:
		how = "in IN (…)"
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		how = "in BETWEEN"
	case pg_query.A_Expr_Kind_AEXPR_NULLIF:
		how = "in NULLIF"
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		how = "in a comparison (" + op + " ANY/ALL)"
	default:
		how = "in a comparison or operator (" + op + ")"
	}
	sub := c.with(how)
	for _, side := range []*pg_query.Node{e.GetLexpr(), e.GetRexpr()} {
		if _, err := a.expr(sc, side, sub); err != nil {
			return err
		}
	}
	return nil
}

// drillDown analyses a drill-down filter: a pseudonymised column of a
// reversible token domain compared for equality with literals (col = lit,
// lit = col, col IN (lit, …)), which the proxy decodes and sends as their
// clear values (sqlinfo.Drill). handled is false for anything else.
func (a *analyzer) drillDown(sc *scope, e *pg_query.A_Expr, op string, c ctx) (handled bool, err error) {
	var col *pg_query.Node
	var lits []*pg_query.Node
	switch e.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if op != "=" {
			return false, nil
		}
		col, lits = e.GetLexpr(), []*pg_query.Node{e.GetRexpr()}
		if !isColumnLike(col) {
			col, lits = e.GetRexpr(), []*pg_query.Node{e.GetLexpr()}
		}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		if op != "=" {
			return false, nil // NOT IN
		}
		col, lits = e.GetLexpr(), e.GetRexpr().GetList().GetItems()
	default:
		return false, nil
	}
	if !isColumnLike(col) || len(lits) == 0 {
		return false, nil
	}
	for _, l := range lits {
		if _, _, ok := sqlinfo.DrillLiteral(l); !ok && l.GetParamRef() == nil {
			return false, nil
		}
	}
	if a.noDrill {
		return false, nil
	}
	v, err := a.expr(sc, col, c.pass())
	if err != nil {
		return true, err
	}
	if len(v.srcs) != 1 || v.mixed || v.taint != nil || v.unresolved != "" || v.wholeRow != "" {
		return false, nil
	}
	s := v.srcs[0]
	if s.dec.Action != policy.Tokenize || !oneToOne(s.dec) {
		return false, nil
	}
	if !s.dec.Spec.Reversible {
		how := "compared with a literal (a token?)"
		if e.GetKind() == pg_query.A_Expr_Kind_AEXPR_IN {
			how = "in IN (…) with literals (tokens?)"
		}
		return true, &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause, How: how,
			Reason: a.describe(s) + fmt.Sprintf(" in token domain %q, which is not reversible", s.domain),
			Rule:   s.dec.Rule + "; drill-down on a token (filtering on it) needs a reversible token domain (reversible: true), whose tokens the proxy decodes; other literals would probe clear values"}
	}
	for _, l := range lits {
		d := sqlinfo.Drill{Domain: s.domain, Schema: s.table.Schema, Table: s.table.Table, Column: s.column}
		if p := l.GetParamRef(); p != nil {
			d.Param = int(p.GetNumber())
		} else {
			d.Literal, d.Location, _ = sqlinfo.DrillLiteral(l)
		}
		a.drills = append(a.drills, d)
	}
	return true, nil
}

// drillParams checks that every parameter a drill-down decodes is used
// nowhere else in statement n: elsewhere its clear value would be
// compared with, or returned as, something else.
func (a *analyzer) drillParams(n *pg_query.Node) error {
	uses := map[int]int{}
	var first *sqlinfo.Drill
	for i, d := range a.drills {
		if d.Param > 0 {
			uses[d.Param]++
			if first == nil {
				first = &a.drills[i]
			}
		}
	}
	if first == nil {
		return nil
	}
	for p, k := range sqlinfo.ParamUses(n) {
		if c, ok := uses[p]; ok && c != k {
			return &Refusal{Table: policy.TableName{Schema: first.Schema, Table: first.Table}, Column: first.Column, Clause: "WHERE",
				How:    fmt.Sprintf("compared with parameter $%d, which the statement also uses elsewhere", p),
				Reason: "is in a reversible token domain: the proxy decodes such a parameter's token",
				Rule:   "a drill-down parameter may only be compared for equality with columns of its token domain"}
		}
	}
	return nil
}

// subLink analyses EXISTS, IN/ANY/ALL, scalar and ARRAY subqueries.
func (a *analyzer) subLink(sc *scope, s *pg_query.SubLink, c ctx) (value, error) {
	sel := s.GetSubselect().GetSelectStmt()
	if sel == nil {
		return value{}, &Refusal{Reason: "a subquery that is not a SELECT", Rule: "restricted roles may only run read statements"}
	}
	cols, err := a.query(sc, sel, levelSub)
	if err != nil {
		return value{}, err
	}
	switch s.GetSubLinkType() {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
		return value{}, nil
	case pg_query.SubLinkType_EXPR_SUBLINK:
		vs := make([]value, 0, len(cols)+1)
		for _, col := range cols {
			vs = append(vs, col.val)
		}
		v := one(vs)
		v.origin, v.via = originNone, "a scalar subquery"
		return v, a.check(v, c)
	case pg_query.SubLinkType_ANY_SUBLINK:
		_, op := opName(s.GetOperName())
		if (op == "" || op == "=") && isColumnLike(s.GetTestexpr()) && len(cols) == 1 {
			t, err := a.expr(sc, s.GetTestexpr(), c.pass())
			if err != nil {
				return value{}, err
			}
			return value{}, a.equality([]value{t, cols[0].val}, ctx{clause: c.clause, how: "in IN (subquery)"})
		}
	}
	sub := c.with("in a comparison with a subquery")
	if s.GetTestexpr() != nil {
		if _, err := a.expr(sc, s.GetTestexpr(), sub); err != nil {
			return value{}, err
		}
	}
	for _, col := range cols {
		if err := a.check(col.val, sub); err != nil {
			return value{}, err
		}
	}
	return value{}, nil
}

func funcName(names []*pg_query.Node) (schema, name string) {
	return opName(names)
}

// funcCall analyses a function call: the function itself, then its
// arguments (count() may count pseudonymised columns).
func (a *analyzer) funcCall(sc *scope, f *pg_query.FuncCall, c ctx) error {
	schema, name := funcName(f.GetFuncname())
	if ref, err := a.checkFunction(schema, name); err != nil || ref != nil {
		if ref != nil {
			ref.Clause = c.clause
			return ref
		}
		return err
	}
	builtin := schema == "" || schema == "pg_catalog"
	if builtin && name == "set_config" {
		return a.setConfig(sc, f, c)
	}
	argc := ctx{clause: c.clause, how: "as an argument of " + name + "()", use: useOther}
	if builtin && name == "count" && len(f.GetAggOrder()) == 0 {
		argc.use = useCountDistinct
		if !f.GetAggDistinct() {
			argc.use = useCountRows
		}
	}
	for _, arg := range f.GetArgs() {
		if na := arg.GetNamedArgExpr(); na != nil {
			arg = na.GetArg()
		}
		if _, err := a.expr(sc, arg, argc); err != nil {
			return err
		}
	}
	for _, o := range f.GetAggOrder() {
		if sb := o.GetSortBy(); sb != nil {
			if _, err := a.expr(sc, sb.GetNode(), ctx{clause: c.clause, how: "in the ORDER BY of " + name + "()", use: useOther}); err != nil {
				return err
			}
		}
	}
	if fl := f.GetAggFilter(); fl != nil {
		if _, err := a.expr(sc, fl, ctx{clause: c.clause, how: "in the FILTER of " + name + "()", use: useOther}); err != nil {
			return err
		}
	}
	if w := f.GetOver(); w != nil {
		return a.windowDef(sc, w)
	}
	return nil
}

// windowDef analyses OVER (…) and WINDOW definitions: PARTITION BY
// groups, ORDER BY orders.
func (a *analyzer) windowDef(sc *scope, w *pg_query.WindowDef) error {
	if w == nil {
		return nil
	}
	for _, p := range w.GetPartitionClause() {
		if _, err := a.expr(sc, p, ctx{clause: "PARTITION BY", use: useGroup}); err != nil {
			return err
		}
	}
	for _, o := range w.GetOrderClause() {
		if sb := o.GetSortBy(); sb != nil {
			if _, err := a.expr(sc, sb.GetNode(), ctx{clause: "the ORDER BY of a window", use: useOther}); err != nil {
				return err
			}
		}
	}
	for _, off := range []*pg_query.Node{w.GetStartOffset(), w.GetEndOffset()} {
		if _, err := a.expr(sc, off, ctx{clause: "a window frame", use: useOther}); err != nil {
			return err
		}
	}
	return nil
}

// position returns the 1-based select-list position an ORDER BY or
// GROUP BY integer constant refers to, or 0.
func position(n *pg_query.Node) int {
	if c := n.GetAConst(); c != nil && c.GetIval() != nil {
		return int(c.GetIval().GetIval())
	}
	return 0
}

func singleName(n *pg_query.Node) string {
	if cr := n.GetColumnRef(); cr != nil && len(cr.GetFields()) == 1 {
		return cr.GetFields()[0].GetString_().GetSval()
	}
	return ""
}

// groupItem analyses a GROUP BY item: positions and output names refer
// to the select list, but an input column wins over an output name.
// groupKeys is what the analysis of a query's GROUP BY found: whether
// every key is a stored column, and which names name select list
// entries rather than columns.
type groupKeys struct {
	stored  bool
	aliases []string
}

func (a *analyzer) groupItem(sc *scope, n *pg_query.Node, outs []column, keys *groupKeys) error {
	c := ctx{clause: "GROUP BY", use: useGroup}
	if k := position(n); k > 0 && k <= len(outs) {
		keys.stored = keys.stored && storedColumn(outs[k-1].val)
		return a.check(outs[k-1].val, c)
	}
	if gs := n.GetGroupingSet(); gs != nil {
		for _, item := range gs.GetContent() {
			if err := a.groupItem(sc, item, outs, keys); err != nil {
				return err
			}
		}
		return nil
	}
	if row := n.GetRowExpr(); row != nil {
		keys.stored = false // at the top a row is one key, computed
		for _, item := range row.GetArgs() {
			if err := a.groupItem(sc, item, outs, keys); err != nil {
				return err
			}
		}
		return nil
	}
	if name := singleName(n); name != "" {
		if _, ok := a.resolveUnqualified(&scope{ns: sc.ns}, name); !ok {
			for _, o := range outs {
				if o.name == name {
					keys.stored = keys.stored && storedColumn(o.val)
					keys.aliases = append(keys.aliases, name)
					return a.check(o.val, c)
				}
			}
		}
	}
	v, err := a.expr(sc, n, c)
	keys.stored = keys.stored && storedColumn(v)
	return err
}

// sortItem analyses an ORDER BY or DISTINCT ON item: positions and
// output names refer to the select list first.
func (a *analyzer) sortItem(sc *scope, n *pg_query.Node, outs []column, c ctx) (value, error) {
	if k := position(n); k > 0 && k <= len(outs) {
		return outs[k-1].val, a.check(outs[k-1].val, c)
	}
	if name := singleName(n); name != "" {
		var vs []value
		for _, o := range outs {
			if o.name == name {
				vs = append(vs, o.val)
			}
		}
		if len(vs) > 0 {
			v := one(vs)
			return v, a.check(v, c)
		}
	}
	return a.expr(sc, n, c)
}

// constString returns a string constant, also through a cast.
func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.GetArg()
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().GetSval(), true
	}
	return "", false
}

// constBool returns a boolean constant (true, false, 't', 'off', …).
func constBool(n *pg_query.Node) (bool, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.GetArg()
	}
	c := n.GetAConst()
	switch {
	case c == nil:
		return false, false
	case c.GetBoolval() != nil:
		return c.GetBoolval().GetBoolval(), true
	case c.GetSval() != nil:
		switch strings.ToLower(c.GetSval().GetSval()) {
		case "t", "true", "on", "yes", "y", "1":
			return true, true
		case "f", "false", "off", "no", "n", "0":
			return false, true
		}
	case c.GetIval() != nil:
		return c.GetIval().GetIval() != 0, true
	}
	return false, false
}

// setConfig analyses set_config(name, value, is_local), which sets a
// parameter like SET does.
func (a *analyzer) setConfig(sc *scope, f *pg_query.FuncCall, c ctx) error {
	args := f.GetArgs()
	refuse := func(reason string) error {
		return &Refusal{Function: "set_config", Clause: c.clause, Reason: reason,
			Rule: "restricted roles may not change role or session authorization, and search_path only in ways pgpseudo can track"}
	}
	if len(args) != 3 {
		return refuse("is called with an unexpected number of arguments")
	}
	name, ok := constString(args[0])
	if !ok && sc.setting != "" && singleName(args[0]) == "name" {
		name, ok = sc.setting, true
	}
	if !ok {
		return refuse("is called with a computed setting name")
	}
	for _, arg := range args {
		if _, err := a.expr(sc, arg, c.with("as an argument of set_config()")); err != nil {
			return err
		}
	}
	if a.restricted {
		value, ok := constString(args[1])
		if why := sqlinfo.LockedSetting(name, value, ok && value != ""); why != "" {
			return &Refusal{Function: "set_config", Clause: c.clause,
				Reason: "changes setting " + strings.ToLower(name) + ", which is locked for restricted roles", Rule: why}
		}
	}
	switch strings.ToLower(name) {
	case "role", "session_authorization":
		return refuse("sets " + name)
	case "datestyle":
		if a.restricted {
			// Rows after the call would print dates in the new style
			// before the server reports it (use SET, which the proxy
			// follows).
			return &Refusal{Function: "set_config", Clause: c.clause, Reason: "sets DateStyle, which the proxy must read dates in",
				Rule: "restricted roles change DateStyle with SET, which pgpseudo follows"}
		}
	case "search_path":
		val, ok1 := constString(args[1])
		local, ok2 := constBool(args[2])
		if !ok1 || !ok2 {
			return refuse("sets search_path to a computed value")
		}
		if local && !a.inTx {
			return refuse("sets search_path for the transaction only, outside a transaction block")
		}
		if f != a.bareSetConfig {
			return refuse("sets search_path inside a larger query, where it may run any number of times or not at all")
		}
		return a.setSearchPath(ParseSearchPath(val), "set_config('search_path', …)")
	}
	return nil
}

// set analyses SET and RESET.
func (a *analyzer) set(v *pg_query.VariableSetStmt) error {
	name := strings.ToLower(v.GetName())
	switch v.GetKind() {
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		// Every setting returns to the session's default, which pgpseudo
		// checked at login.
		return a.setSearchPath(a.s.DefaultSearchPath, "RESET ALL")
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		return nil
	}
	if a.restricted {
		value, ok := "", true
		if v.GetKind() == pg_query.VariableSetKind_VAR_SET_VALUE {
			value, ok = "", false
			if args := v.GetArgs(); len(args) == 1 {
				value, ok = constString(args[0])
			}
		}
		if why := sqlinfo.LockedSetting(name, value, ok); why != "" {
			return lockedSetting("VariableSet", name, why)
		}
	}
	switch name {
	case "role", "session_authorization":
		return &Refusal{StatementKind: "VariableSet", Reason: "SET/RESET " + strings.ToUpper(strings.ReplaceAll(name, "_", " ")) + " changes the database identity",
			Rule: "identity comes from pgpseudo's authentication; restricted roles may not change role or session authorization"}
	case "search_path":
		if v.GetIsLocal() && !a.inTx {
			// Outside a transaction block it changes nothing (a warning).
			return &Refusal{StatementKind: "VariableSet", Reason: "SET LOCAL search_path outside a transaction block changes nothing",
				Rule: "restricted roles may change search_path only in ways pgpseudo can track"}
		}
		switch v.GetKind() {
		case pg_query.VariableSetKind_VAR_SET_VALUE:
			var path []string
			for _, arg := range v.GetArgs() {
				c := arg.GetAConst()
				switch {
				case c != nil && c.GetSval() != nil:
					path = append(path, c.GetSval().GetSval())
				case c != nil && c.GetIval() != nil:
					path = append(path, strconv.Itoa(int(c.GetIval().GetIval())))
				default:
					return &Refusal{StatementKind: "VariableSet", Reason: "SET search_path with a value pgpseudo cannot read",
						Rule: "restricted roles may change search_path only in ways pgpseudo can track"}
				}
			}
			return a.setSearchPath(path, "SET search_path")
		case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
			return a.setSearchPath(a.s.DefaultSearchPath, "RESET search_path")
		}
	}
	return nil
}

// setSearchPath records a search_path change for the next statements.
// Inside a transaction block (across query strings) the session follows
// what the server confirms after it: a rollback may undo the change, so
// until the server-side check has read the path again, every statement is
// checked afresh (proxy/analysis.go). A string that mixes transaction
// control with the change would have to be followed statement by
// statement within it.
func (a *analyzer) setSearchPath(path []string, what string) error {
	if a.multiTx {
		return &Refusal{Reason: what + " in a query string that also begins or ends a transaction",
			Rule: "restricted roles may change search_path only in query strings without transaction control"}
	}
	if a.restricted {
		if err := shadowedCatalog(path); err != nil {
			return err
		}
	}
	// The statement itself was resolved with the old path.
	a.nextPath = append([]string{}, path...)
	a.pathChanged = true
	return nil
}

// lockedSetting refuses a change of a setting the lexing of later
// statements depends on.
func lockedSetting(kind, name, why string) *Refusal {
	return &Refusal{StatementKind: kind, Setting: strings.ToLower(name), Reason: "is locked for restricted roles", Rule: why}
}

// ParseSearchPath splits a search_path setting as PostgreSQL does:
// comma-separated identifiers, unquoted ones folded to lower case.
func ParseSearchPath(s string) []string {
	var out []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			return out
		}
		var b strings.Builder
		if s[i] == '"' {
			i++
			for i < len(s) {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' {
				i++
			}
			b.WriteString(strings.ToLower(strings.TrimRight(s[start:i], " \t\n\r")))
		}
		out = append(out, b.String())
		for i < len(s) && s[i] != ',' {
			i++
		}
		if i >= len(s) {
			return out
		}
		i++ // ','
	}
}

// checkFunction refuses denied built-ins and functions that are neither
// pg_catalog built-ins nor allow-listed; the error is a catalog failure.
func (a *analyzer) checkFunction(schema, name string) (*Refusal, error) {
	full := name
	if schema != "" {
		full = schema + "." + name
	}
	if DeniedFunction(name) {
		return &Refusal{Function: full, Reason: "runs SQL text, reads files, large objects or other sessions' data, or changes server state",
			Rule: "built-in functions on pgpseudo's deny list are refused for restricted roles"}, nil
	}
	switch {
	case schema == "pg_catalog", schema == "information_schema":
		return nil, nil
	case a.functionAllowed(schema, name):
		return nil, nil
	case schema == "":
		ok, err := a.cat.IsBuiltinFunction(a.ctx, "", name, a.searchPath)
		if err != nil {
			return nil, fmt.Errorf("analyze: catalog lookup of function %s: %w", name, err)
		}
		if ok {
			return nil, nil
		}
	}
	return &Refusal{Function: full, Reason: "is not a pg_catalog built-in",
		Rule: "user-defined functions must be listed under functions.allow in the policy"}, nil
}

// functionAllowed matches the policy's functions.allow: "name" allows the
// function in any schema, "schema.name" in that schema (an unqualified
// call matches when the schema is on the search path).
func (a *analyzer) functionAllowed(schema, name string) bool {
	for _, f := range a.pol.FunctionsAllowed {
		fs, fn, qualified := strings.Cut(f, ".")
		if !qualified {
			if f == name {
				return true
			}
			continue
		}
		if fn != name {
			continue
		}
		if schema == fs || schema == "" && contains(a.searchPath, fs) {
			return true
		}
	}
	return false
}
