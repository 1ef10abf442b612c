package policy

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

// A role's subset (docs/policy.md, "Subsets") names, per table, the rows
// its dumps keep: `subset: {public.customers: "created_at > now() -
// interval '90 days'"}`. Every table that references a subset table
// through foreign keys, directly or through other tables, keeps only the
// rows that reference kept rows, so a restored subset has no dangling
// key; tables nothing filtered is referenced from keep every row (so
// every row a kept row references is there). The conditions are the
// policy author's SQL, checked here and then run by the server as the
// client's own statement would be: through the analysis and the
// server-side check like anything else the role sends.

// loadSubset reads a role's subset: each key a schema-qualified table,
// each value one SQL condition on it.
func (r *Role) loadSubset(spec map[string]string, rpath string, pos *yamlconf.Positions) error {
	for key, cond := range spec {
		kpath := rpath + ".subset." + key
		t, err := ParseTableName(key)
		if err != nil {
			return pos.Errorf(kpath, "%v", err)
		}
		if err := checkCondition(t, cond); err != nil {
			return pos.Errorf(kpath, "%v", err)
		}
		if r.Subset == nil {
			r.Subset = map[TableName]string{}
		}
		r.Subset[t] = strings.TrimSpace(cond)
	}
	return nil
}

// checkCondition accepts one boolean SQL expression and nothing else: it
// must parse as the WHERE clause of a query of t on its own, so it cannot
// close the parenthesis it is put in and append another statement or
// clause.
func checkCondition(t TableName, cond string) error {
	if strings.TrimSpace(cond) == "" {
		return fmt.Errorf("the subset condition is empty")
	}
	tree, err := pg_query.Parse("SELECT 1 FROM " + t.SQL() + " WHERE (" + cond + ")")
	if err != nil {
		return fmt.Errorf("the subset condition does not parse as SQL: %v", err)
	}
	stmts := tree.GetStmts()
	if len(stmts) != 1 {
		return fmt.Errorf("the subset condition must be one condition, not several statements")
	}
	sel := stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || sel.GetWhereClause() == nil || len(sel.GetFromClause()) != 1 || sel.GetGroupClause() != nil ||
		sel.GetHavingClause() != nil || sel.GetSortClause() != nil || sel.GetLimitCount() != nil || sel.GetLimitOffset() != nil ||
		sel.GetWithClause() != nil || sel.GetLockingClause() != nil || sel.GetOp() != pg_query.SetOperation_SETOP_NONE {
		return fmt.Errorf("the subset condition must be a condition on the table's rows, without clauses of its own")
	}
	// Its parentheses must balance on their own: "a) OR (b" parses above
	// too, but joined to other conditions it would mean something else.
	scan, err := pg_query.Scan(cond)
	if err != nil {
		return fmt.Errorf("the subset condition does not parse as SQL: %v", err)
	}
	depth := 0
	for _, tok := range scan.GetTokens() {
		switch tok.GetToken() {
		case pg_query.Token_ASCII_40:
			depth++
		case pg_query.Token_ASCII_41:
			if depth--; depth < 0 {
				return fmt.Errorf("the subset condition closes a parenthesis it did not open")
			}
		case pg_query.Token_ASCII_59:
			return fmt.Errorf("the subset condition must be one condition, not several statements")
		}
	}
	return nil
}

// ForeignKeys are a database's foreign keys by referencing table.
type ForeignKeys map[TableName][]DBForeignKey

// SubsetFilter returns the condition on table t's rows that the role's
// subset implies, and false when the role keeps every row of t. Foreign
// keys are followed from t to the tables it references; a self-reference
// and a cycle back to a table on the way are not followed (docs/policy.md:
// rows may then reference rows the subset leaves out, and the foreign
// key does not restore).
func (r *Role) SubsetFilter(t TableName, fks ForeignKeys) (string, bool) {
	if len(r.Subset) == 0 {
		return "", false
	}
	return r.subsetFilter(t, fks, nil)
}

func (r *Role) subsetFilter(t TableName, fks ForeignKeys, path []TableName) (string, bool) {
	var conds []string
	if c, ok := r.Subset[t]; ok {
		conds = append(conds, "("+c+")")
	}
	path = append(path, t)
	for _, fk := range fks[t] {
		if len(fk.Columns) == 0 || len(fk.Columns) != len(fk.RefColumns) || slices.Contains(path, fk.RefTable) {
			continue
		}
		parent, ok := r.subsetFilter(fk.RefTable, fks, path)
		if !ok {
			continue
		}
		// A semi-join on equal keys, which the server-side check accepts
		// for columns of one token domain. A row whose key is NULL
		// references nothing and is left out with the rest: "key IS NULL
		// OR …" would make the server test each key in a subplan, which
		// the check cannot follow (docs/policy.md).
		var cols, refs []string
		for i, c := range fk.Columns {
			cols = append(cols, QuoteSQLIdent(c))
			refs = append(refs, QuoteSQLIdent(fk.RefColumns[i]))
		}
		conds = append(conds, fmt.Sprintf("(%s) IN (SELECT %s FROM %s WHERE %s)",
			strings.Join(cols, ", "), strings.Join(refs, ", "), fk.RefTable.SQL(), parent))
	}
	if len(conds) == 0 {
		return "", false
	}
	return strings.Join(conds, " AND "), true
}
