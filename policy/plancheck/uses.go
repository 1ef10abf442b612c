package plancheck

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// use is what a plan position does with a value.
type use uint8

const (
	useOutput use = iota // an output of a node
	useCache             // a Memoize cache key: compared, never output
	useBool              // a condition: equalities between columns are allowed
	useGroup             // a grouping, de-duplication or hash key
	useJoin              // a merge join's sort key
	useOrder             // an ordering sort key
	useWindow            // a window's partition or order key
	useOther             // anything else (function calls, sampling, …)
)

const (
	ruleBlock  = "blocked columns may only be output bare, where their values leave as NULL"
	rulePseudo = "pseudonymised columns may only be output bare, grouped, counted, or compared for equality with a column of the same token domain"
	ruleOrder  = "rows grouped, de-duplicated, merge-joined or index-scanned on a protected column come back in the proxy's keyed-digest order, never in clear-value order"
	ruleMerged = "generalised columns (year, month, round, shift) may only be output bare: the server groups and compares them on the clear value"
)

// checkNode checks every expression of n and of the nodes below it.
func (c *checker) checkNode(n *node) error {
	for _, e := range n.output {
		ex, err := c.expr(e, plainExpr, c.in.Keywords)
		if err != nil {
			return err
		}
		if err := c.use(n, ex, useOutput, "an output of "+n.typ); err != nil {
			return err
		}
	}
	for _, p := range n.props {
		kind, u := plainExpr, useOther
		switch p.key {
		case "Filter", "Join Filter", "Hash Cond", "Merge Cond", "Index Cond", "Recheck Cond", "One-Time Filter", "TID Cond", "Run Condition":
			u = useBool
		case "Group Key":
			u = useGroup
		case "Cache Key":
			u = useCache
		case "Sort Key", "Presorted Key":
			kind, u = sortExpr, c.sortUse(n)
		case "Function Call", "Table Function Call":
			kind = fromExpr
		case "Window":
			kind, u = windowExpr, useWindow
		}
		for _, e := range p.exprs {
			ex, err := c.expr(e, kind, c.in.Keywords)
			if err != nil {
				return err
			}
			if kind == sortExpr {
				ex = ex.GetSortBy().GetNode()
			}
			if err := c.use(n, ex, u, p.key+" of "+n.typ); err != nil {
				return err
			}
		}
	}
	if err := c.pairedGroupings(n); err != nil {
		return err
	}
	if n.typ == "SetOp" && n.strategy == "Hashed" || n.typ == "HashSetOp" {
		// A hashed INTERSECT or EXCEPT compares whole rows; its keys are
		// not printed.
		for _, k := range n.kids {
			for _, v := range c.outVals(k) {
				if err := c.grouping(n, v, "a hashed set operation"); err != nil {
					return err
				}
			}
		}
	}
	if err := c.orderSources(n); err != nil {
		return err
	}
	for _, k := range n.kids {
		if err := c.checkNode(k); err != nil {
			return err
		}
	}
	return nil
}

// sortUse says what a Sort's keys serve: the first node above that is not
// another sort, gather or materialisation.
func (c *checker) sortUse(n *node) use {
	for m := n.parent; m != nil; m = m.parent {
		switch m.typ {
		case "Sort", "Incremental Sort", "Gather", "Gather Merge", "Materialize":
			continue
		case "Merge Join":
			return useJoin
		case "Aggregate", "Group", "Unique", "SetOp", "GroupAggregate":
			return useGroup
		case "WindowAgg":
			return useWindow
		}
		return useOrder
	}
	return useOrder
}

