package plancheck

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Column is one column of a scanned relation as the policy sees it.
type Column struct {
	Name     string
	Decision policy.Decision
	// Domain is the token domain equalities are checked in.
	Domain string
}

// Relation is a relation the plan scans.
type Relation struct {
	// Name is the name the policy classifies (a partition's root).
	Name    policy.TableName
	Columns []Column
	// Indexes are the relation's own indexes by name: their key columns
	// in order ("" for an expression). An index scan returns rows in
	// their order.
	Indexes map[string][]string
}

// Catalog describes the relations a plan scans, by the schema and name
// the server printed.
type Catalog interface {
	Relation(ctx context.Context, schema, name string) (*Relation, error)
}

// Input is one statement's plan and what goes with it.
type Input struct {
	// Plan is EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) of the statement.
	Plan []byte
	// Syntax is what the statement's text, and the database's views, say
	// about names (ParseSyntax).
	Syntax *Syntax
	// Keywords is the server's keyword list.
	Keywords sqlinfo.Keywords
	// PlanOnly: the statement is explained, not run; its rows never leave,
	// so their order does not matter.
	PlanOnly bool
	// DigestMarker is in every expression of the proxy's own keyed-digest
	// ordering ("" when the statement has none).
	DigestMarker string
	// PrintsSubplanTests: the server prints the comparison of IN, ANY and
	// ALL subplans (PostgreSQL 17 and later).
	PrintsSubplanTests bool
	// DrillParams are the statement's parameters (by number) whose values
	// the proxy decodes from tokens of a token domain at each Bind: values
	// of that domain, like a drill-down literal's (sqlinfo.Drill).
	DrillParams map[int]string
}

// Source is a protected column whose values flow into an output.
type Source struct {
	Table    policy.TableName
	Column   string
	Decision policy.Decision
	Domain   string
}

// Output is what one output column of the statement carries.
type Output struct {
	// Sources are the protected columns whose values flow into it.
	Sources []Source
	// Bare: the output is one protected column passed on unchanged.
	Bare bool
}

// Clean reports that no protected value flows into the output.
func (o Output) Clean() bool { return len(o.Sources) == 0 }

// Result is the check's verdict.
type Result struct {
	// Refusal is set when the plan uses a protected column in a way the
	// policy forbids (Role is left for the caller).
	Refusal *analyze.Refusal
	// Outputs describe the plan's output columns in order (the statement's
	// columns, then any the plan computes only to sort by).
	Outputs []Output
	// Unordered is set with Refusal when the plan's only fault is that
	// rows could come back in an order that follows pseudonymised clear
	// values: the statement may be sent again with the proxy's digest
	// ordering.
	Unordered bool
}

// ruleServer is appended to every rule of the server-side check.
const ruleServer = "checked on the server's own plan of the statement"

// Check checks a plan against the policy.
func Check(ctx context.Context, cat Catalog, in Input) (*Result, error) {
	root, err := parsePlan(in.Plan)
	if err != nil {
		return nil, err
	}
	c := &checker{ctx: ctx, cat: cat, in: in, root: root, scans: map[string][]*node{}, subplans: map[string]*node{},
		params: map[string]*node{}, rels: map[*node]*Relation{}}
	if c.in.Syntax == nil {
		c.in.Syntax = &Syntax{}
	}
	if err := c.index(); err != nil {
		return nil, err
	}
	res := &Result{}
	err = c.checkNode(root)
	if err == nil {
		for _, v := range c.outVals(root) {
			res.Outputs = append(res.Outputs, v.output())
		}
		if !c.in.PlanOnly {
			if err = c.orderHidden(); err == nil {
				err = c.tiesBroken(root)
			}
			if err == nil {
				// A Limit cut short often is one the digest ordering
				// would put over a sort: sent again with it, the check
				// runs on that plan.
				err = c.cutShort(root)
			}
			if err != nil {
				res.Unordered = true
			}
		}
	}
	var ref *analyze.Refusal
	switch {
	case errors.As(err, &ref):
		res.Refusal = ref
		return res, nil
	case errors.Is(err, errUnreadable), errors.Is(err, errUnresolved):
		res.Refusal = &analyze.Refusal{StatementKind: "Select", Reason: "cannot be checked on the server's plan (" + err.Error() + ")",
			Rule: "statements whose server plan pgpseudo cannot read are refused for restricted roles"}
		return res, nil
	case err != nil:
		return nil, err
	}
	return res, nil
}

