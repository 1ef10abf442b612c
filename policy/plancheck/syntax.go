package plancheck

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Syntax is what the text of statements (the checked one, or every view
// of the database) says about names the plan uses: the plan refers to
// subquery and CTE columns by name, and prints alias names for relation
// columns. Only what the syntax makes certain is recorded.
type Syntax struct {
	// Renamed are relation names (unqualified) given column aliases
	// somewhere (FROM t AS x(a, b)).
	Renamed map[string]bool
	// Subqueries and CTEs map an alias or CTE name to the output names of
	// each subquery or CTE that carries it; a nil name is one the syntax
	// does not make certain (an expression without AS, a *).
	Subqueries map[string][][]*string
	CTEs       map[string][][]*string
	// Sublinks reports IN, ANY, ALL or row-comparison subqueries, whose
	// comparison EXPLAIN does not print before PostgreSQL 17.
	Sublinks bool
	// OrderedWindows reports a window with PARTITION BY or ORDER BY, which
	// EXPLAIN does not print before PostgreSQL 17.
	OrderedWindows bool
	// aliases map an alias given to a relation (FROM v AS x) to the
	// relation's name and column aliases: a view the planner keeps as a
	// subquery (security_barrier, grouping) is a Subquery Scan under the
	// alias, whose columns are the view's (WithViews).
	aliases map[string][]relAlias
}

type relAlias struct {
	rel     string
	columns []*pg_query.Node
}

// Views is what the database's views say about names: the syntax of their
// definitions, and their column names by view name (from the catalog).
type Views struct {
	Syntax  *Syntax
	Columns map[string][]string
}

// WithViews adds the column names of the database's views as subqueries'
// names, under each view's name and every alias the statement gives it,
// and the syntax of their definitions.
func (s *Syntax) WithViews(v *Views) *Syntax {
	if v == nil {
		return s
	}
	views := v.Columns
	s = s.Merge(v.Syntax)
	out := s.Merge(&Syntax{})
	add := func(key string, cols []string, renames []*pg_query.Node) {
		names := make([]*string, len(cols))
		for i := range cols {
			n := cols[i]
			if i < len(renames) {
				n = renames[i].GetString_().GetSval()
			}
			names[i] = &n
		}
		out.Subqueries[key] = append(out.Subqueries[key], names)
	}
	for v, cols := range views {
		add(v, cols, nil)
	}
	for alias, rels := range s.aliases {
		for _, r := range rels {
			if cols, ok := views[r.rel]; ok && alias != r.rel {
				add(alias, cols, r.columns)
			}
		}
	}
	return out
}

// ParseSyntax reads the facts of one or more SQL texts (a statement, or
// view definitions). A text that does not parse adds nothing (the
// statement itself has been parsed by the analysis before).
func ParseSyntax(texts ...string) *Syntax {
	var stmts []*pg_query.Node
	for _, t := range texts {
		tree, err := pg_query.Parse(t)
		if err != nil {
			continue
		}
		for _, raw := range tree.GetStmts() {
			stmts = append(stmts, raw.GetStmt())
		}
	}
	return SyntaxOf(stmts...)
}

// SyntaxOf reads the facts of statements parsed before (the statement the
// analysis parsed: one parse serves both).
func SyntaxOf(stmts ...*pg_query.Node) *Syntax {
	s := &Syntax{Renamed: map[string]bool{}, Subqueries: map[string][][]*string{}, CTEs: map[string][][]*string{}}
	for _, n := range stmts {
		if n != nil {
			s.add(n.ProtoReflect())
		}
	}
	return s
}

func (s *Syntax) add(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *pg_query.RangeVar:
		if a := x.GetAlias(); a != nil && len(a.GetColnames()) > 0 {
			s.Renamed[x.GetRelname()] = true
		}
		if a := x.GetAlias(); a != nil {
			if s.aliases == nil {
				s.aliases = map[string][]relAlias{}
			}
			s.aliases[a.GetAliasname()] = append(s.aliases[a.GetAliasname()], relAlias{rel: x.GetRelname(), columns: a.GetColnames()})
		}
	case *pg_query.RangeSubselect:
		if a := x.GetAlias(); a != nil {
			s.Subqueries[a.GetAliasname()] = append(s.Subqueries[a.GetAliasname()], outputNames(x.GetSubquery(), a.GetColnames()))
		}
	case *pg_query.CommonTableExpr:
		s.CTEs[x.GetCtename()] = append(s.CTEs[x.GetCtename()], outputNames(x.GetCtequery(), x.GetAliascolnames()))
	case *pg_query.WindowDef:
		if len(x.GetPartitionClause()) > 0 || len(x.GetOrderClause()) > 0 || x.GetRefname() != "" {
			s.OrderedWindows = true
		}
	case *pg_query.SubLink:
		switch x.GetSubLinkType() {
		case pg_query.SubLinkType_ANY_SUBLINK, pg_query.SubLinkType_ALL_SUBLINK, pg_query.SubLinkType_ROWCOMPARE_SUBLINK,
			pg_query.SubLinkType_MULTIEXPR_SUBLINK:
			s.Sublinks = true
		}
	}
	sqlinfo.EachChild(m, func(c protoreflect.Message) bool {
		s.add(c)
		return true
	})
}