// use checks an expression of node n used as u.
func (c *checker) use(n *node, e *pg_query.Node, u use, where string) error {
	if c.digest(e) {
		return c.digestUse(n, e, where)
	}
	if k := sqlinfo.CompanionOf(e); k != nil && (u == useOutput || u == useCache || u == useGroup) {
		// A grouping key's companion groups like the key and is carried
		// up to the grouping like it; as a result column it is computed
		// from the key, which the response side withholds.
		e = k
	}
	switch u {
	case useBool:
		if b := e.GetBoolExpr(); b != nil && b.GetBoolop() == pg_query.BoolExprType_AND_EXPR {
			for _, arg := range b.GetArgs() {
				if err := c.use(n, arg, useBool, where); err != nil {
					return err
				}
			}
			return nil
		}
		if ax := e.GetAExpr(); ax != nil && isEquality(ax) {
			l, r := c.eval(n, equalityOperand(ax.GetLexpr())), c.eval(n, equalityOperand(ax.GetRexpr()))
			if l.bare && r.bare && (len(l.srcs) > 0 || len(r.srcs) > 0) {
				return c.equality(l, r, where)
			}
		}
		if ax := e.GetAExpr(); ax != nil && ax.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP_ANY && isEqualityName(ax.GetName()) {
			// col = ANY (ARRAY[…]): a drill-down IN list.
			if arr := ax.GetRexpr().GetAArrayExpr(); arr != nil && len(arr.GetElements()) > 0 {
				l := c.eval(n, ax.GetLexpr())
				drills := true
				for _, el := range arr.GetElements() {
					drills = drills && c.drillVal(c.eval(n, el))
				}
				if l.bare && len(l.srcs) > 0 && drills {
					for _, el := range arr.GetElements() {
						if err := c.equality(l, c.eval(n, el), where); err != nil {
							return err
						}
					}
					return nil
				}
			}
		}
		return c.computed(n, e, where)
	case useOutput, useCache:
		if v := c.eval(n, e); v.bare || v.whole && u == useOutput && n != c.root {
			// Passed on unchanged: the outer node or the client decides. A
			// whole row may go up to a count(), never out.
			return nil
		}
		return c.computed(n, e, where)
	case useGroup, useJoin:
		if v := c.eval(n, e); v.bare {
			for _, s := range v.srcs {
				if blocked(s) {
					return c.refuse(s, where, "as a grouping or join key", ruleBlock)
				}
			}
			if u == useGroup {
				return c.grouping(n, v, where)
			}
			return nil
		}
		return c.computed(n, e, where)
	case useOrder, useWindow:
		v := c.eval(n, e)
		if len(v.srcs) > 0 {
			how := "as a sort key"
			if u == useWindow {
				how = "in a window's partition or order"
			}
			return c.refuse(v.srcs[0], where, how, ruleFor(v.srcs[0]))
		}
		return c.computed(n, e, where)
	}
	return c.computed(n, e, where)
}

// equalityOperand is e without the casts to text the server's plan
// adds around a column to compare it (a join of two varchar columns
// prints as (a.email)::text = (b.email)::text). Only casts that keep
// equality as it is are taken off: to text or varchar without a length,
// never to a length that cuts values (varchar(3) would compare prefixes),
// to name (cut at 63 bytes) or to bpchar (which ignores trailing spaces).
func equalityOperand(e *pg_query.Node) *pg_query.Node {
	inner := e
	for {
		tc := inner.GetTypeCast()
		if tc == nil {
			break
		}
		if t := tc.GetTypeName(); len(t.GetTypmods()) > 0 || len(t.GetArrayBounds()) > 0 ||
			typeName(t) != "text" && typeName(t) != "varchar" && typeName(t) != "character varying" {
			return e
		}
		inner = tc.GetArg()
	}
	if inner.GetColumnRef() == nil {
		return e
	}
	return inner
}

// isEquality reports "a = b" and "a IS NOT DISTINCT FROM b".
func isEquality(ax *pg_query.A_Expr) bool {
	if ax.GetKind() == pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT {
		return true
	}
	if ax.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP {
		return false
	}
	return isEqualityName(ax.GetName())
}

// isEqualityName reports the operator name = (pg_catalog's).
func isEqualityName(names []*pg_query.Node) bool {
	if len(names) == 0 || names[len(names)-1].GetString_().GetSval() != "=" {
		return false
	}
	return len(names) == 1 || names[0].GetString_().GetSval() == "pg_catalog"
}

// equality checks two bare values compared for equality: pseudonymised
// values may meet only values of the same token domain, blocked ones
// never.
func (c *checker) equality(l, r val, where string) error {
	all := append(append([]*src{}, l.srcs...), r.srcs...)
	for _, s := range all {
		if merged(s) {
			return c.refuse(s, where, "compared", ruleMerged)
		}
		if blocked(s) {
			return c.refuse(s, where, "in an equality", ruleBlock)
		}
	}
	if len(l.srcs) == 0 || len(r.srcs) == 0 {
		s := all[0]
		return c.refuse(s, where, "compared with a value outside its token domain", rulePseudo)
	}
	for _, s := range all {
		if s.domain != all[0].domain {
			return c.refuse(all[0], where, fmt.Sprintf("compared with %s.%s (token domain %q, not %q)", s.table, s.column, s.domain, all[0].domain), rulePseudo)
		}
	}
	return nil
}