// errUnresolved reports a reference the check cannot tie to a scan.
var errUnresolved = errors.New("a reference in the server's plan names no scan")

// src is a protected column (decision other than allow).
type src struct {
	table  policy.TableName
	column string
	dec    policy.Decision
	domain string
}

// val is what flows out of an expression.
type val struct {
	srcs []*src
	// bare: one column passed on unchanged (possibly an unknown one of a
	// renamed relation).
	bare bool
	// rows: the value is the position (ctid) of a row of one of these
	// relation scans, passed on unchanged.
	rows []*node
	// whole: a whole row of one relation scan passed on unchanged (srcs
	// are its protected columns). Only count() may take it: a row that
	// exists is never NULL, so the count says how many rows there are,
	// whatever they hold.
	whole bool
}

func (v val) output() Output {
	o := Output{Bare: v.bare}
	for _, s := range v.srcs {
		o.Sources = append(o.Sources, Source{Table: s.table, Column: s.column, Decision: s.dec, Domain: s.domain})
	}
	return o
}

// union merges values: not bare unless both are the same single column.
func union(vs ...val) val {
	var out val
	seen := map[*src]bool{}
	bare, rows := true, true
	for _, v := range vs {
		bare = bare && v.bare
		rows = rows && len(v.rows) > 0
		for _, s := range v.srcs {
			if !seen[s] {
				seen[s] = true
				out.srcs = append(out.srcs, s)
			}
		}
	}
	out.bare = bare && len(vs) > 0 && len(out.srcs) <= 1
	if rows && out.bare {
		// Row positions only if every value that may flow in is one.
		for _, v := range vs {
			out.rows = append(out.rows, v.rows...)
		}
	}
	return out
}

type checker struct {
	// hashed are the subplans EXPLAIN marks hashed (cutShort).
	hashed map[string]bool
	ctx    context.Context
	cat    Catalog
	in     Input
	root   *node
	// scans by refname; subplans by name ("SubPlan 1", "CTE x"); params
	// by "$n" (the init plan that sets them, PostgreSQL 15 and 16).
	scans    map[string][]*node
	subplans map[string]*node
	params   map[string]*node
	rels     map[*node]*Relation
	nscans   int
	// protectedAnywhere are the protected columns of every scanned
	// relation (what an unprinted expression might use).
	protectedAnywhere []*src
	// ordered are nodes whose rows may come out in the order of
	// pseudonymised or blocked clear values: groupings and
	// de-duplications, merge joins and index scans on them. Each needs
	// the proxy's digest ordering above it.
	ordered []*node
	// srcCache makes sources of one column one pointer.
	srcCache map[string]*src
	// exprs memoises parsed expressions: plans print the same expression
	// in several nodes.
	exprs map[exprKey]parsedExpr
}

type exprKey struct {
	text     string
	kind     exprKind
	keywords bool
}

type parsedExpr struct {
	n   *pg_query.Node
	err error
}

// expr is parseExpr, memoised for this check.
func (c *checker) expr(s string, kind exprKind, kw sqlinfo.Keywords) (*pg_query.Node, error) {
	k := exprKey{s, kind, kw != nil}
	if p, ok := c.exprs[k]; ok {
		return p.n, p.err
	}
	n, err := parseExpr(s, kind, kw)
	if c.exprs == nil {
		c.exprs = map[exprKey]parsedExpr{}
	}
	c.exprs[k] = parsedExpr{n, err}
	return n, err
}

var initPlanRe = regexp.MustCompile(`^InitPlan (\d+) \(returns (.*)\)$`)

