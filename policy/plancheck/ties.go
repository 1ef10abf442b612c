package plancheck

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// A node that cuts, picks or numbers rows (Limit, Unique, a WindowAgg of
// row_number() and its kin) decides among rows that tie on its input's
// sort keys in the order the server reads them, which follows clear
// values. In a statement over protected tables its input must leave no
// ties that matter: every column of the input is a sort key, in the
// proxy's keyed digest, the same for every row, or blocked (it never
// leaves, so rows that differ only there look alike above). Masked and
// generalised values leave in part and can be joined on: they count,
// unless the digest names the rows themselves (the position of every
// row of every protected relation below).

// tiesBroken checks every node of the plan that decides among ties.
func (c *checker) tiesBroken(n *node) error {
	if err := c.tieNode(n); err != nil {
		return err
	}
	for _, k := range n.kids {
		if err := c.tiesBroken(k); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) tieNode(n *node) error {
	if len(c.protectedAnywhere) == 0 {
		return nil
	}
	switch n.typ {
	case "Limit":
	case "Unique":
		if in := tieInput(n); in == nil || !in.sorted() {
			return nil // over unsorted input its keys are checked as groupings (orderSources)
		}
	case "WindowAgg":
		if !c.ordersByArrival(n) {
			return nil
		}
	default:
		return nil
	}
	in := tieInput(n)
	if in == nil {
		return nil
	}
	return c.covered(n, in)
}

// tieInput is the node whose row order n decides by: its input, through
// nodes that keep the order.
func tieInput(n *node) *node {
	if len(n.kids) == 0 {
		return nil
	}
	k := n.kids[0]
	for len(k.kids) > 0 {
		switch k.typ {
		case "Gather", "Gather Merge", "Materialize":
		case "WindowAgg":
			if n.typ != "WindowAgg" {
				return k
			}
		default:
			return k
		}
		k = k.kids[0]
	}
	return k
}

func (n *node) sorted() bool { return n.typ == "Sort" || n.typ == "Incremental Sort" }

// ordersByArrival reports a WindowAgg that computes a window function
// whose result depends on the order of rows that tie.
func (c *checker) ordersByArrival(n *node) bool {
	found := false
	for _, e := range n.output {
		ex, err := c.expr(e, plainExpr, c.in.Keywords)
		if err != nil {
			return true // unreadable: counts as ordering (and is refused elsewhere)
		}
		sqlinfo.Walk(ex.ProtoReflect(), func(m protoreflect.Message) {
			if f, ok := m.Interface().(*pg_query.FuncCall); ok && f.GetOver() != nil && sqlinfo.OrderRevealing(f) {
				found = true
			}
		})
	}
	return found
}

// covered checks that the rows of in, as node n decides among them, tie
// only where they look alike.
func (c *checker) covered(n, in *node) error {
	if in.typ == "Aggregate" && in.strategy == "Plain" || in.typ == "Result" && len(in.kids) == 0 {
		return nil // one row
	}
	var keys []*pg_query.Node
	if in.sorted() {
		for _, p := range in.props {
			if p.key != "Sort Key" && p.key != "Presorted Key" {
				continue
			}
			for _, e := range p.exprs {
				ex, err := c.expr(e, sortExpr, c.in.Keywords)
				if err != nil {
					return err
				}
				keys = append(keys, c.tieKeys(in, ex.GetSortBy().GetNode())...)
			}
		}
		for _, e := range in.output {
			if ex, err := c.expr(e, plainExpr, c.in.Keywords); err == nil && c.digest(ex) {
				keys = append(keys, c.tieKeys(in, ex)...)
			}
		}
	}
	where := "the rows " + n.typ + " decides among"
	for _, e := range in.output {
		ex, err := c.expr(e, plainExpr, c.in.Keywords)
		if err != nil {
			return err
		}
		if c.digest(ex) || constant(ex) || keyed(ex, keys) {
			continue
		}
		v := c.eval(in, ex)
		alike, partial := len(v.srcs) > 0, len(v.srcs) > 0
		for _, s := range v.srcs {
			alike = alike && blocked(s)
			partial = partial && (blocked(s) || !oneToOne(s))
		}
		if alike || partial && c.rowsNamed(in, keys) {
			continue
		}
		s := c.protectedAnywhere[0]
		if len(v.srcs) > 0 {
			s = v.srcs[0]
		}
		return c.refuse(s, where, "told apart only by the order the server reads rows in (output "+e+" is neither a sort key nor in the proxy's tie-breaking digest)", ruleOrder)
	}
	return nil
}

// tieKeys are the expressions a sort key orders by: itself, and for the
// proxy's digest the columns it hashes (a generalised column hashed as
// its released part counts: rows that agree on it look alike).
func (c *checker) tieKeys(in *node, k *pg_query.Node) []*pg_query.Node {
	out := []*pg_query.Node{k}
	if !c.digest(k) {
		return out
	}
	sqlinfo.Walk(k.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.RowExpr:
			out = append(out, x.GetArgs()...)
			for _, a := range x.GetArgs() {
				if field, inner := releasedArg(a); inner != nil {
					if v := c.eval(in, inner); v.bare && len(v.srcs) > 0 && generalisedTo(v.srcs, field) {
						out = append(out, inner)
					}
				}
			}
		case *pg_query.ColumnRef:
			if f := x.GetFields(); len(f) > 0 && f[len(f)-1].GetAStar() != nil {
				out = append(out, &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: x}})
			}
		}
	})
	return out
}