// grouping records a grouping on pseudonymised values: its rows must come
// back in digest order (orderHidden).
func (c *checker) grouping(n *node, v val, where string) error {
	for _, s := range v.srcs {
		if blocked(s) {
			return c.refuse(s, where, "as a grouping key", ruleBlock)
		}
		if merged(s) {
			return c.refuse(s, where, "as a grouping key", ruleMerged)
		}
	}
	if len(v.srcs) > 0 {
		for _, s := range v.srcs {
			if s.domain != v.srcs[0].domain {
				return c.refuse(v.srcs[0], where, "grouped together with values of another token domain", rulePseudo)
			}
		}
		c.ordered = append(c.ordered, n)
	}
	return nil
}

// computed checks an expression that computes something: no protected
// value may flow into it, except into count() and the proxy's digest.
func (c *checker) computed(n *node, e *pg_query.Node, where string) error {
	if e == nil || e.GetNode() == nil {
		return nil
	}
	if c.digest(e) {
		return c.digestUse(n, e, where)
	}
	if c.drill(e) {
		// Anywhere but in an equality with its domain's column.
		return c.refuse(c.eval(n, e).srcs[0], where, "a drill-down value in an expression", rulePseudo)
	}
	switch x := e.GetNode().(type) {
	case *pg_query.Node_ColumnRef, *pg_query.Node_ParamRef:
		if v := c.eval(n, e); len(v.srcs) > 0 {
			return c.refuse(v.srcs[0], where, "in an expression", ruleFor(v.srcs[0]))
		}
		return nil
	case *pg_query.Node_FuncCall:
		f := x.FuncCall
		if v, ok := c.placeholder(n, f); ok {
			if len(v.srcs) > 0 {
				return c.refuse(v.srcs[0], where, "through a subquery in an expression", ruleFor(v.srcs[0]))
			}
			return nil
		}
		// A window function is computed by a WindowAgg, whose ties
		// tiesBroken checks; elsewhere the plan prints a reference to it.
		if f.GetOver() == nil && len(c.protectedAnywhere) > 0 &&
			(sqlinfo.OrderedAggregate(f) && !f.GetAggDistinct() && !c.digestOrdered(f) ||
				f.GetAggDistinct() && funcName(f) != "count" && !c.bareArgs(n, f.GetArgs()) ||
				f.GetAggWithinGroup() && (funcName(f) == "mode" || funcName(f) == "percentile_disc") && !c.bareArgs(n, sortNodes(f.GetAggOrder()))) {
			// Its result depends on the order it reads rows in (float
			// rounding, which of equal values it keeps).
			s := c.protectedAnywhere[0]
			return c.refuse(s, where, "in reach of "+funcName(f)+"() without the proxy's digest ordering of its input, whose result depends on the order the server reads rows in", ruleOrder)
		}
		if sqlinfo.OrderRevealing(f) && len(c.protectedAnywhere) > 0 && f.GetOver() == nil {
			s := c.protectedAnywhere[0]
			return c.refuse(s, where, "in reach of "+funcName(f)+"(), whose result depends on the order the server reads rows in", ruleOrder)
		}
		if w := f.GetOver(); w != nil && c.in.Syntax.OrderedWindows {
			if err := c.windowReach(n, where); err != nil {
				return err
			}
		}
		if isCount(f) {
			// count() and count(DISTINCT x) reveal how many values there
			// are, not which: allowed on pseudonymised columns.
			if err := c.countable(n, f); err != nil {
				return err
			}
			for _, a := range f.GetArgs() {
				if v := c.eval(n, a); !v.bare && !v.whole {
					if err := c.computed(n, a, where); err != nil {
						return err
					}
				}
			}
			return c.computed(n, f.GetAggFilter(), where)
		}
	case *pg_query.Node_NullTest:
		if v := c.eval(n, x.NullTest.GetArg()); v.bare {
			if !nullVisible(v) {
				return c.refuse(v.srcs[0], where, "in IS NULL", ruleBlock)
			}
			return nil
		}
	}
	var err error
	c.children(e.ProtoReflect(), func(child *pg_query.Node) {
		if err == nil {
			err = c.computed(n, child, where)
		}
	})
	return err
}

// isCount reports the built-in count() without an ORDER BY of its own.
func isCount(f *pg_query.FuncCall) bool {
	return funcName(f) == "count" && (len(f.GetFuncname()) == 1 || f.GetFuncname()[0].GetString_().GetSval() == "pg_catalog") &&
		len(f.GetAggOrder()) == 0
}

