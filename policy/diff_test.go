package policy

import (
	"os"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	orig, err := os.ReadFile("../configs/sample/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old, err := Parse("old.yaml", orig)
	if err != nil {
		t.Fatal(err)
	}
	if ch := Diff(old, old, nil); len(ch) != 0 {
		t.Fatalf("a policy differs from itself: %v", ch)
	}
	edited := string(orig)
	for _, e := range [][2]string{
		{"actions: {identity: tokenize, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}\n    unclassified: allow",
			"actions: {identity: block, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}\n    unclassified: block"},
		{"    email:       {category: contact,   transform: email,  domain: email}", "    email:       {category: contact,   transform: token,  domain: email}"},
		{"    phone:       {category: contact,   transform: digits, keep_prefix: 3}", "    phone:       {category: contact,   transform: digits, keep_prefix: 2}"},
		{"    match: {users: [\"dev_*\"]}", "    match: {users: [\"dev_*\", \"intern_*\"]}"},
	} {
		if !strings.Contains(edited, e[0]) {
			t.Fatalf("edit does not apply: %q", e[0])
		}
		edited = strings.Replace(edited, e[0], e[1], 1)
	}
	edited += "  auditor:\n    match: {users: [\"audit_*\"]}\n    actions: {\"*\": mask, special: block}\n"
	nw, err := Parse("new.yaml", []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	customers := TableName{"public", "customers"}
	db := []DBTable{{Name: customers, Columns: []DBColumn{{Name: "full_name"}, {Name: "city"}}}}
	var got []string
	for _, c := range Diff(old, nw, db) {
		got = append(got, c.String())
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{
		`role bi_analyst: public.customers.full_name: tokenize (token, its own domain) [identity] → block [identity]`,
		`role bi_analyst: unclassified: allow → block`,
		`role bi_analyst: public.customers.city: allow [unclassified] → block [unclassified]`,
		`role developer: public.customers.email: tokenize (email, domain email) [contact] → tokenize (token, domain email) [contact]`,
		`role developer: public.customers.phone: tokenize (digits, its own domain) [contact] → tokenize (digits, its own domain) [contact] with other transform options`,
		`role developer: match: users dev_* → users dev_*, intern_*`,
		`role auditor: role: absent → added (users audit_*)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	// care_team allows identity: the column edits do not concern it.
	if strings.Contains(text, "role care_team: public.customers.full_name") {
		t.Errorf("care_team's unchanged decision reported:\n%s", text)
	}
}
