package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// colPlan is what happens to one result column, decided once per result.
type colPlan struct {
	action policy.Action
	// tr rewrites the value (tokenize, mask, or the NOT NULL stand-in of a
	// withheld value); nil with action allow copies the raw bytes.
	tr crypto.Transformer
	// null writes SQL NULL for every value.
	null bool
}

// plan is the column plan of one result set (DESIGN.md §2).
type plan struct {
	cols []colPlan
	// passthrough is true when every column is allowed: rows are copied.
	passthrough bool
	// withheld names the columns whose values do not leave, with the rule,
	// for the one NoticeResponse per result (noticeFrame, encoded once).
	withheld    []string
	noticeFrame []byte
	// typmodReset marks columns whose TypeModifier must become -1 because a
	// token may not fit varchar(n)/char(n).
	typmodReset []bool
	// generation is the policy generation the plan was made under.
	generation uint64
	// audit holds the decisions on classified or rewritten columns, and
	// relations the tables the result's columns come from.
	audit     []audit.ColumnDecision
	relations []string
}

// textLike are types that can carry arbitrary text or bytes: a column of
// such a type with no provable origin is never forwarded raw
// (research/protocol.md rule 9).
func textLike(oid uint32) bool {
	switch oid {
	case 16, 20, 21, 23, 26, 700, 701, 1700, 1082, 1083, 1114, 1184, 1186, 1266, 790:
		// bool, int8, int2, int4, oid, float4, float8, numeric, date, time,
		// timestamp, timestamptz, interval, timetz, money
		return false
	}
	return true
}

// buildPlan decides every column of a result. formats are the columns'
// wire formats (from RowDescription or Bind).
//
// rv says what the statement's computed columns may carry, as the server's
// plan of it proves (never the static analysis: the response side is an
// independent second line).
func (s *session) buildPlan(ctx context.Context, fields []pgproto3.FieldDescription, formats []int16, rv resultVerdict) (*plan, error) {
	pol, role, gen := s.policyNow()
	p := &plan{cols: make([]colPlan, len(fields)), passthrough: true, typmodReset: make([]bool, len(fields)), generation: gen}
	if !role.Restricted() {
		return p, nil // a role that sees everything: rows pass unchanged
	}
	for i, f := range fields {
		format := formatFor(formats, i, f.Format)
		d, origin, notNull, err := s.decideField(ctx, pol, role, f, rv.clean(i))
		if err != nil {
			return nil, err
		}
		cp := colPlan{action: d.Action}
		switch d.Action {
		case policy.Allow:
		case policy.Tokenize, policy.Mask:
			if !crypto.Supports(d.Spec.Kind, f.DataTypeOID, format) {
				// The policy's transform does not fit this type: withhold.
				cp.action = policy.Block
				d.Rule = fmt.Sprintf("transform %s does not apply to this column's type (oid %d); %s", d.Spec.Kind, f.DataTypeOID, d.Rule)
				break
			}
			ks, err := s.srv.keyset(ctx)
			if err != nil {
				return nil, err
			}
			if cp.tr, err = s.srv.transformers.get(d.Spec, ks, f.DataTypeOID, format); err != nil {
				return nil, fmt.Errorf("column %q: %w", f.Name, err)
			}
			p.typmodReset[i] = true
		}
		if cp.action == policy.Null || cp.action == policy.Block {
			cp.null = true
			if notNull {
				// Dumps must restore: a NOT NULL column gets a type-valid
				// constant instead of NULL where one exists.
				if tr, err := s.srv.transformers.get(crypto.Spec{Kind: crypto.KindRedact}, nil, f.DataTypeOID, format); err == nil {
					cp.tr, cp.null = tr, false
					p.typmodReset[i] = true
				}
			}
			if cp.action == policy.Block {
				p.withheld = append(p.withheld, fmt.Sprintf("%s (%s)", f.Name, d.Rule))
			}
		}
		if cp.action != policy.Allow {
			p.passthrough = false
		}
		p.cols[i] = cp
		p.note(origin, d, cp)
	}
	return p, nil
}

