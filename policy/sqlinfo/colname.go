package sqlinfo

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ColumnName is the name PostgreSQL gives a select-list item written
// without AS (PostgreSQL's FigureColname, ported
// case by case). certain is false for expressions whose naming is not
// ported (JSON constructors, …): a caller must then treat the name as
// unknown rather than guess, since name resolution depends on it.
func ColumnName(n *pg_query.Node) (name string, certain bool) {
	name, strength, certain := figure(n)
	if !certain {
		return "", false
	}
	if strength == 0 {
		return "?column?", true
	}
	return name, true
}

// figure returns the name, PostgreSQL's confidence in it (0 none, 1
// second best, 2 good), and whether the port covers the node.
func figure(n *pg_query.Node) (string, int, bool) {
	if n == nil || n.GetNode() == nil {
		return "", 0, true
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		name := ""
		for _, f := range x.ColumnRef.GetFields() {
			if s := f.GetString_(); s != nil {
				name = s.GetSval()
			}
		}
		if name != "" {
			return name, 2, true
		}
		return "", 0, true
	case *pg_query.Node_AIndirection:
		name := ""
		for _, f := range x.AIndirection.GetIndirection() {
			if s := f.GetString_(); s != nil {
				name = s.GetSval()
			}
		}
		if name != "" {
			return name, 2, true
		}
		return figure(x.AIndirection.GetArg())
	case *pg_query.Node_FuncCall:
		f := x.FuncCall.GetFuncname()
		return f[len(f)-1].GetString_().GetSval(), 2, true
	case *pg_query.Node_AExpr:
		if x.AExpr.GetKind() == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2, true
		}
		return "", 0, true
	case *pg_query.Node_TypeCast:
		name, strength, ok := figure(x.TypeCast.GetArg())
		if !ok {
			return "", 0, false
		}
		if strength <= 1 {
			if names := x.TypeCast.GetTypeName().GetNames(); len(names) > 0 {
				return names[len(names)-1].GetString_().GetSval(), 1, true
			}
		}
		return name, strength, true
	case *pg_query.Node_CollateClause:
		return figure(x.CollateClause.GetArg())
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2, true
	case *pg_query.Node_SubLink:
		switch x.SubLink.GetSubLinkType() {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2, true
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2, true
		case pg_query.SubLinkType_EXPR_SUBLINK:
			// The subquery's single target's name (its AS name or its own
			// figured name).
			sel := x.SubLink.GetSubselect().GetSelectStmt()
			for sel != nil && sel.GetOp() != pg_query.SetOperation_SETOP_NONE && sel.GetOp() != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
				sel = sel.GetLarg()
			}
			switch {
			case sel == nil:
				return "", 0, false
			case len(sel.GetValuesLists()) > 0:
				return "column1", 2, true
			case len(sel.GetTargetList()) == 0:
				return "", 0, false
			}
			rt := sel.GetTargetList()[0].GetResTarget()
			if rt.GetName() != "" {
				return rt.GetName(), 2, true
			}
			if cr := rt.GetVal().GetColumnRef(); cr != nil {
				if f := cr.GetFields(); f[len(f)-1].GetAStar() != nil {
					return "", 0, false // the first column of a *
				}
			}
			name, certain := ColumnName(rt.GetVal())
			return name, 2, certain
		}
		return "", 0, true
	case *pg_query.Node_CaseExpr:
		name, strength, ok := figure(x.CaseExpr.GetDefresult())
		if !ok {
			return "", 0, false
		}
		if strength <= 1 {
			return "case", 1, true
		}
		return name, strength, true
	case *pg_query.Node_AArrayExpr:
		return "array", 2, true
	case *pg_query.Node_RowExpr:
		return "row", 2, true
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2, true
	case *pg_query.Node_MinMaxExpr:
		switch x.MinMaxExpr.GetOp() {
		case pg_query.MinMaxOp_IS_GREATEST:
			return "greatest", 2, true
		case pg_query.MinMaxOp_IS_LEAST:
			return "least", 2, true
		}
		return "", 0, true
	case *pg_query.Node_SqlvalueFunction:
		if name, ok := sqlValueNames[x.SqlvalueFunction.GetOp()]; ok {
			return name, 2, true
		}
		return "", 0, false
	case *pg_query.Node_XmlExpr:
		if name, ok := xmlNames[x.XmlExpr.GetOp()]; ok {
			return name, 2, true
		}
		return "", 0, x.XmlExpr.GetOp() == pg_query.XmlExprOp_IS_DOCUMENT
	case *pg_query.Node_XmlSerialize:
		return "xmlserialize", 2, true
	case *pg_query.Node_AConst, *pg_query.Node_ParamRef, *pg_query.Node_BoolExpr, *pg_query.Node_NullTest,
		*pg_query.Node_BooleanTest:
		return "", 0, true
	}
	return "", 0, false
}

var sqlValueNames = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE: "current_date", pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME: "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N: "current_time", pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP: "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp", pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME: "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N: "localtime", pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP: "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N: "localtimestamp", pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE: "current_role",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER: "current_user", pg_query.SQLValueFunctionOp_SVFOP_USER: "user",
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER: "session_user", pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG: "current_catalog",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA: "current_schema",
}

var xmlNames = map[pg_query.XmlExprOp]string{
	pg_query.XmlExprOp_IS_XMLCONCAT: "xmlconcat", pg_query.XmlExprOp_IS_XMLELEMENT: "xmlelement", pg_query.XmlExprOp_IS_XMLFOREST: "xmlforest",
	pg_query.XmlExprOp_IS_XMLPARSE: "xmlparse", pg_query.XmlExprOp_IS_XMLPI: "xmlpi", pg_query.XmlExprOp_IS_XMLROOT: "xmlroot",
	pg_query.XmlExprOp_IS_XMLSERIALIZE: "xmlserialize",
}