// index finds scans, subplans and init plan parameters, and reads the
// scanned relations from the catalog.
func (c *checker) index() error {
	var err error
	c.srcCache = map[string]*src{}
	c.root.walk(func(n *node) {
		if err != nil {
			return
		}
		if n.subplan != "" {
			c.subplans[n.subplan] = n
			if m := initPlanRe.FindStringSubmatch(n.subplan); m != nil {
				c.subplans["InitPlan "+m[1]] = n
				for _, p := range strings.Split(m[2], ",") {
					c.params[strings.TrimSpace(p)] = n
				}
			}
		}
		if !n.isScan() {
			return
		}
		c.nscans++
		c.scans[n.alias] = append(c.scans[n.alias], n)
		if n.relName != "" {
			var rel *Relation
			if rel, err = c.cat.Relation(c.ctx, n.schema, n.relName); err != nil {
				return
			}
			c.rels[n] = rel
			for _, col := range rel.Columns {
				if col.Decision.Action != policy.Allow {
					c.protectedAnywhere = append(c.protectedAnywhere, c.source(rel, col))
				}
			}
		}
	})
	return err
}

func (c *checker) source(rel *Relation, col Column) *src {
	k := rel.Name.String() + "\x00" + col.Name
	if s := c.srcCache[k]; s != nil {
		return s
	}
	s := &src{table: rel.Name, column: col.Name, dec: col.Decision, domain: col.Domain}
	c.srcCache[k] = s
	return s
}

// drill reports the proxy's form of a drill-down's clear value.
func (c *checker) drill(e *pg_query.Node) bool {
	_, ok := sqlinfo.DrillDomain(e, c.in.DigestMarker)
	return ok
}

// drillVal reports a drill-down value: the proxy's form of a decoded
// literal, or a parameter it decodes.
func (c *checker) drillVal(v val) bool {
	return v.bare && len(v.srcs) == 1 && v.srcs[0] == c.srcCache["drill-down\x00"+v.srcs[0].domain]
}

// drillSrc is the source of drill-down values of a token domain: a
// protected value of that domain, so that it may meet only columns of
// the domain in an equality.
func (c *checker) drillSrc(domain string) *src {
	k := "drill-down\x00" + domain
	if s := c.srcCache[k]; s != nil {
		return s
	}
	s := &src{table: policy.TableName{Schema: "pgpseudo", Table: "drill-down"}, column: "value", domain: domain,
		dec: policy.Decision{Action: policy.Tokenize, Column: "value", Category: "drill-down", Rule: "a drill-down value decoded by the proxy"}}
	c.srcCache[k] = s
	return s
}

// protectedOf returns every protected column of a relation.
func (c *checker) protectedOf(rel *Relation) []*src {
	var out []*src
	for _, col := range rel.Columns {
		if col.Decision.Action != policy.Allow {
			out = append(out, c.source(rel, col))
		}
	}
	return out
}

// outVals returns the values of a node's outputs, computing them once.
func (c *checker) outVals(n *node) []val {
	if n.done || n.busy {
		return n.outVals
	}
	n.busy = true
	defer func() { n.busy, n.done = false, true }()
	if n.appendLike() {
		// The union of the members, position by position.
		var members [][]val
		for _, k := range n.kids {
			if k.parentRel == "InitPlan" || k.parentRel == "SubPlan" {
				continue
			}
			members = append(members, c.outVals(k))
		}
		width := 0
		for _, m := range members {
			width = max(width, len(m))
		}
		n.outVals = make([]val, width)
		for i := range width {
			var vs []val
			for _, m := range members {
				if i < len(m) {
					vs = append(vs, m[i])
				}
			}
			n.outVals[i] = union(vs...)
		}
		return n.outVals
	}
	for _, e := range n.output {
		ex, err := c.expr(e, plainExpr, c.in.Keywords)
		if err != nil {
			// Unreadable outputs carry everything; checkNode refuses them.
			n.outVals = append(n.outVals, val{srcs: c.protectedAnywhere})
			continue
		}
		n.outVals = append(n.outVals, c.eval(n, ex))
	}
	return n.outVals
}

