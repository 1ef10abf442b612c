package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
)

// buildPlan decides every column of a result. formats are the columns'
// wire formats (from RowDescription or Bind).
//
// rv says what the statement's computed columns may carry, as the server's
// plan of it proves (never the static analysis: the response side is an
// independent second line).
func (s *session) buildPlan(ctx context.Context, fields []pgproto3.FieldDescription, formats []int16, rv resultVerdict) (*rewrite.Plan, error) {
	pol, role, gen := s.policyNow()
	p := &rewrite.Plan{Cols: make([]rewrite.Col, len(fields)), Passthrough: true, TypmodReset: make([]bool, len(fields)), Types: make([]uint32, len(fields)), Generation: gen,
		DateStyle: s.dateStyle()}
	if !role.Restricted() {
		return p, nil // a role that sees everything: rows pass unchanged
	}
	var ks *crypto.Keyset // fetched once, when a column needs it
	spol, srole, _, shadow := s.shadowNow()
	shadow = shadow && srole != nil
	for i, f := range fields {
		format := rewrite.FormatFor(formats, i, f.Format)
		d, origin, notNull, err := s.decideField(ctx, pol, role, f, rv, i)
		if err != nil {
			return nil, err
		}
		if shadow {
			// The candidate decides the same column from the same origin;
			// a column it cannot decide is not compared.
			if sd, _, _, err := s.decideField(ctx, spol, srole, f, rv, i); err == nil {
				if diff, ok := decisionDifference(origin, string(f.Name), d, sd); ok {
					p.Shadow = append(p.Shadow, diff)
				}
			}
		}
		cp := rewrite.Col{Action: d.Action}
		switch d.Action {
		case policy.Allow:
			if format != 1 {
				break
			}
			if tr := rewrite.CanonicalNaN(f.DataTypeOID); tr != nil {
				cp.Tr = tr
				p.Passthrough = false
			} else if f.TableOID == 0 && rewrite.BinaryOpaque(f.DataTypeOID) {
				cp.Action = policy.Block
				d.Rule = fmt.Sprintf("the binary form of a computed record or non-built-in type (oid %d) may keep bits its text does not show; restricted roles get such columns in text format", f.DataTypeOID)
			}
		case policy.Tokenize, policy.Mask:
			if !crypto.Supports(d.Spec.Kind, f.DataTypeOID, format) {
				// The policy's transform does not fit this type: withhold.
				cp.Action = policy.Block
				d.Rule = fmt.Sprintf("transform %s does not apply to this column's type (oid %d); %s", d.Spec.Kind, f.DataTypeOID, d.Rule)
				break
			}
			if ks == nil {
				kctx, cancel := context.WithTimeout(ctx, planTimeout)
				ks, err = s.srv.keyset(kctx)
				cancel()
				if err != nil {
					return nil, err
				}
			}
			spec := d.Spec
			spec.MaxLen = declaredLength(f)
			if cp.Tr, err = s.srv.transformers.Get(spec, ks, f.DataTypeOID, format); err != nil {
				if errors.Is(err, crypto.ErrUnsupported) || errors.Is(err, crypto.ErrInvalidSpec) || errors.Is(err, crypto.ErrUnknownVersion) {
					// The spec cannot serve this type (int on smallint,
					// round without digits on an integer), or pins a key
					// version the keyset does not hold: withhold, with the
					// reason, and let the session go on.
					cp.Tr, cp.Action = nil, policy.Block
					d.Rule = fmt.Sprintf("transform %s cannot serve this column: %v; %s", d.Spec.Kind, err, d.Rule)
					break
				}
				return nil, fmt.Errorf("column %q: %w", f.Name, err)
			}
			if format == 0 && datetime(f.DataTypeOID) {
				// Dates leave as text in the session's DateStyle.
				st, ok := crypto.ParseDateStyle(p.DateStyle)
				if !ok {
					cp.Tr, cp.Action = nil, policy.Block
					d.Rule = fmt.Sprintf("pgpseudo cannot read dates in DateStyle %q; %s", p.DateStyle, d.Rule)
					break
				}
				cp.Tr = crypto.Styled(cp.Tr, f.DataTypeOID, st)
			}
			p.TypmodReset[i] = true
		}
		op, lifted := rv.lift(i)
		if lifted {
			// The statement asked for a cast or prefix of this column,
			// which the proxy computes on what it sends instead.
			p.Types[i], p.TypmodReset[i] = op.ResultType(), true
			switch {
			case format != 0 && !textual(f.DataTypeOID):
				// (A text type's binary form is its text.)
				cp.Tr, cp.Action = nil, policy.Block
				d.Rule = fmt.Sprintf("pgpseudo computes %s of this column itself, in text format only; %s", f.Name, d.Rule)
			case cp.Action == policy.Allow || cp.Action == policy.Tokenize || cp.Action == policy.Mask:
				cp.Tr = rewrite.PostOp(cp.Tr, op, f.DataTypeOID)
				p.Passthrough = false
			}
		}
		if cp.Action == policy.Null || cp.Action == policy.Block {
			cp.Null = true
			if notNull && !lifted {
				// Dumps must restore: a NOT NULL column gets a type-valid
				// constant instead of NULL where one exists (of its own
				// type: not for a column the proxy computes).
				if tr, err := s.srv.transformers.Get(crypto.Spec{Kind: crypto.KindRedact, MaxLen: declaredLength(f)}, nil, f.DataTypeOID, format); err == nil {
					cp.Tr, cp.Null = tr, false
					p.TypmodReset[i] = true
				}
			}
			if cp.Action == policy.Block {
				p.Withheld = append(p.Withheld, fmt.Sprintf("%s (%s)", f.Name, d.Rule))
			}
		}
		if cp.Action != policy.Allow {
			p.Passthrough = false
		}
		p.Cols[i] = cp
		p.Note(origin, d, cp)
	}
	return p, nil
}