// countable checks what count() f at n counts: bare values whose
// null-ness may show, or whole rows (never NULL when they exist) when it
// does not de-duplicate them, which would compare every column.
func (c *checker) countable(n *node, f *pg_query.FuncCall) error {
	for _, a := range f.GetArgs() {
		v := c.eval(n, a)
		switch {
		case v.whole && f.GetAggDistinct():
			return c.refuse(v.srcs[0], "count(DISTINCT) of "+n.typ, "in a de-duplicated whole-row reference", ruleFor(v.srcs[0]))
		case v.whole:
		case v.bare && !nullVisible(v):
			return c.refuse(v.srcs[0], "count() of "+n.typ, "counted", ruleBlock)
		case f.GetAggDistinct():
			for _, s := range v.srcs {
				if merged(s) {
					// De-duplicating compares the clear values, which the
					// output merges (two days of one year).
					return c.refuse(s, "count(DISTINCT) of "+n.typ, "counted as distinct values", ruleMerged)
				}
			}
		}
	}
	return nil
}

// nullVisible reports a bare value whose null-ness its output shows:
// anything but a blocked or nulled column, which leaves as NULL.
func nullVisible(v val) bool {
	for _, s := range v.srcs {
		if blocked(s) {
			return false
		}
	}
	return true
}

// windowReach refuses a window function at n whose (unprinted) partition
// or order could use protected columns: when the window's input is sorted
// by the plan, that Sort's keys are checked as window keys; otherwise
// every protected column in reach counts.
func (c *checker) windowReach(n *node, where string) error {
	for _, k := range n.kids {
		if k.typ == "Sort" || k.typ == "Incremental Sort" {
			return nil
		}
	}
	if r := c.reach(n); len(r) > 0 {
		return c.refuse(r[0], where, "in reach of a window whose partition and order the plan does not print", ruleFor(r[0]))
	}
	return nil
}

// digest reports the proxy's own ordering expression: a sha256() call
// with the proxy's key in it (not any expression that contains one, such
// as an aggregate ordered by the digest, whose own arguments are checked).
func (c *checker) digest(e *pg_query.Node) bool {
	if c.in.DigestMarker == "" || e == nil {
		return false
	}
	for e.GetTypeCast() != nil {
		e = e.GetTypeCast().GetArg()
	}
	if f := e.GetFuncCall(); f == nil || funcName(f) != "sha256" {
		return false
	}
	found := false
	sqlinfo.Walk(e.ProtoReflect(), func(m protoreflect.Message) {
		if s, ok := m.Interface().(*pg_query.String); ok && strings.Contains(s.GetSval(), c.in.DigestMarker) {
			found = true
		}
	})
	return found
}

// digestUse allows pseudonymised values in the proxy's digest ordering;
// blocked values never leave, so they may not be ordered either. A row's
// position (ctid) may: hashed, it names the row without telling where it
// lies.
//
// Each value in the digest's ROW(…) follows its tag, the token domains it
// comes from: a guess typed in as a literal must not hash like the same
// value read from a protected column (the order of rows would match
// guesses). A digest without that form may hash unprotected data only.
func (c *checker) digestUse(n *node, e *pg_query.Node, where string) error {
	row := digestRow(e)
	if row == nil {
		if v := c.eval(n, e); len(v.srcs) > 0 {
			return c.refuse(v.srcs[0], where, "in the proxy's digest ordering without its tag", ruleFor(v.srcs[0]))
		}
		return nil
	}
	args := row.GetArgs()
	for i, a := range args {
		if _, ok := tagValue(a); ok {
			continue
		}
		v := c.eval(n, a)
		if field, inner := releasedArg(a); inner != nil {
			// The released part of a generalised value (date_trunc of
			// the field it is generalised to): bare inside.
			if w := c.eval(n, inner); w.bare && len(w.srcs) > 0 && generalisedTo(w.srcs, field) {
				v = w
			}
		}
		tag, ok := "", false
		if i > 0 {
			tag, ok = tagValue(args[i-1])
		}
		switch {
		case ok && tag == sqlinfo.RowTag && (len(v.rows) > 0 || len(v.srcs) == 0):
			continue // a row's position (or its table's oid)
		case len(v.srcs) == 0:
			if ok && tag != "" {
				// A literal under a protected tag would hash like that
				// column's values: guesses could be matched.
				return &analyze.Refusal{StatementKind: "Select", Reason: "the proxy's digest ordering hashes unprotected data under the tag of protected data",
					Rule: ruleOrder + " (" + ruleServer + ")"}
			}
			continue
		case !v.bare:
			// Mixed with other values (a set operation with literals):
			// equal hidden and typed-in values would hash alike.
			return c.refuse(v.srcs[0], where, "mixed with other values in the proxy's digest ordering", ruleFor(v.srcs[0]))
		case !ok || tag != domainsOf(v.srcs):
			return c.refuse(v.srcs[0], where, "in the proxy's digest ordering without its own tag", ruleFor(v.srcs[0]))
		}
		for _, s := range v.srcs {
			if blocked(s) {
				return c.refuse(s, where, "in the proxy's digest ordering", ruleBlock)
			}
		}
	}
	return nil
}