// eval computes the value of an expression evaluated at node n: the
// protected columns that flow into it, and whether it is one of them
// passed on unchanged.
func (c *checker) eval(n *node, e *pg_query.Node) val {
	switch x := e.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		v, err := c.columnRef(n, x.ColumnRef)
		if err != nil {
			return val{srcs: c.protectedAnywhere}
		}
		return v
	case *pg_query.Node_ParamRef:
		if ip := c.params[fmt.Sprintf("$%d", x.ParamRef.GetNumber())]; ip != nil {
			// An init plan's result (or a statement parameter, which is
			// clean): the init plan's value counts.
			vs := c.outVals(ip)
			return union(append([]val{{}}, vs...)...)
		}
		if domain, ok := c.in.DrillParams[int(x.ParamRef.GetNumber())]; ok {
			// A parameter the proxy decodes from a token (never an init
			// plan's result of the same number, checked first).
			return val{srcs: []*src{c.drillSrc(domain)}, bare: true}
		}
		return val{}
	case *pg_query.Node_FuncCall:
		if v, ok := c.placeholder(n, x.FuncCall); ok {
			return v
		}
		if isCount(x.FuncCall) && c.countable(n, x.FuncCall) == nil {
			// A number of rows or values: nothing of them flows on (what
			// it counts is checked where it is computed, computed).
			return val{}
		}
	case *pg_query.Node_NullTest:
		if v := c.eval(n, x.NullTest.GetArg()); v.bare && nullVisible(v) {
			// Null-ness of a column passed on unchanged, which its bare
			// output shows too.
			return val{}
		}
	case *pg_query.Node_CaseExpr:
		if domain, ok := sqlinfo.DrillDomain(e, c.in.DigestMarker); ok {
			// The clear value of a token the client filtered on: a value
			// of its token domain, passed on unchanged.
			return val{srcs: []*src{c.drillSrc(domain)}, bare: true}
		}
	}
	// Anything computed: the sources of everything inside, not bare.
	var vs []val
	c.children(e.ProtoReflect(), func(child *pg_query.Node) { vs = append(vs, c.eval(n, child)) })
	v := union(vs...)
	v.bare, v.rows = false, nil
	return v
}

// children calls f for the expression nodes directly below m.
func (c *checker) children(m protoreflect.Message, f func(*pg_query.Node)) {
	sqlinfo.EachChild(m, func(cm protoreflect.Message) bool {
		if n, ok := cm.Interface().(*pg_query.Node); ok {
			f(n)
		} else {
			c.children(cm, f)
		}
		return true
	})
}

// placeholder evaluates a subplan or init plan reference.
func (c *checker) placeholder(n *node, f *pg_query.FuncCall) (val, bool) {
	name := funcName(f)
	var nums []int
	for _, a := range f.GetArgs() {
		if ic := a.GetAConst().GetIval(); ic != nil {
			nums = append(nums, int(ic.GetIval()))
		}
	}
	col := func(sp *node, k int) val {
		vs := c.outVals(sp)
		if k >= 1 && k <= len(vs) {
			return vs[k-1]
		}
		return union(vs...)
	}
	switch {
	case name == fnSubplan && len(nums) >= 1:
		var vs []val
		for _, num := range nums {
			sp := c.subplans[fmt.Sprintf("SubPlan %d", num)]
			if sp == nil {
				return val{srcs: c.protectedAnywhere}, true
			}
			vs = append(vs, c.outVals(sp)...)
		}
		v := union(vs...)
		if !c.in.PrintsSubplanTests && c.in.Syntax.Sublinks {
			// An IN, ANY or ALL subplan compares something of the outer
			// query the plan does not print: it may be any protected
			// column in reach.
			v = union(v, val{srcs: c.reach(n)})
		}
		v.bare = v.bare && len(nums) == 1
		return v, true
	case name == fnSubplanCol && len(nums) == 2:
		if sp := c.subplans[fmt.Sprintf("SubPlan %d", nums[0])]; sp != nil {
			return col(sp, nums[1]), true
		}
		return val{srcs: c.protectedAnywhere}, true
	case name == fnInitplanCol && len(nums) == 2:
		if ip := c.subplans[fmt.Sprintf("InitPlan %d", nums[0])]; ip != nil {
			return col(ip, nums[1]), true
		}
		return val{srcs: c.protectedAnywhere}, true
	}
	return val{}, false
}

// reach are the protected columns of the relations scanned at or below n
// (outside subplans): what an unprinted expression of n may read.
func (c *checker) reach(n *node) []*src {
	var out []*src
	var visit func(*node)
	visit = func(m *node) {
		if rel := c.rels[m]; rel != nil {
			out = append(out, c.protectedOf(rel)...)
		}
		for _, k := range m.kids {
			if k.parentRel != "SubPlan" && k.parentRel != "InitPlan" {
				visit(k)
			}
		}
	}
	visit(n)
	return out
}

