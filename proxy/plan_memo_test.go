package proxy

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/plancheck"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// TestPlanKey: the memo's key changes with everything a plan depends on.
func TestPlanKey(t *testing.T) {
	fields := []pgproto3.FieldDescription{{Name: []byte("email"), TableOID: 16384, TableAttributeNumber: 3, DataTypeOID: 25, TypeModifier: -1}}
	clean := resultVerdict{checked: true, outputs: []plancheck.Output{{}}}
	base := planKey(fields, nil, clean, 1, 1, 1, 0, "ISO, MDY")
	if planKey(fields, nil, clean, 1, 1, 1, 0, "ISO, MDY") != base {
		t.Fatal("the same inputs give different keys")
	}
	renamed := []pgproto3.FieldDescription{fields[0]}
	renamed[0].Name = []byte("mail")
	other := []pgproto3.FieldDescription{fields[0]}
	other[0].TableAttributeNumber = 4
	typed := []pgproto3.FieldDescription{fields[0]}
	typed[0].DataTypeOID = 1043
	for name, k := range map[string]string{
		"policy generation":  planKey(fields, nil, clean, 2, 1, 1, 0, "ISO, MDY"),
		"catalog generation": planKey(fields, nil, clean, 1, 2, 1, 0, "ISO, MDY"),
		"key generation":     planKey(fields, nil, clean, 1, 1, 2, 0, "ISO, MDY"),
		"shadow generation":  planKey(fields, nil, clean, 1, 1, 1, 1, "ISO, MDY"),
		"formats":            planKey(fields, []int16{1}, clean, 1, 1, 1, 0, "ISO, MDY"),
		"proof":              planKey(fields, nil, resultVerdict{}, 1, 1, 1, 0, "ISO, MDY"),
		"name":               planKey(renamed, nil, clean, 1, 1, 1, 0, "ISO, MDY"),
		"origin":             planKey(other, nil, clean, 1, 1, 1, 0, "ISO, MDY"),
		"type":               planKey(typed, nil, clean, 1, 1, 1, 0, "ISO, MDY"),
		"date style":         planKey(fields, nil, clean, 1, 1, 1, 0, "German, DMY"),
		"view source":        planKey(fields, nil, resultVerdict{checked: true, outputs: []plancheck.Output{{Bare: true, Sources: []plancheck.Source{{Table: policy.TableName{Schema: "public", Table: "customers"}, Column: "email"}}}}}, 1, 1, 1, 0, "ISO, MDY"),
		"lift":               planKey(fields, nil, resultVerdict{checked: true, outputs: []plancheck.Output{{}}, lifts: []sqlinfo.Lift{{Op: sqlinfo.PostOp{Kind: 's', From: 1, For: 3}}}}, 1, 1, 1, 0, "ISO, MDY"),
		"columns":            planKey(append(fields, fields[0]), nil, clean, 1, 1, 1, 0, "ISO, MDY"),
	} {
		if k == base {
			t.Errorf("a different %s gives the same key", name)
		}
	}
}
