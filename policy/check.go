package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgpseudo/pgpseudo/crypto"
)

// DBTable is a table as the database has it, for CheckSchema. Partitions
// and inheritance children are left out: they take their root's policy.
type DBTable struct {
	Name    TableName
	Columns []DBColumn
}

// DBColumn is a column as the database has it.
type DBColumn struct {
	Name     string
	TypeOID  uint32
	TypeName string
}

// Severity of a finding.
type Severity string

// Severities: errors make `policy check --db` fail.
const (
	SeverityError Severity = "error"
	SeverityInfo  Severity = "info"
)

// Finding is one result of CheckSchema.
type Finding struct {
	Severity Severity
	Table    TableName
	Column   string
	Message  string
}

// String formats a finding as "severity: schema.table.column: message".
func (f Finding) String() string {
	where := f.Table.String()
	if f.Column != "" {
		where += "." + quoteIdent(f.Column)
	}
	return fmt.Sprintf("%s: %s: %s", f.Severity, where, f.Message)
}

// CheckSchema compares the policy with a database: classified tables and
// columns that do not exist and transforms that do not fit a column's type
// are errors; every unclassified column of every table is listed as info.
func (p *Policy) CheckSchema(tables []DBTable) []Finding {
	var out []Finding
	byName := map[TableName]DBTable{}
	for _, t := range tables {
		byName[t.Name] = t
	}
	for _, tn := range p.Tables() {
		t, ok := byName[tn]
		if !ok {
			out = append(out, Finding{SeverityError, tn, "", "the policy classifies this table but the database has no such table"})
			continue
		}
		have := map[string]DBColumn{}
		for _, c := range t.Columns {
			have[c.Name] = c
		}
		for _, col := range p.Columns(tn) {
			dc, ok := have[col.Name]
			if !ok {
				out = append(out, Finding{SeverityError, tn, col.Name, "the policy classifies this column but the table has no such column"})
				continue
			}
			if col.Spec.Kind != "" {
				err := crypto.CheckColumn(col.Spec, dc.TypeOID)
				if scale, ok := numericScale(dc.TypeName); err == nil && ok {
					err = crypto.CheckNumericScale(col.Spec, scale)
				}
				if err != nil {
					out = append(out, Finding{SeverityError, tn, col.Name, columnProblem(col.Spec.Kind, "", dc.TypeName, err)})
				}
			}
		}
		if w := p.tables[tn].wildcard; w != nil && w.Spec.Kind != "" {
			for _, c := range t.Columns {
				if p.tables[tn].columns[c.Name] != nil {
					continue
				}
				if err := crypto.CheckColumn(w.Spec, c.TypeOID); err != nil {
					out = append(out, Finding{SeverityError, tn, c.Name, columnProblem(w.Spec.Kind, ` of "*"`, c.TypeName, err)})
				}
			}
		}
	}
	for _, t := range tables {
		for _, c := range t.Columns {
			if p.Column(t.Name, c.Name) == nil {
				out = append(out, Finding{SeverityInfo, t.Name, c.Name, "unclassified (" + c.TypeName + ")"})
			}
		}
	}
	return out
}

// columnProblem says why a transform cannot serve a column: its type, or
// the transform's own reason (a domain too small, an identity spec).
func columnProblem(kind crypto.Kind, of, typeName string, err error) string {
	msg := fmt.Sprintf("transform %s%s does not apply to type %s", kind, of, typeName)
	if err == crypto.ErrUnsupported {
		return msg
	}
	return msg + ": " + err.Error()
}

// numericScale reads the scale of a type as format_type prints it,
// "numeric(10,2)"; an unconstrained numeric has none.
func numericScale(typeName string) (int, bool) {
	args, ok := strings.CutPrefix(typeName, "numeric(")
	if !ok {
		return 0, false
	}
	_, scale, ok := strings.Cut(strings.TrimSuffix(args, ")"), ",")
	if !ok {
		return 0, true // numeric(p): scale 0
	}
	n, err := strconv.Atoi(scale)
	return n, err == nil
}
