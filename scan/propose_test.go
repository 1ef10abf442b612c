package scan

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/policy"
)

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func text(name string) Column {
	return Column{Name: name, TypeName: "text", BaseOID: oidText, Category: 'S'}
}
func integer(name string, oid uint32) Column {
	return Column{Name: name, TypeName: "bigint", BaseOID: oid, Category: 'N'}
}

// testSchema is a small shop: customers, orders referencing them, a
// table two hops away, a misleadingly named e-mail column, an enum.
func testSchema() (*Schema, map[policy.TableName]tableSample) {
	tn := func(t string) policy.TableName { return policy.TableName{Schema: "public", Table: t} }
	s := &Schema{
		Tables: []Table{
			{Name: tn("customers"), Kind: 'r', PrimaryKey: []string{"customer_id"}, Columns: []Column{
				integer("customer_id", 20), text("full_name"), text("email"),
				{Name: "date_of_birth", TypeName: "date", BaseOID: oidDate, Category: 'D'},
				{Name: "created_at", TypeName: "timestamp with time zone", BaseOID: oidTimestampTZ, Category: 'D'},
				{Name: "postcode", TypeName: "plz_de", BaseOID: oidBPChar, Category: 'S'},
				text("religion"),
			}},
			{Name: tn("orders"), Kind: 'r', PrimaryKey: []string{"order_id"}, Columns: []Column{
				integer("order_id", 20), integer("customer_id", 20),
				{Name: "status", TypeName: "order_status", BaseOID: 90000, Category: 'E', Enum: true},
				{Name: "amount", TypeName: "numeric(12,2)", BaseOID: 1700, Category: 'N'},
			}},
			{Name: tn("shipments"), Kind: 'r', PrimaryKey: []string{"shipment_id"}, Columns: []Column{
				integer("shipment_id", 23), integer("order_id", 20), text("recipient_name"), text("carrier"),
			}},
			{Name: tn("accounts"), Kind: 'r', PrimaryKey: []string{"account_id"}, Columns: []Column{
				integer("account_id", 23), integer("customer_id", 20), text("login_ref"),
			}},
			{Name: tn("newsletter"), Kind: 'r', PrimaryKey: []string{"email"}, Columns: []Column{text("email")}},
		},
		ForeignKeys: []ForeignKey{
			{From: tn("orders"), FromCols: []string{"customer_id"}, To: tn("customers"), ToCols: []string{"customer_id"}},
			{From: tn("shipments"), FromCols: []string{"order_id"}, To: tn("orders"), ToCols: []string{"order_id"}},
			{From: tn("accounts"), FromCols: []string{"customer_id"}, To: tn("customers"), ToCols: []string{"customer_id"}},
			{From: tn("newsletter"), FromCols: []string{"email"}, To: tn("customers"), ToCols: []string{"email"}},
		},
	}
	samples := map[policy.TableName]tableSample{}
	add := func(table string, col Column, values ...string) {
		ts, ok := samples[tn(table)]
		if !ok {
			ts = tableSample{stats: map[string]*stats{}, method: methodLimit}
		}
		st := newStats()
		for _, v := range values {
			st.add(col, v, validators(), testNow)
		}
		ts.stats[col.Name] = st
		samples[tn(table)] = ts
	}
	var emails, logins, births, created, names, religions []string
	for i := range 20 {
		emails = append(emails, fmt.Sprintf("kunde.%d@example.de", i))
		logins = append(logins, fmt.Sprintf("k%d@login.example.org", i))
		births = append(births, fmt.Sprintf("%d-03-04", 1950+2*i))
		created = append(created, fmt.Sprintf("2021-%02d-04 10:00:00+00", 1+i%12))
		names = append(names, fmt.Sprintf("Anna Müller-%d", i))
		religions = append(religions, []string{"evangelisch", "römisch-katholisch", "muslimisch"}[i%3])
	}
	add("customers", text("full_name"), names...)
	add("customers", text("email"), emails...)
	add("customers", s.Tables[0].Columns[3], births...)
	add("customers", s.Tables[0].Columns[4], created...)
	add("customers", text("religion"), religions...)
	add("accounts", text("login_ref"), logins...)
	add("shipments", text("carrier"), "DHL", "DPD", "GLS", "Hermes")
	return s, samples
}

