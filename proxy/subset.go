package proxy

import (
	"context"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy"
)

// subsetCopy is what a role with a subset (docs/policy.md, "Subsets")
// sends upstream for `COPY schema.table (columns) TO STDOUT`, the
// statement pg_dump reads each table's data with: `COPY (SELECT columns
// FROM ONLY schema.table WHERE <the subset's condition>) TO STDOUT`, so
// the dump keeps the rows the subset implies and no row references one it
// left out. Any other statement, a COPY with options or of an unqualified
// table (whose name the proxy would have to resolve), and a table the
// subset does not reach, are sent as they are. The result is then checked
// like the client's own text: the analysis and the server-side check see
// the statement that runs.
func (s *session) subsetCopy(ctx context.Context, q string, role *policy.Role) (string, error) {
	if w := firstWord(q); len(role.Subset) == 0 || !strings.EqualFold(w, "copy") && !strings.EqualFold(w, "declare") {
		return q, nil
	}
	tree, err := pg_query.Parse(q)
	if err != nil || len(tree.GetStmts()) != 1 {
		return q, nil // the analysis refuses or describes it
	}
	if dc := tree.GetStmts()[0].GetStmt().GetDeclareCursorStmt(); dc != nil {
		return s.subsetCursor(ctx, q, tree, dc, role)
	}
	c := tree.GetStmts()[0].GetStmt().GetCopyStmt()
	rel := c.GetRelation()
	if c == nil || rel == nil || c.GetIsFrom() || c.GetFilename() != "" || c.GetQuery() != nil || c.GetWhereClause() != nil ||
		len(c.GetOptions()) > 0 || rel.GetSchemaname() == "" || rel.GetCatalogname() != "" {
		return q, nil
	}
	t := policy.TableName{Schema: rel.GetSchemaname(), Table: rel.GetRelname()}
	fks, err := s.srv.catalog.ForeignKeys(ctx, s.id.Database)
	if err != nil {
		return "", fmt.Errorf("the foreign keys for the role's subset could not be read: %w", err)
	}
	filter, ok := role.SubsetFilter(t, fks)
	if !ok {
		return q, nil
	}
	cols := "*"
	if list := c.GetAttlist(); len(list) > 0 {
		names := make([]string, len(list))
		for i, n := range list {
			names[i] = policy.QuoteSQLIdent(n.GetString_().GetSval())
		}
		cols = strings.Join(names, ", ")
	}
	return fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT", cols, t.SQL(), filter), nil
}

// subsetCursor is subsetCopy for what pg_dump --inserts and
// --column-inserts read a table with: `DECLARE c CURSOR FOR SELECT * FROM
// ONLY schema.table` (or its columns), which gets the subset's condition
// as its WHERE clause. Any other cursor is left as it is.
func (s *session) subsetCursor(ctx context.Context, q string, tree *pg_query.ParseResult, dc *pg_query.DeclareCursorStmt, role *policy.Role) (string, error) {
	sel := dc.GetQuery().GetSelectStmt()
	if sel == nil || len(sel.GetFromClause()) != 1 || sel.GetWhereClause() != nil || sel.GetGroupClause() != nil || sel.GetHavingClause() != nil ||
		sel.GetSortClause() != nil || sel.GetLimitCount() != nil || sel.GetWithClause() != nil || sel.GetOp() != pg_query.SetOperation_SETOP_NONE {
		return q, nil
	}
	rel := sel.GetFromClause()[0].GetRangeVar()
	if rel == nil || rel.GetInh() || rel.GetSchemaname() == "" || rel.GetCatalogname() != "" || rel.GetAlias() != nil {
		return q, nil
	}
	t := policy.TableName{Schema: rel.GetSchemaname(), Table: rel.GetRelname()}
	fks, err := s.srv.catalog.ForeignKeys(ctx, s.id.Database)
	if err != nil {
		return "", fmt.Errorf("the foreign keys for the role's subset could not be read: %w", err)
	}
	filter, ok := role.SubsetFilter(t, fks)
	if !ok {
		return q, nil
	}
	cond, err := pg_query.Parse("SELECT 1 FROM " + t.SQL() + " WHERE " + filter)
	if err != nil || len(cond.GetStmts()) != 1 {
		return "", fmt.Errorf("the role's subset condition for %s does not parse: %v", t, err)
	}
	sel.WhereClause = cond.GetStmts()[0].GetStmt().GetSelectStmt().GetWhereClause()
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", fmt.Errorf("the subset cursor could not be written: %w", err)
	}
	return out, nil
}

// firstWord is q's first word, after blanks.
func firstWord(q string) string {
	q = strings.TrimLeft(q, " \t\r\n")
	if i := strings.IndexAny(q, " \t\r\n("); i >= 0 {
		return q[:i]
	}
	return q
}