// note records a column's decision for the audit record.
func (p *plan) note(origin policy.TableName, d policy.Decision, cp colPlan) {
	if origin.Table == "" {
		return
	}
	table := origin.Schema + "." + origin.Table
	if !slices.Contains(p.relations, table) {
		p.relations = append(p.relations, table)
	}
	if d.Category == "" && cp.action == policy.Allow {
		return
	}
	cd := audit.ColumnDecision{Table: table, Column: d.Column, Class: d.Category, Decision: decisionOf(cp.action)}
	if cp.action == policy.Tokenize || cp.action == policy.Mask {
		cd.Transformer, cd.Domain = string(d.Spec.Kind), d.Spec.Domain
		if cp.tr != nil {
			cd.KeyVersion = cp.tr.KeyVersion()
		}
	}
	if cd.Class == "" {
		cd.Class = "unclassified"
	}
	p.audit = append(p.audit, cd)
}

// decideField finds a result column's origin and the policy decision.
// clean says the server's plan proves the column carries no protected
// value (used when it has no table origin).
func (s *session) decideField(ctx context.Context, pol *policy.Policy, role *policy.Role, f pgproto3.FieldDescription, clean bool) (policy.Decision, policy.TableName, bool, error) {
	attnum := int16(f.TableAttributeNumber) // system columns are negative
	if f.TableOID == 0 {
		// A computed column has no origin in RowDescription. It may leave
		// only when the server's plan proves it derives from no protected
		// column.
		if !clean {
			return policy.Decision{Action: policy.Block, Column: string(f.Name),
				Rule: "a computed column the server's plan does not prove free of protected data"}, policy.TableName{}, false, nil
		}
		return policy.Decision{Action: policy.Allow}, policy.TableName{}, false, nil
	}
	rel, err := s.srv.catalog.relation(ctx, s.id.Database, f.TableOID)
	if err != nil {
		return policy.Decision{}, policy.TableName{}, false, err
	}
	if attnum < 0 {
		return policy.Decision{Action: policy.Allow}, rel.Root, false, nil // ctid, xmin, …
	}
	if rel.Root.Schema == "pg_catalog" || rel.Root.Schema == "information_schema" {
		// System catalogs describe the database, not people — except the
		// few that keep column statistics or other sessions' SQL text.
		if sqlinfo.SensitiveCatalog(rel.Root.Table) {
			return policy.Decision{Action: policy.Block, Column: rel.Attrs[attnum].Name,
				Rule: fmt.Sprintf("%s holds table data or other sessions' statements", rel.Root)}, rel.Root, false, nil
		}
		return policy.Decision{Action: policy.Allow}, rel.Root, false, nil
	}
	if attnum == 0 {
		// A whole-row reference carries every column: the strictest action
		// of the table applies.
		return strictest(pol, role, rel), rel.Root, false, nil
	}
	a, ok := rel.Attrs[attnum]
	if !ok {
		return policy.Decision{Action: policy.Block, Rule: fmt.Sprintf("column %d of %s is not in the catalog", attnum, rel.Root)}, rel.Root, false, nil
	}
	if (rel.Kind == 'v' || rel.Kind == 'm') && pol.Column(rel.Root, a.Name) == nil {
		// PostgreSQL reports a view's columns as the view's, not the base
		// table's: without analysing the view an origin is unknown.
		if role.Unclassified != policy.Allow || textLike(a.TypeOID) {
			return policy.Decision{Action: policy.Block, Column: a.Name, Rule: fmt.Sprintf("%s.%s is a view column that pgpseudo cannot trace to a base table", rel.Root, a.Name)}, rel.Root, a.NotNull, nil
		}
	}
	return pol.Decide(role, rel.Root, a.Name), rel.Root, a.NotNull, nil
}

func strictest(pol *policy.Policy, role *policy.Role, rel *relInfo) policy.Decision {
	for _, a := range rel.Attrs {
		if d := pol.Decide(role, rel.Root, a.Name); d.Action != policy.Allow {
			return policy.Decision{Action: policy.Block, Rule: fmt.Sprintf("a whole-row value of %s includes %s", rel.Root, d.Rule)}
		}
	}
	return policy.Decision{Action: policy.Allow}
}

// formatFor applies Bind's result-format rules: none ⇒ text, one ⇒ all,
// else per column. fallback is used when formats is nil (simple query).
func formatFor(formats []int16, i int, fallback int16) int16 {
	switch {
	case formats == nil:
		return fallback
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

// notice returns the NoticeResponse naming the withheld columns, encoded
// once per plan (a prepared statement's plan serves every execution).
func (p *plan) notice() []byte {
	if len(p.withheld) == 0 {
		return nil
	}
	if p.noticeFrame == nil {
		p.noticeFrame, _ = (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000",
			Message: "pgpseudo: values withheld for " + strings.Join(p.withheld, "; ")}).Encode(nil)
	}
	return p.noticeFrame
}
