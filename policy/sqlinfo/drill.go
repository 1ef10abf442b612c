package sqlinfo

import (
	"encoding/hex"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A BI user clicks a token and the tool filters on it: WHERE customer_id =
// 1843748534, WHERE email IN ('tk1_…', …). For a reversible token domain
// the proxy decodes each such literal and sends the statement upstream
// with the clear value in its place, so the filter works while every
// result still leaves as tokens. The clear value is written in a form the
// client cannot write itself — it carries the role's secret digest marker
// and the token domain — so that the server-side check can tell it from a
// literal typed in (a guess), and allow it only in an equality with a
// column of that domain:
//
//	CASE WHEN pg_catalog.current_setting('pgpseudo.d<marker>_<hex domain>', true) IS NULL
//	     THEN '<clear>'::<type> END
//
// current_setting is stable, so the planner keeps the expression as it is
// and prints it in the plan; the setting never exists, so the value is
// the clear one (a client that sets it only makes its filter match
// nothing).

// Drill is one literal of a drill-down filter.
type Drill struct {
	// Location is the literal's position in the statement's text (the
	// constant, or the cast around it).
	Location int32
	// Literal is the token as written; Domain its token domain; Schema,
	// Table and Column the column it is compared with (as the policy
	// names it).
	Literal, Domain       string
	Schema, Table, Column string
	// Type is the column's type name the clear value is cast to, and
	// Clear the decoded value (nil: the literal decodes to nothing, and
	// the filter matches nothing). The proxy fills both.
	Type  string
	Clear *string
	// Param is set (n of $n, Location and Literal unset) for a parameter:
	// the proxy decodes its value at each Bind instead, as a value of the
	// column's type TypeOID.
	Param   int
	TypeOID uint32
}

// ParamUses counts the references to each parameter in a statement.
func ParamUses(n *pg_query.Node) map[int]int {
	uses := map[int]int{}
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if p, ok := m.Interface().(*pg_query.ParamRef); ok {
			uses[int(p.GetNumber())]++
		}
	})
	return uses
}

// drillPrefix starts the name of a drill-down value's setting.
const drillPrefix = "pgpseudo.d"

// DrillSetting is the name of the setting whose absence a drill-down value
// of domain needs (the server folds setting names to lower case). A client that sets it makes its
// own drill-downs match nothing; the setting then stays defined in that
// server session (a reset leaves it empty, not absent), which is why a
// session where it exists is not kept for another login.
func DrillSetting(marker, domain string) string {
	return drillPrefix + strings.ToLower(marker) + "_" + hex.EncodeToString([]byte(domain))
}

// DrillLiteral reads a literal a drill-down may decode: a constant
// (string, integer or numeric), also negative, also cast.
func DrillLiteral(n *pg_query.Node) (text string, loc int32, ok bool) {
	loc = -1
	if tc := n.GetTypeCast(); tc != nil {
		loc, n = tc.GetLocation(), tc.GetArg()
	}
	c := n.GetAConst()
	if c == nil || c.GetIsnull() {
		return "", 0, false
	}
	if loc < 0 {
		loc = c.GetLocation()
	}
	switch {
	case c.GetSval() != nil:
		return c.GetSval().GetSval(), loc, true
	case c.GetIval() != nil:
		return fmt.Sprint(c.GetIval().GetIval()), loc, true
	case c.GetFval() != nil:
		return c.GetFval().GetFval(), loc, true
	}
	return "", 0, false
}

// drillExpr is the form the clear value of d is sent in.
func drillExpr(d Drill, marker string) *pg_query.Node {
	typ := &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode(d.Type)}, Typemod: -1}
	var val *pg_query.Node
	if d.Clear != nil {
		val = pg_query.MakeAConstStrNode(*d.Clear, -1)
	} else {
		val = &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}
	}
	setting := pgCall("current_setting", pg_query.MakeAConstStrNode(DrillSetting(marker, d.Domain), -1),
		&pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Boolval{Boolval: &pg_query.Boolean{Boolval: true}}}}})
	when := &pg_query.Node{Node: &pg_query.Node_CaseWhen{CaseWhen: &pg_query.CaseWhen{
		Expr:   &pg_query.Node{Node: &pg_query.Node_NullTest{NullTest: &pg_query.NullTest{Arg: setting, Nulltesttype: pg_query.NullTestType_IS_NULL}}},
		Result: &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: val, TypeName: typ}}},
	}}}
	return &pg_query.Node{Node: &pg_query.Node_CaseExpr{CaseExpr: &pg_query.CaseExpr{Args: []*pg_query.Node{when}}}}
}

// applyDrills puts the clear values of drills in place of their literals.
func applyDrills(raw *pg_query.RawStmt, drills []Drill, marker string) error {
	if len(drills) == 0 {
		return nil
	}
	at := make(map[int32]Drill, len(drills))
	for _, d := range drills {
		if d.Param > 0 {
			continue // decoded in the Bind
		}
		if d.Type == "" {
			return fmt.Errorf("drill-down: no type for the literal at %d", d.Location)
		}
		at[d.Location] = d
	}
	done := 0
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		EachChild(m, func(c protoreflect.Message) bool {
			if n, ok := c.Interface().(*pg_query.Node); ok {
				if _, loc, isLit := DrillLiteral(n); isLit {
					if d, found := at[loc]; found {
						n.Node = drillExpr(d, strings.ToLower(marker)).Node
						delete(at, loc)
						done++
						return true
					}
				}
			}
			walk(c)
			return true
		})
	}
	walk(raw.ProtoReflect())
	if len(at) > 0 {
		return fmt.Errorf("drill-down: %d literals not found", len(at))
	}
	return nil
}

// DrillDomain recognises the form a drill-down's clear value is sent in,
// as the server prints it in a plan, and returns its token domain. Only
// the proxy can write it: the setting's name carries marker.
func DrillDomain(n *pg_query.Node, marker string) (string, bool) {
	ce := n.GetCaseExpr()
	if marker == "" || ce == nil || ce.GetArg() != nil || len(ce.GetArgs()) != 1 {
		return "", false
	}
	if def := ce.GetDefresult(); def != nil && !isNullConst(def) {
		return "", false
	}
	w := ce.GetArgs()[0].GetCaseWhen()
	nt := w.GetExpr().GetNullTest()
	if nt == nil || nt.GetNulltesttype() != pg_query.NullTestType_IS_NULL {
		return "", false
	}
	f := nt.GetArg().GetFuncCall()
	if f == nil || funcLastName(f) != "current_setting" || len(f.GetArgs()) != 2 {
		return "", false
	}
	name, ok := StringConst(f.GetArgs()[0])
	rest, found := strings.CutPrefix(name, drillPrefix+strings.ToLower(marker)+"_")
	if !ok || !found {
		return "", false
	}
	domain, err := hex.DecodeString(rest)
	if err != nil {
		return "", false
	}
	// The result: a constant, cast.
	res := w.GetResult()
	for res.GetTypeCast() != nil {
		res = res.GetTypeCast().GetArg()
	}
	if res.GetAConst() == nil {
		return "", false
	}
	return string(domain), true
}

func isNullConst(n *pg_query.Node) bool {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().GetArg()
	}
	return n.GetAConst() != nil && n.GetAConst().GetIsnull()
}

// StringConst reads a string constant, also cast.
func StringConst(n *pg_query.Node) (string, bool) {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().GetArg()
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().GetSval(), true
	}
	return "", false
}