// outputNames are the certain output names of a subquery: alias names
// first, then each select-list item's AS name or bare column name; a set
// operation takes its leftmost branch's names, VALUES column1, column2, ….
func outputNames(q *pg_query.Node, aliases []*pg_query.Node) []*string {
	sel := q.GetSelectStmt()
	for sel != nil && sel.GetOp() != pg_query.SetOperation_SETOP_NONE && sel.GetOp() != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		sel = sel.GetLarg()
	}
	var names []*string
	switch {
	case sel == nil:
	case len(sel.GetValuesLists()) > 0:
		for i := range sel.GetValuesLists()[0].GetList().GetItems() {
			n := "column" + itoa(i+1)
			names = append(names, &n)
		}
	default:
		for _, t := range sel.GetTargetList() {
			rt := t.GetResTarget()
			if rt == nil {
				names = append(names, nil)
				continue
			}
			if rt.GetName() != "" {
				n := rt.GetName()
				names = append(names, &n)
				continue
			}
			if cr := rt.GetVal().GetColumnRef(); cr != nil {
				if f := cr.GetFields(); f[len(f)-1].GetAStar() != nil {
					// A star: an unknown number of unknown names follows;
					// no position after it is certain.
					return append(names, nil)
				}
			}
			if n, ok := sqlinfo.ColumnName(rt.GetVal()); ok {
				names = append(names, &n)
			} else {
				names = append(names, nil)
			}
		}
	}
	for i, a := range aliases {
		n := a.GetString_().GetSval()
		if i < len(names) {
			names[i] = &n
		} else {
			names = append(names, &n)
		}
	}
	return names
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Merge returns the facts of s and o together (a statement's and the
// database's views').
func (s *Syntax) Merge(o *Syntax) *Syntax {
	if o == nil {
		return s
	}
	out := &Syntax{Renamed: map[string]bool{}, Subqueries: map[string][][]*string{}, CTEs: map[string][][]*string{},
		Sublinks: s.Sublinks || o.Sublinks, OrderedWindows: s.OrderedWindows || o.OrderedWindows}
	for _, src := range []*Syntax{s, o} {
		for k := range src.Renamed {
			out.Renamed[k] = true
		}
		for k, v := range src.Subqueries {
			out.Subqueries[k] = append(out.Subqueries[k], v...)
		}
		for k, v := range src.CTEs {
			out.CTEs[k] = append(out.CTEs[k], v...)
		}
		for k, v := range src.aliases {
			if out.aliases == nil {
				out.aliases = map[string][]relAlias{}
			}
			out.aliases[k] = append(out.aliases[k], v...)
		}
	}
	return out
}
