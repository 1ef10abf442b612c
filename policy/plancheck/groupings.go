package plancheck

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// A grouping or de-duplication keeps, of the rows of a group, the key as
// the first row it reads had it. Keys that compare equal can print
// differently (1.0 and 1.00, -0 and 0, '1 day' and '24 hours'), and a
// computed key can be made to print differently on every row, so the key
// kept names the row the server read first. In a statement over protected
// tables, every key that is computed must therefore be grouped together
// with its companion, its printed text as bytes (sqlinfo.GroupCompanion),
// in the same grouping set: rows of a group then print their keys alike.
// A column passed on from a table is left alone (its stored values are
// not the attacker's to choose), and so are constants and parameters.

// pairedGroupings checks the groupings of node n.
func (c *checker) pairedGroupings(n *node) error {
	if len(c.protectedAnywhere) == 0 || c.in.PlanOnly {
		return nil
	}
	for _, p := range n.props {
		if p.key != "Group Key" {
			continue
		}
		keys, err := c.exprList(p.exprs)
		if err != nil {
			return err
		}
		if err := c.pairedKeys(n, keys, "a Group Key of "+n.typ); err != nil {
			return err
		}
	}
	switch n.typ {
	case "Unique":
		if in := tieInput(n); in != nil && in.sorted() && c.digestSort(in) {
			return nil // DISTINCT ON: the digest decides which row is kept (tiesBroken)
		}
		keys, err := c.exprList(n.output)
		if err != nil {
			return err
		}
		return c.pairedKeys(n, keys, "the columns Unique compares")
	case "SetOp", "HashSetOp":
		// INTERSECT and EXCEPT compare the columns of their inputs (and
		// a flag that tells the inputs apart, not part of them).
		for _, k := range n.kids {
			if k.parentRel == "InitPlan" || k.parentRel == "SubPlan" {
				continue
			}
			for _, v := range c.armVals(k) {
				if !v.bare {
					return c.unpaired(v, "the columns "+n.typ+" compares")
				}
			}
		}
	}
	return nil
}

// armVals are the values of the columns a set operation's input brings,
// arm by arm: an Append's members, the query inside an arm's subquery
// scan (whose last output is the set operation's flag).
func (c *checker) armVals(k *node) []val {
	for k.sorted() && len(k.kids) > 0 {
		k = k.kids[0]
	}
	switch {
	case k.appendLike():
		var out []val
		for _, m := range k.kids {
			if m.parentRel != "InitPlan" && m.parentRel != "SubPlan" {
				out = append(out, c.armVals(m)...)
			}
		}
		return out
	case k.typ == "Subquery Scan":
		for _, q := range k.kids {
			if q.parentRel == "Subquery" {
				return c.outVals(q)
			}
		}
	}
	vs := c.outVals(k)
	return vs[:max(len(vs)-1, 0)]
}

// exprList parses a list of plain expressions.
func (c *checker) exprList(list []string) ([]*pg_query.Node, error) {
	out := make([]*pg_query.Node, 0, len(list))
	for _, e := range list {
		ex, err := c.expr(e, plainExpr, c.in.Keywords)
		if err != nil {
			return nil, err
		}
		out = append(out, ex)
	}
	return out, nil
}

// pairedKeys checks one grouping set's keys.
func (c *checker) pairedKeys(n *node, keys []*pg_query.Node, where string) error {
	for _, k := range keys {
		if sqlinfo.CompanionOf(k) != nil || constant(k) || k.GetParamRef() != nil {
			continue
		}
		v := c.eval(n, k)
		if v.bare {
			continue
		}
		if !slices.ContainsFunc(keys, func(o *pg_query.Node) bool {
			in := sqlinfo.CompanionOf(o)
			return in != nil && (sqlinfo.SameExpr(in, k) || sqlinfo.SameExpr(unqualified(in), unqualified(k)))
		}) {
			return c.unpaired(v, where)
		}
	}
	return nil
}

// unpaired refuses a computed key without its companion.
func (c *checker) unpaired(v val, where string) error {
	s := c.protectedAnywhere[0]
	if len(v.srcs) > 0 {
		s = v.srcs[0]
	}
	return c.refuse(s, where, "a computed grouping key without the proxy's companion (its printed text): of values that compare equal but print differently, the server keeps the one it reads first, which names a row", ruleOrder)
}