// keyed reports an output among the keys: the same expression, the same
// with the keys' qualifications left out (EXPLAIN qualifies sort keys but
// not outputs when the statement has one relation), or a column of a
// relation whose whole row is hashed.
func keyed(e *pg_query.Node, keys []*pg_query.Node) bool {
	for _, k := range keys {
		if sqlinfo.SameExpr(e, k) || sqlinfo.SameExpr(e, unqualified(k)) {
			return true
		}
		if cr, ok := k.GetNode().(*pg_query.Node_ColumnRef); ok {
			f := cr.ColumnRef.GetFields()
			if ec := e.GetColumnRef(); len(f) == 2 && f[1].GetAStar() != nil && ec != nil && len(ec.GetFields()) == 2 &&
				ec.GetFields()[0].GetString_().GetSval() == f[0].GetString_().GetSval() {
				return true
			}
		}
	}
	return false
}

// unqualified is e with every column reference reduced to its last name.
func unqualified(e *pg_query.Node) *pg_query.Node {
	c := proto.Clone(e).(*pg_query.Node)
	sqlinfo.Walk(c.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.GetFields()) > 1 {
			cr.Fields = cr.Fields[len(cr.Fields)-1:]
		}
	})
	return c
}

// constant reports an expression that is the same for every row: no
// column, parameter, subquery or function call in it.
func constant(e *pg_query.Node) bool {
	ok := true
	sqlinfo.Walk(e.ProtoReflect(), func(m protoreflect.Message) {
		switch m.Interface().(type) {
		case *pg_query.ColumnRef, *pg_query.ParamRef, *pg_query.FuncCall, *pg_query.SubLink:
			ok = false
		}
	})
	return ok
}

// oneToOne reports a protected column whose values leave one to one (a
// deterministic token): rows that differ in it look different above.
func oneToOne(s *src) bool {
	return s.dec.Action == policy.Tokenize && s.dec.Spec.Kind.Injective()
}

// rowsNamed reports that the digest among keys hashes the position of
// the rows of every relation scan below in that carries protected
// columns, and that no other scan below brings protected values (a CTE,
// a function over them) whose rows it could not name.
func (c *checker) rowsNamed(in *node, keys []*pg_query.Node) bool {
	named := map[*node]bool{}
	for _, k := range keys {
		for _, r := range c.eval(in, k).rows {
			named[r] = true
		}
	}
	ok := true
	var visit func(m *node)
	visit = func(m *node) {
		if rel := c.rels[m]; rel != nil {
			ok = ok && (len(c.protectedOf(rel)) == 0 || named[m])
		} else if m.isScan() && len(m.kids) == 0 {
			for _, v := range c.outVals(m) {
				ok = ok && len(v.srcs) == 0
			}
		}
		for _, k := range m.kids {
			if k.parentRel != "InitPlan" && k.parentRel != "SubPlan" {
				visit(k)
			}
		}
	}
	visit(in)
	return ok
}
