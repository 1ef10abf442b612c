package policy

import (
	"os"
	"testing"
)

// FuzzParse feeds any bytes to the policy loader: it must never panic,
// and a policy it accepts never lets a special-category column leave in
// clear to a role without a legal basis, nor transforms it.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../configs/sample/policy.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\ncolumns:\n  public.t:\n    a: {category: special}\nroles:\n  r:\n    match: {users: [u]}\n    actions: {special: block}\n"))
	f.Add([]byte("version: 1\nroles: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, r := range p.Roles {
			_ = r.Restricted()
			for _, tbl := range p.Tables() {
				for _, c := range p.Columns(tbl) {
					d := p.Decide(r, tbl, c.Name)
					if d.Category != CategorySpecial {
						continue
					}
					switch {
					case d.Action == Allow && r.LegalBasis == "":
						t.Fatalf("role %s gets special column %s.%s in clear without a legal basis", r.Name, tbl, c.Name)
					case d.Action == Tokenize || d.Action == Mask:
						t.Fatalf("role %s gets special column %s.%s transformed (%s): it must never leave", r.Name, tbl, c.Name, d.Action)
					}
				}
			}
		}
	})
}