func funcName(f *pg_query.FuncCall) string {
	names := f.GetFuncname()
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1].GetString_().GetSval()
}

// columnRef resolves a column reference printed at node n.
func (c *checker) columnRef(n *node, cr *pg_query.ColumnRef) (val, error) {
	var parts []string
	star := false
	for _, f := range cr.GetFields() {
		switch {
		case f.GetString_() != nil:
			parts = append(parts, f.GetString_().GetSval())
		case f.GetAStar() != nil:
			star = true
		}
	}
	var scan *node
	var col string
	switch {
	case len(parts) == 1 && star:
		col = "*"
		scan = c.scanNamed(parts[0])
	case len(parts) == 1 && c.nscans == 1:
		// A plan over one relation prints its columns unqualified.
		for _, ss := range c.scans {
			scan = ss[0]
		}
		col = parts[0]
	case len(parts) == 2 && !star:
		scan, col = c.scanNamed(parts[0]), parts[1]
	}
	if scan == nil && len(parts) >= 1 {
		if members := c.appendRelMembers(parts[0]); len(members) > 0 {
			// A partitioned or inherited table: above its Append the plan
			// names the parent, whose rows are its members'.
			if col == "" {
				col = parts[len(parts)-1]
			}
			var vs []val
			for _, m := range members {
				vs = append(vs, c.scanColumn(m, col))
			}
			return union(vs...), nil
		}
	}
	if scan == nil {
		return val{}, fmt.Errorf("%w (%s)", errUnresolved, strings.Join(parts, "."))
	}
	// Above a UNION ALL or a partitioned table's Append the plan prints
	// the first member's expressions for all members.
	if a := c.appendBetween(n, scan); a != nil {
		first := firstMember(a)
		if first != nil {
			for i, o := range first.output {
				if ex, err := c.expr(o, plainExpr, nil); err == nil {
					if r := ex.GetColumnRef(); r != nil && sameRef(r, cr) {
						if vs := c.outVals(a); i < len(vs) {
							return vs[i], nil
						}
					}
				}
			}
		}
		v := union(c.outVals(a)...)
		v.bare, v.rows = false, nil
		return v, nil
	}
	return c.scanColumn(scan, col), nil
}

// scanNamed returns the scan with a refname (refnames are unique in a
// plan; a duplicate cannot be told apart and resolves to nothing).
func (c *checker) scanNamed(name string) *node {
	if ss := c.scans[name]; len(ss) == 1 {
		return ss[0]
	}
	return nil
}

// appendRelMembers returns the scans of a partitioned or inherited table
// that the plan calls name: relation scans named name_1, name_2, … that
// are members of one Append.
func (c *checker) appendRelMembers(name string) []*node {
	if len(c.scans[name]) > 0 {
		return nil
	}
	var members []*node
	var parent *node
	for alias, ss := range c.scans {
		rest, ok := strings.CutPrefix(alias, name+"_")
		if !ok || !isInt(rest) {
			continue
		}
		for _, sc := range ss {
			if c.rels[sc] == nil || sc.parent == nil || !sc.parent.appendLike() {
				return nil
			}
			if parent != nil && sc.parent != parent {
				return nil
			}
			parent = sc.parent
			members = append(members, sc)
		}
	}
	return members
}

// appendBetween returns the highest Append-like node strictly below n on
// the way to scan, if any.
func (c *checker) appendBetween(n, scan *node) *node {
	var found *node
	for m := scan.parent; m != nil; m = m.parent {
		if m == n {
			return found
		}
		if m.appendLike() {
			found = m
		}
	}
	return nil // n is not above the scan: nothing in between
}

func firstMember(a *node) *node {
	for _, k := range a.kids {
		if k.parentRel != "InitPlan" && k.parentRel != "SubPlan" {
			return k
		}
	}
	return nil
}

func sameRef(a, b *pg_query.ColumnRef) bool {
	fa, fb := a.GetFields(), b.GetFields()
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i].GetString_().GetSval() != fb[i].GetString_().GetSval() || (fa[i].GetAStar() == nil) != (fb[i].GetAStar() == nil) {
			return false
		}
	}
	return true
}

