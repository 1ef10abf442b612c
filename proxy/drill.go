package proxy

import (
	"context"
	"fmt"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// drillTypes are the column types a drill-down's clear value may be cast
// to: those of the reversible transforms (int, uuid, and text for
// digits, iban, card and reversible tokens).
var drillTypes = map[uint32]string{21: "int2", 23: "int4", 20: "int8", 2950: "uuid", 25: "text", 1043: "varchar", 1042: "bpchar"}

// drillValues decodes the drill-down literals of each statement
// (sqlinfo.Drill): a literal that is no token of its domain decodes to
// nothing and matches nothing. refuse says why a statement cannot be
// drilled into.
func (s *session) drillValues(ctx context.Context, pol *policy.Policy, role *policy.Role, res *analyze.Result) (drills [][]sqlinfo.Drill, refuse string, err error) {
	var ks *crypto.Keyset
	for i, st := range res.Statements {
		if len(st.Drills) == 0 {
			continue
		}
		if drills == nil {
			drills = make([][]sqlinfo.Drill, len(res.Statements))
		}
		for _, d := range st.Drills {
			typ, err := s.srv.catalog.ColumnType(ctx, s.id.Database, d.Schema, d.Table, d.Column)
			if err != nil {
				return nil, "", err
			}
			if d.Type = drillTypes[typ]; d.Type == "" {
				return nil, fmt.Sprintf("drill-down on %s.%s (type oid %d) is not supported; role %s may not filter it on a literal (rule: drill-down decodes tokens of int, uuid and text columns)",
					d.Table, d.Column, typ, role.Name), nil
			}
			if ks == nil {
				if ks, err = s.srv.keyset(ctx); err != nil {
					return nil, "", err
				}
			}
			spec := pol.Decide(role, policy.TableName{Schema: d.Schema, Table: d.Table}, d.Column).Spec
			if r, err := crypto.NewReverser(spec, ks, typ, crypto.FormatText); err == nil {
				if clear, err := r.Reverse(nil, []byte(d.Literal)); err == nil {
					v := string(clear)
					d.Clear = &v
				}
			}
			drills[i] = append(drills[i], d)
		}
	}
	return drills, "", nil
}
