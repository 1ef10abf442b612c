package policy

import (
	"fmt"
	"path"
	"strings"
)

// ParseTableName parses "schema.table", where either part may be written
// in double quotes (to contain a dot or a quote, doubled). Names are taken
// exactly as written: they must match the catalog case-sensitively.
func ParseTableName(s string) (TableName, error) {
	schema, rest, err := splitIdent(s)
	if err != nil {
		return TableName{}, err
	}
	if !strings.HasPrefix(rest, ".") {
		return TableName{}, fmt.Errorf("table %q must be schema-qualified (schema.table)", s)
	}
	table, rest, err := splitIdent(rest[1:])
	if err != nil {
		return TableName{}, err
	}
	if rest != "" || schema == "" || table == "" {
		return TableName{}, fmt.Errorf("table %q must be schema.table", s)
	}
	return TableName{Schema: schema, Table: table}, nil
}

func splitIdent(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return s, "", nil
		}
		return s[:i], s[i:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			return b.String(), s[i+1:], nil
		}
		b.WriteByte(s[i])
	}
	return "", "", fmt.Errorf("unterminated quoted identifier in %q", s)
}

// QuoteSQLIdent quotes a name for SQL text the proxy writes, always: no
// keyword (user, order) or case folding can change what it names.
func QuoteSQLIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// SQL is the table name for SQL text the proxy writes (QuoteSQLIdent).
func (t TableName) SQL() string { return QuoteSQLIdent(t.Schema) + "." + QuoteSQLIdent(t.Table) }

// quoteIdent quotes a name when PostgreSQL would need it, for messages.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func validGlob(g string) bool {
	if g == "" {
		return false
	}
	_, err := path.Match(g, "")
	return err == nil
}

// QualifiedName is the column's schema.table.column with each part quoted
// when PostgreSQL would need it ("s.t".x."c") — unambiguous, unlike the
// parts joined with dots.
func (c *Column) QualifiedName() string { return c.Table.String() + "." + quoteIdent(c.Name) }
