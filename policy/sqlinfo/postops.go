package sqlinfo

import (
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// A BI tool wraps columns in casts and substrings of its own (Tableau's
// CAST("email" AS TEXT), Metabase's substring("email", 1, 1234) when it
// samples a column). On a pseudonymised column the server would compute
// them on the clear value; instead the proxy sends the bare column, which
// the response side rewrites as always, and computes the function on what
// it sends the client: the token. Only pure functions of one text value
// are lifted so: casts to text types and prefixes.

// PostOp is a function the proxy applies to a column's rewritten text.
type PostOp struct {
	// Kind is 'c' (a cast to TypeOID, of at most Max characters when Max
	// is set) or 's' (characters From to From+For-1; For < 0: to the end).
	Kind    byte
	TypeOID uint32
	Max     int
	From    int
	For     int
}

// Lift is one select-list entry of a statement's own query that the proxy
// computes itself.
type Lift struct {
	// Target is the entry's index in the select list, Output its result
	// column's.
	Target, Output int
	// Name is the result column's name, as the server would give it.
	Name string
	Op   PostOp
}

// OIDs of the result types of lifted casts.
const (
	oidText    = 25
	oidBpchar  = 1042
	oidVarchar = 1043
)

// Liftable returns the column reference an expression is a PostOp of.
func Liftable(e *pg_query.Node) (*pg_query.ColumnRef, PostOp, bool) {
	switch x := e.GetNode().(type) {
	case *pg_query.Node_TypeCast:
		cr := x.TypeCast.GetArg().GetColumnRef()
		if cr == nil || isStarRef(cr) {
			break
		}
		names := x.TypeCast.GetTypeName().GetNames()
		if len(names) == 0 || len(x.TypeCast.GetTypeName().GetArrayBounds()) > 0 {
			break
		}
		if len(names) == 2 && names[0].GetString_().GetSval() != "pg_catalog" || len(names) > 2 {
			break
		}
		op := PostOp{Kind: 'c'}
		switch names[len(names)-1].GetString_().GetSval() {
		case "text":
			op.TypeOID = oidText
		case "varchar":
			op.TypeOID = oidVarchar
		default:
			return nil, PostOp{}, false
		}
		mods := x.TypeCast.GetTypeName().GetTypmods()
		switch {
		case len(mods) == 0:
		case len(mods) == 1 && op.TypeOID == oidVarchar && intConst(mods[0]) > 0:
			op.Max = intConst(mods[0])
		default:
			return nil, PostOp{}, false
		}
		return cr, op, true
	case *pg_query.Node_FuncCall:
		f := x.FuncCall
		if f.GetOver() != nil || f.GetAggStar() || f.GetAggDistinct() || len(f.GetAggOrder()) > 0 || f.GetAggFilter() != nil || f.GetFuncVariadic() {
			break
		}
		fn := f.GetFuncname()
		if len(fn) == 2 && fn[0].GetString_().GetSval() != "pg_catalog" || len(fn) > 2 || len(fn) == 0 {
			break
		}
		args := f.GetArgs()
		if len(args) < 2 || len(args) > 3 {
			break
		}
		cr := args[0].GetColumnRef()
		if cr == nil || isStarRef(cr) {
			break
		}
		n := make([]int, 0, 2)
		for _, a := range args[1:] {
			v, ok := intConstOK(a)
			if !ok {
				return nil, PostOp{}, false
			}
			n = append(n, v)
		}
		switch name := fn[len(fn)-1].GetString_().GetSval(); {
		case (name == "substring" || name == "substr") && len(n) == 1:
			return cr, PostOp{Kind: 's', From: n[0], For: -1}, true
		case (name == "substring" || name == "substr") && len(n) == 2 && n[1] >= 0:
			return cr, PostOp{Kind: 's', From: n[0], For: n[1]}, true
		case name == "left" && len(n) == 1 && n[0] >= 0:
			return cr, PostOp{Kind: 's', From: 1, For: n[0]}, true
		}
	}
	return nil, PostOp{}, false
}

func intConst(n *pg_query.Node) int {
	v, _ := intConstOK(n)
	return v
}

// intConstOK reads an integer constant (also negative, also cast to int).
func intConstOK(n *pg_query.Node) (int, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		names := tc.GetTypeName().GetNames()
		if len(names) == 0 || !strings.HasPrefix(names[len(names)-1].GetString_().GetSval(), "int") {
			return 0, false
		}
		n = tc.GetArg()
	}
	neg := false
	if ax := n.GetAExpr(); ax != nil && ax.GetLexpr() == nil && len(ax.GetName()) == 1 && ax.GetName()[0].GetString_().GetSval() == "-" {
		neg, n = true, ax.GetRexpr()
	}
	c := n.GetAConst()
	if c == nil || c.GetIval() == nil {
		return 0, false
	}
	v := int(c.GetIval().GetIval())
	if neg {
		v = -v
	}
	return v, true
}

// ResultType is the type OID the client sees for the lifted column.
func (op PostOp) ResultType() uint32 {
	if op.Kind == 'c' {
		return op.TypeOID
	}
	return oidText // substring and left return text
}

// Apply appends op applied to v, a value in text form of a column of type
// columnType.
func (op PostOp) Apply(dst, v []byte, columnType uint32) []byte {
	if columnType == oidBpchar {
		// char(n) becomes text without its padding.
		for len(v) > 0 && v[len(v)-1] == ' ' {
			v = v[:len(v)-1]
		}
	}
	from, count := 1, -1
	switch op.Kind {
	case 'c':
		if op.Max > 0 {
			count = op.Max
		}
	case 's':
		from, count = op.From, op.For
	}
	// Characters from..from+count-1, 1-based; before 1 counts but is empty.
	end := -1
	if count >= 0 {
		end = from + count // exclusive
	}
	pos := 1
	for i := 0; i < len(v); {
		_, size := utf8.DecodeRune(v[i:])
		if end >= 0 && pos >= end {
			break
		}
		if pos >= from {
			dst = append(dst, v[i:i+size]...)
		}
		i += size
		pos++
	}
	return dst
}

// applyLifts replaces each lifted entry of a statement's own query by its
// bare column.
func applyLifts(raw *pg_query.RawStmt, lifts []Lift) error {
	if len(lifts) == 0 {
		return nil
	}
	top := TopQuery(raw.GetStmt())
	if top == nil {
		return fmt.Errorf("lift: not a query")
	}
	targets := top.GetTargetList()
	for _, l := range lifts {
		if l.Target < 0 || l.Target >= len(targets) || targets[l.Target].GetResTarget() == nil {
			return fmt.Errorf("lift: no select list entry %d", l.Target+1)
		}
		rt := targets[l.Target].GetResTarget()
		cr, _, ok := Liftable(rt.GetVal())
		if !ok {
			return fmt.Errorf("lift: entry %d is not liftable", l.Target+1)
		}
		rt.Val = &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: cr}}
		rt.Name = l.Name
	}
	return nil
}