// scanColumn is the value of column col of a scan ("*": the whole row).
func (c *checker) scanColumn(scan *node, col string) val {
	if rel := c.rels[scan]; rel != nil {
		if col == "*" {
			return val{srcs: c.protectedOf(rel), whole: true}
		}
		if col == "ctid" {
			// A row's position: blocked as a value, but it names the row.
			v := val{bare: true, rows: []*node{scan}}
			for _, cl := range rel.Columns {
				if cl.Name == col && cl.Decision.Action != policy.Allow {
					v.srcs = []*src{c.source(rel, cl)}
				}
			}
			return v
		}
		if c.in.Syntax.Renamed[scan.relName] {
			// Column aliases rename the relation's columns in the plan:
			// the name could be any of them.
			return val{srcs: c.protectedOf(rel), bare: true}
		}
		for _, cl := range rel.Columns {
			if cl.Name == col {
				if cl.Decision.Action == policy.Allow {
					return val{bare: true}
				}
				return val{srcs: []*src{c.source(rel, cl)}, bare: true}
			}
		}
		switch col {
		case "ctid":
			return val{bare: true, rows: []*node{scan}}
		case "xmin", "xmax", "cmin", "cmax", "tableoid":
			return val{bare: true}
		}
		return val{srcs: c.protectedOf(rel), bare: true}
	}
	switch scan.typ {
	case "Subquery Scan":
		for _, k := range scan.kids {
			if k.parentRel == "Subquery" {
				return c.byName(c.outVals(k), c.in.Syntax.Subqueries, scan.alias, col)
			}
		}
	case "CTE Scan":
		if cte := c.subplans["CTE "+scan.cteName]; cte != nil {
			return c.byName(c.cteVals(cte), c.in.Syntax.CTEs, scan.cteName, col)
		}
	case "WorkTable Scan":
		// The recursive CTE's rows: whatever its members read.
		for m := scan.parent; m != nil; m = m.parent {
			if m.typ == "Recursive Union" {
				return val{srcs: c.reach(m)}
			}
		}
	case "Function Scan", "Table Function Scan":
		var vs []val
		for _, p := range scan.props {
			if p.key == "Function Call" || p.key == "Table Function Call" {
				for _, e := range p.exprs {
					if ex, err := c.expr(e, fromExpr, c.in.Keywords); err == nil {
						vs = append(vs, c.eval(scan, ex))
					} else {
						vs = append(vs, val{srcs: c.protectedAnywhere})
					}
				}
			}
		}
		v := union(vs...)
		v.bare, v.rows = false, nil
		return v
	case "Values Scan":
		// VALUES lists are not printed: they can only hold values some
		// scan of the plan outputs (LATERAL references).
		return val{srcs: c.protectedAnywhere}
	}
	return val{srcs: c.protectedAnywhere}
}

// cteVals are a CTE's output values; a recursive CTE's plan prints no
// outputs of its own, so they are its members' union.
func (c *checker) cteVals(cte *node) []val {
	if cte.typ == "Recursive Union" {
		return c.outVals(cte)
	}
	return c.outVals(cte)
}

// byName picks the values of a subquery's or CTE's column by name: at the
// positions the syntax names so, and at every position whose name it
// leaves uncertain.
func (c *checker) byName(vals []val, names map[string][][]*string, key, col string) val {
	lists := names[key]
	if len(lists) != 1 {
		v := union(vals...)
		v.bare, v.rows = false, nil
		return v
	}
	list := lists[0]
	base := col
	if i := strings.LastIndexByte(col, '_'); i > 0 && isInt(col[i+1:]) {
		base = col[:i] // the plan's name for a repeated name ("x_1")
	}
	// Outputs past the names are the query's sort-only columns, unless
	// the names end uncertain (a *, an unnamed expression).
	openEnded := len(list) == 0 || list[len(list)-1] == nil
	var picked []val
	for i, v := range vals {
		switch {
		case i >= len(list):
			if openEnded {
				picked = append(picked, v)
			}
		case list[i] == nil, *list[i] == col, *list[i] == base:
			picked = append(picked, v)
		}
	}
	if len(picked) == 0 {
		v := union(vals...)
		v.bare, v.rows = false, nil
		return v
	}
	return union(picked...)
}