// releasedArg reads date_trunc('year' or 'month', x) (casts on x and on
// the field left out).
func releasedArg(e *pg_query.Node) (string, *pg_query.Node) {
	f := e.GetFuncCall()
	if f == nil || funcName(f) != "date_trunc" || len(f.GetArgs()) != 2 {
		return "", nil
	}
	field, ok := tagValue(f.GetArgs()[0])
	if !ok || field != "year" && field != "month" {
		return "", nil
	}
	x := f.GetArgs()[1]
	for x.GetTypeCast() != nil {
		x = x.GetTypeCast().GetArg()
	}
	return field, x
}

// generalisedTo reports sources all generalised to field.
func generalisedTo(srcs []*src, field string) bool {
	for _, s := range srcs {
		if s.dec.Action != policy.Tokenize || string(s.dec.Spec.Kind) != field {
			return false
		}
	}
	return true
}

// tagValue reads a digest tag: a string constant (cast to text).
func tagValue(n *pg_query.Node) (string, bool) { return sqlinfo.StringConst(n) }

// domainsOf is the digest tag of values from srcs: their token domains,
// sorted and unique, joined by commas.
func domainsOf(srcs []*src) string {
	var ds []string
	for _, s := range srcs {
		if !slices.Contains(ds, s.domain) {
			ds = append(ds, s.domain)
		}
	}
	slices.Sort(ds)
	return strings.Join(ds, ",")
}

// sortNodes are the expressions of ORDER BY items.
func sortNodes(items []*pg_query.Node) []*pg_query.Node {
	out := make([]*pg_query.Node, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetSortBy().GetNode())
	}
	return out
}

// bareArgs reports arguments that are each one column passed on unchanged
// (stored values: an attacker cannot make two of them compare equal and
// print differently).
func (c *checker) bareArgs(n *node, args []*pg_query.Node) bool {
	for _, a := range args {
		if !c.eval(n, a).bare {
			return false
		}
	}
	return true
}

// digestOrdered reports an aggregate that reads its input in the order of
// the proxy's digest.
func (c *checker) digestOrdered(f *pg_query.FuncCall) bool {
	for _, o := range f.GetAggOrder() {
		if c.digest(o.GetSortBy().GetNode()) {
			return true
		}
	}
	return false
}

// digestRow is the ROW(…) a digest expression hashes, if it has one.
func digestRow(e *pg_query.Node) *pg_query.RowExpr {
	var row *pg_query.RowExpr
	sqlinfo.Walk(e.ProtoReflect(), func(m protoreflect.Message) {
		if r, ok := m.Interface().(*pg_query.RowExpr); ok && row == nil {
			row = r
		}
	})
	return row
}

// orderHidden checks that every node whose rows may follow protected
// clear values is reordered by the proxy's digest before its rows can
// leave or be cut by LIMIT.
func (c *checker) orderHidden() error {
	for _, g := range c.ordered {
		if !c.digestAbove(g, map[*node]bool{}) {
			return &analyze.Refusal{StatementKind: "Select", Reason: "returns rows in an order that can follow a protected column's clear values (" + g.typ + ") without the proxy's digest ordering",
				Rule: ruleOrder + " (" + ruleServer + ")"}
		}
	}
	return nil
}