func TestPropose(t *testing.T) {
	s, samples := testSchema()
	props := propose(s, samples)
	got := map[string]Proposal{}
	for _, p := range props {
		got[p.Table.Table+"."+p.Column] = p
		for _, r := range p.Reasons {
			if strings.Contains(r, "@") || strings.Contains(r, "Müller") || strings.Contains(r, "evangelisch") {
				t.Errorf("%s.%s: a reason quotes a value: %s", p.Table, p.Column, r)
			}
		}
	}
	tests := []struct {
		column, category, transform, domain string
		confidence                          Confidence
	}{
		{"customers.customer_id", "key", "int", "customer", High},
		{"orders.customer_id", "key", "int", "customer", High},
		{"accounts.customer_id", "key", "int", "customer", High},
		{"customers.full_name", "identity", "token", "", Medium},
		{"customers.email", "contact", "email", "email", High},
		{"newsletter.email", "contact", "email", "email", High},
		{"customers.date_of_birth", "identity", "year", "", High},
		{"customers.postcode", "location", "postcode", "", Medium},
		{"customers.religion", "special", "", "", High},
		{"shipments.recipient_name", "identity", "token", "", Medium},
		{"shipments.shipment_id", "key", "int", "shipment", Low},
		{"accounts.login_ref", "contact", "email", "", Medium},
		{"accounts.account_id", "key", "int", "account", Low},
	}
	for _, tt := range tests {
		p, ok := got[tt.column]
		if !ok {
			t.Errorf("%s: not proposed", tt.column)
			continue
		}
		if p.Category != tt.category || p.Transform != tt.transform || p.Domain != tt.domain || p.Confidence != tt.confidence {
			t.Errorf("%s: %s/%s/%s/%s (%s), want %s/%s/%s/%s", tt.column, p.Category, p.Transform, p.Domain, p.Confidence,
				strings.Join(p.Reasons, "; "), tt.category, tt.transform, tt.domain, tt.confidence)
		}
	}
	for _, c := range []string{"customers.created_at", "orders.order_id", "orders.status", "orders.amount", "shipments.order_id", "shipments.carrier"} {
		if p, ok := got[c]; ok {
			t.Errorf("%s: false positive %s (%s)", c, p.Category, strings.Join(p.Reasons, "; "))
		}
	}
	if r := got["accounts.login_ref"].Reasons; len(r) != 1 || !strings.Contains(r[0], "e-mail address in 100% of 20 sampled") {
		t.Errorf("login_ref reasons %q: want the e-mail validator and its rate", r)
	}
}

const testRoles = `roles:
  bi_analyst:
    match: {users: ["bi_*"]}
    actions: {identity: tokenize, contact: tokenize, location: tokenize, financial: mask, key: tokenize, online: tokenize, special: block}
    unclassified: allow
`

// TestProposalLoads checks that the YAML proposal is a valid policy once
// roles are added, and that merging it into a roles-only file is too.
func TestProposalLoads(t *testing.T) {
	s, samples := testSchema()
	r := &Result{Database: "shop", Tables: len(s.Tables), Proposals: propose(s, samples)}
	var out bytes.Buffer
	if err := Write(&out, r, FormatYAML); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# scan: high: ") {
		t.Errorf("no confidence comments in:\n%s", out.String())
	}
	if _, err := policy.Parse("proposal.yaml", []byte("version: 1\n"+out.String()+testRoles)); err != nil {
		t.Fatalf("proposal does not load: %v\n%s", err, out.String())
	}
	merged, added, err := Merge([]byte("# roles only\nversion: 1\n"+testRoles), r)
	if err != nil {
		t.Fatal(err)
	}
	if added != len(r.Proposals) {
		t.Errorf("added %d entries, want %d", added, len(r.Proposals))
	}
	p, err := policy.Parse("merged.yaml", merged)
	if err != nil {
		t.Fatalf("merged policy does not load: %v\n%s", err, merged)
	}
	customers := policy.TableName{Schema: "public", Table: "customers"}
	orders := policy.TableName{Schema: "public", Table: "orders"}
	if p.TokenDomain(customers, "customer_id") != p.TokenDomain(orders, "customer_id") {
		t.Errorf("customer_id of customers and orders are in different domains")
	}
	for _, f := range []string{FormatTable, FormatJSON} {
		out.Reset()
		if err := Write(&out, r, f); err != nil || !strings.Contains(out.String(), "login_ref") {
			t.Errorf("format %s: %v\n%s", f, err, out.String())
		}
	}
}

// TestMerge checks that existing entries win and keep their comments, a
// "*" table gets nothing added, and a group member's existing domain is
// the one new members join.
func TestMerge(t *testing.T) {
	existing := `# The shop's policy.
version: 1
token_domains:
  cust: {reversible: true} # drill-down for support
columns:
  public.customers:
    # reviewed by the DPO
    customer_id: {category: key, transform: int, domain: cust}
    email: {category: identity, transform: token}
  public.accounts:
    "*": {category: special}
` + testRoles
	s, samples := testSchema()
	r := &Result{Database: "shop", Proposals: propose(s, samples)}
	merged, _, err := Merge([]byte(existing), r)
	if err != nil {
		t.Fatal(err)
	}
	m := string(merged)
	for _, want := range []string{
		"# The shop's policy.", "# reviewed by the DPO", "# drill-down for support",
		"customer_id: {category: key, transform: int, domain: cust}",
		"email: {category: identity, transform: token}",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("merged policy lost %q:\n%s", want, m)
		}
	}
	p, err := policy.Parse("merged.yaml", merged)
	if err != nil {
		t.Fatalf("merged policy does not load: %v\n%s", err, m)
	}
	orders := policy.TableName{Schema: "public", Table: "orders"}
	customers := policy.TableName{Schema: "public", Table: "customers"}
	if got := p.TokenDomain(orders, "customer_id"); got != "cust" {
		t.Errorf("orders.customer_id domain %q, want the existing cust", got)
	}
	if c := p.Column(customers, "email"); c == nil || c.Category != "identity" {
		t.Errorf("existing customers.email changed: %+v", c)
	}
	if c := p.Column(policy.TableName{Schema: "public", Table: "accounts"}, "login_ref"); c == nil || c.Category != "special" {
		t.Errorf("accounts.login_ref: %+v, want the existing wildcard", c)
	}
	if strings.Contains(m, "login_ref") {
		t.Errorf("a column was added under a \"*\" table:\n%s", m)
	}
	again, added, err := Merge(merged, r)
	if err != nil || added != 0 || !bytes.Equal(again, merged) {
		t.Errorf("merging twice: added %d (err %v), want a fixed point", added, err)
	}
}