// decideField finds the origin and the policy decision of result column i.
// rv is what the server's plan proves the statement's columns carry (used
// when a column has no table origin, or a view's).
func (s *session) decideField(ctx context.Context, pol *policy.Policy, role *policy.Role, f pgproto3.FieldDescription, rv resultVerdict, i int) (policy.Decision, policy.TableName, bool, error) {
	attnum := int16(f.TableAttributeNumber) // system columns are negative
	if f.TableOID == 0 {
		// A computed column has no origin in RowDescription. It may leave
		// only when the server's plan proves it derives from no protected
		// column.
		if !rv.clean(i) {
			return policy.Decision{Action: policy.Block, Column: string(f.Name),
				Rule: "a computed column the server's plan does not prove free of protected data"}, policy.TableName{}, false, nil
		}
		return policy.Decision{Action: policy.Allow}, policy.TableName{}, false, nil
	}
	rel, err := s.srv.catalog.Relation(ctx, s.id.Database, f.TableOID)
	if err != nil {
		return policy.Decision{}, policy.TableName{}, false, err
	}
	if attnum < 0 {
		// System columns: ctid -1, xmin -2, cmin -3, xmax -4, cmax -5, tableoid -6.
		names := [...]string{"ctid", "xmin", "cmin", "xmax", "cmax", "tableoid"}
		name := fmt.Sprintf("system column %d", attnum) // unknown: not tableoid
		if int(-attnum) <= len(names) {
			name = names[-attnum-1]
		}
		return catalog.SystemDecision(pol, role, rel.Root, name), rel.Root, false, nil
	}
	if rel.Root.Schema == "pg_catalog" || rel.Root.Schema == "information_schema" {
		// System catalogs describe the database, not people — except the
		// few that keep column statistics or statement texts.
		return catalog.Decision(pol, role, rel, rel.Attrs[attnum].Name), rel.Root, false, nil
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
		// table's. The server's plan, which expands views, shows where a
		// view's column comes from: a protected column passed on
		// unchanged takes that column's decision (its tokens are the
		// table's), one that carries nothing protected leaves, anything
		// else is withheld. A materialized view's plan shows only the
		// view, and its rows may be older than its definition: its
		// columns are blocked unless the policy classifies them.
		if rel.Kind == 'v' {
			if src, ok := rv.bareSource(i); ok {
				return src.Decision, src.Table, a.NotNull, nil
			}
			if rv.clean(i) {
				return pol.Decide(role, rel.Root, a.Name), rel.Root, a.NotNull, nil
			}
			return policy.Decision{Action: policy.Block, Column: a.Name, Rule: fmt.Sprintf("%s.%s is a view column the server's plan does not trace to a single base column", rel.Root, a.Name)}, rel.Root, a.NotNull, nil
		}
		return pol.DecideMatview(role, rel.Root, a.Name), rel.Root, a.NotNull, nil
	}
	return pol.Decide(role, rel.Root, a.Name), rel.Root, a.NotNull, nil
}

// dateStyle is the session's DateStyle as the server last reported it.
func (s *session) dateStyle() string {
	if s.styleUnsure {
		return "unknown (a setting changed in this batch)"
	}
	if v := s.trk.Param("DateStyle"); v != "" {
		return v
	}
	return "ISO, MDY"
}

// settingTags are the CommandComplete tags of commands that may change
// DateStyle, or undo a change (a rollback, a commit ending SET LOCAL):
// PostgreSQL reports the new value only at the next ReadyForQuery, and
// rows in between already follow it (with DMY and MDY swapped, a month
// transform would show the day).
func settingTags(tag []byte) bool {
	for _, t := range []string{"SET", "RESET", "DISCARD", "ROLLBACK", "COMMIT", "PREPARE"} {
		if bytes.HasPrefix(tag, []byte(t)) && (len(tag) == len(t) || tag[len(t)] == ' ' || tag[len(t)] == 0) {
			return true
		}
	}
	return false
}

// textual reports text, varchar and char, whose binary form is their text.
func textual(oid uint32) bool { return oid == 25 || oid == 1043 || oid == 1042 }

// datetime reports the types whose text form follows DateStyle.
func datetime(oid uint32) bool {
	return oid == crypto.OIDDate || oid == crypto.OIDTimestamp || oid == crypto.OIDTimestampTZ
}

func strictest(pol *policy.Policy, role *policy.Role, rel *catalog.Relation) policy.Decision {
	for _, a := range rel.Attrs {
		if d := pol.Decide(role, rel.Root, a.Name); d.Action != policy.Allow {
			return policy.Decision{Action: policy.Block, Rule: fmt.Sprintf("a whole-row value of %s includes %s", rel.Root, d.Rule)}
		}
	}
	return policy.Decision{Action: policy.Allow}
}

// declaredLength is a varchar(n) or char(n) column's n from its type
// modifier (n + 4), 0 for other types and unbounded ones: what every
// output must fit so a dump restores.
func declaredLength(f pgproto3.FieldDescription) int {
	if (f.DataTypeOID == crypto.OIDVarchar || f.DataTypeOID == crypto.OIDBPChar) && f.TypeModifier > 4 {
		return int(f.TypeModifier - 4)
	}
	return 0
}