// orderSources records nodes whose output order can follow protected
// clear values without a Sort the plan prints keys for: a Unique over
// sorted input (its keys are not printed: every output counts), a merge
// join on a protected column, and an index scan whose index has a
// protected key column (or an expression) .
func (c *checker) orderSources(n *node) error {
	switch n.typ {
	case "Unique":
		for _, k := range n.kids {
			if k.typ == "Sort" || k.typ == "Incremental Sort" {
				return nil // its Sort Key is checked as a grouping
			}
		}
		for _, v := range c.outVals(n) {
			if err := c.grouping(n, v, "a de-duplication of sorted input"); err != nil {
				return err
			}
		}
	case "Merge Join":
		for _, p := range n.props {
			if p.key != "Merge Cond" {
				continue
			}
			for _, e := range p.exprs {
				ex, err := c.expr(e, plainExpr, c.in.Keywords)
				if err != nil {
					return err
				}
				if v := c.eval(n, ex); len(v.srcs) > 0 {
					c.ordered = append(c.ordered, n)
					return nil
				}
			}
		}
	case "Sample Scan":
		// Which rows a seeded or block sample keeps follows their
		// physical position (a public hash of block, offset and seed).
		rel := c.rels[n]
		if rel == nil || len(c.protectedOf(rel)) == 0 {
			return nil
		}
		seeded := slices.ContainsFunc(n.props, func(p prop) bool { return p.key == "Repeatable Seed" })
		if n.sampling != "bernoulli" || seeded {
			s := c.protectedOf(rel)[0]
			return &analyze.Refusal{StatementKind: "Select", Table: s.table, Column: "ctid", Clause: "the server's plan (" + n.typ + ")",
				Reason: "a sample drawn by block or with a chosen seed picks rows by their physical position",
				Rule:   "restricted roles may sample tables they do not see in clear only with TABLESAMPLE BERNOULLI and no REPEATABLE (" + ruleServer + ")"}
		}
	case "Index Scan", "Index Only Scan":
		rel := c.rels[n]
		if rel == nil {
			return nil
		}
		keys, known := rel.Indexes[n.index]
		for _, col := range rel.Columns {
			if col.Decision.Action == policy.Allow {
				continue
			}
			if !known || slices.Contains(keys, col.Name) || slices.Contains(keys, "") {
				c.ordered = append(c.ordered, n)
				return nil
			}
		}
	}
	return nil
}

// digestAbove reports whether the rows of n pass a digest sort before they
// reach the client or a LIMIT.
func (c *checker) digestAbove(n *node, seen map[*node]bool) bool {
	if seen[n] {
		return true
	}
	seen[n] = true
	for m := n; m != nil; m = m.parent {
		if m != n {
			switch m.typ {
			case "Sort", "Incremental Sort", "Gather Merge":
				if c.digestSort(m) {
					return true
				}
			case "Limit", "WindowAgg":
				return false
			}
		}
		if m.parentRel == "InitPlan" && strings.HasPrefix(m.subplan, "CTE ") {
			// A CTE's rows flow on through its scans.
			ok := true
			for _, ss := range c.scans {
				for _, s := range ss {
					if s.typ == "CTE Scan" && "CTE "+s.cteName == m.subplan {
						ok = ok && c.digestAbove(s, seen)
					}
				}
			}
			return ok
		}
		if m.parentRel == "SubPlan" || m.parentRel == "InitPlan" {
			// A subquery's rows become a value, checked as data.
			return true
		}
	}
	return false
}

// digestSort reports a sort whose keys include the proxy's digest.
func (c *checker) digestSort(n *node) bool {
	for _, p := range n.props {
		if p.key != "Sort Key" {
			continue
		}
		for _, e := range p.exprs {
			if c.in.DigestMarker != "" && strings.Contains(e, c.in.DigestMarker) {
				return true
			}
		}
	}
	return false
}

func blocked(s *src) bool { return s.dec.Action == policy.Block || s.dec.Action == policy.Null }

// merged reports a generalised value (year, month, round, shift): the
// server groups and compares it on the clear value, which the output
// merges.
func merged(s *src) bool { return s.dec.Action == policy.Tokenize && !s.dec.Spec.Kind.Injective() }

func ruleFor(s *src) string {
	if blocked(s) {
		return ruleBlock
	}
	return rulePseudo
}

// refuse builds the refusal for a protected column used at a plan
// position.
func (c *checker) refuse(s *src, where, how, rule string) error {
	r := s.dec.Rule
	if r != "" {
		r += "; "
	}
	return &analyze.Refusal{StatementKind: "Select", Table: s.table, Column: s.column, Clause: "the server's plan (" + where + ")",
		How: how, Reason: analyze.Describe(s.dec), Rule: r + rule + " (" + ruleServer + ")"}
}
