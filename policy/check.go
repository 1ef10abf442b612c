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
	Name        TableName
	Columns     []DBColumn
	ForeignKeys []DBForeignKey
}

// DBColumn is a column as the database has it.
type DBColumn struct {
	Name string
	// TypeOID is the type results carry: a domain's base type.
	TypeOID  uint32
	TypeName string
	// MaxLen is a varchar(n) or char(n) column's n (0: none).
	MaxLen int
	// UniqueIn names the unique indexes (primary keys included) the
	// column is part of.
	UniqueIn []string
}

// DBForeignKey is a foreign key: Columns reference RefColumns of RefTable.
type DBForeignKey struct {
	Name       string
	Columns    []string
	RefTable   TableName
	RefColumns []string
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
				spec := col.Spec
				spec.MaxLen = dc.MaxLen
				err := crypto.CheckColumn(spec, dc.TypeOID)
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
				spec := w.Spec
				spec.MaxLen = c.MaxLen
				if err := crypto.CheckColumn(spec, c.TypeOID); err != nil {
					out = append(out, Finding{SeverityError, tn, c.Name, columnProblem(w.Spec.Kind, ` of "*"`, c.TypeName, err)})
				}
			}
		}
	}
	out = append(out, p.checkKeys(tables)...)
	for _, t := range tables {
		for _, c := range t.Columns {
			if p.Column(t.Name, c.Name) == nil {
				out = append(out, Finding{SeverityInfo, t.Name, c.Name, "unclassified (" + c.TypeName + ")"})
			}
		}
	}
	return out
}

// checkKeys reports, role by role, what would break the keys of a dump
// the role takes: a unique or primary key column whose transform does not
// keep distinct values distinct, and a foreign key whose two sides are
// rewritten differently (another action, kind, domain or option, a
// declared length that shortens one side's tokens, another integer width).
func (p *Policy) checkKeys(tables []DBTable) []Finding {
	var out []Finding
	cols := map[TableName]map[string]DBColumn{}
	for _, t := range tables {
		cols[t.Name] = map[string]DBColumn{}
		for _, c := range t.Columns {
			cols[t.Name][c.Name] = c
		}
	}
	rewrites := func(a Action) bool { return a == Tokenize || a == Mask }
	for _, t := range tables {
		for _, c := range t.Columns {
			if len(c.UniqueIn) == 0 || p.Column(t.Name, c.Name) == nil {
				continue
			}
			for _, r := range p.Roles {
				d := p.Decide(r, t.Name, c.Name)
				if d.Action == Mask || d.Action == Tokenize && !crypto.KeepsDistinct(d.Spec) {
					out = append(out, Finding{SeverityError, t.Name, c.Name, fmt.Sprintf("role %s: %s makes distinct values equal, and the column is in unique index %s: the role's dump would not restore (use a transform that keeps values distinct: token, email, digits, int…)",
						r.Name, describeDecision(d), strings.Join(c.UniqueIn, ", "))})
					break
				}
			}
		}
		for _, fk := range t.ForeignKeys {
			for i, name := range fk.Columns {
				if i >= len(fk.RefColumns) {
					break
				}
				a, aok := cols[t.Name][name]
				b, bok := cols[fk.RefTable][fk.RefColumns[i]]
				if !aok || !bok || p.Column(t.Name, name) == nil && p.Column(fk.RefTable, fk.RefColumns[i]) == nil {
					continue
				}
				for _, r := range p.Roles {
					da, db := p.Decide(r, t.Name, name), p.Decide(r, fk.RefTable, fk.RefColumns[i])
					same := da.Action == db.Action || !rewrites(da.Action) && !rewrites(db.Action) && da.Action != Allow && db.Action != Allow
					if same && rewrites(da.Action) {
						sa, sb := da.Spec, db.Spec
						sa.MaxLen, sb.MaxLen = a.MaxLen, b.MaxLen
						var err error
						if same, err = crypto.SameOutputs(sa, a.TypeOID, sb, b.TypeOID); err != nil {
							same = false
						}
					}
					if !same {
						out = append(out, Finding{SeverityError, t.Name, name, fmt.Sprintf("role %s: foreign key %s references %s.%s, which is rewritten otherwise (%s here, %s there): the role's dump would not restore (give both columns the same transform and token domain, type and length)",
							r.Name, fk.Name, fk.RefTable, quoteIdent(fk.RefColumns[i]), describeDecision(da), describeDecision(db))})
						break
					}
				}
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
