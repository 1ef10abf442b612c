package policy

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

func loadExample(t *testing.T) *Policy {
	t.Helper()
	p, err := Load("testdata/issue-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoleFor(t *testing.T) {
	p := loadExample(t)
	tests := []struct {
		user     string
		memberOf []string
		want     string
	}{
		{"metabase", nil, "bi_analyst"},
		{"bi_jane", nil, "bi_analyst"},
		{"someone", []string{"bi_readers"}, "bi_analyst"},
		{"dev_max", nil, "developer"},
		{"dr_who", []string{"clinicians"}, "care_team"},
		// First in file order wins.
		{"dev_x", []string{"clinicians"}, "developer"},
		{"bi_y", []string{"clinicians"}, "bi_analyst"},
	}
	for _, tt := range tests {
		r, err := p.RoleFor(tt.user, tt.memberOf)
		if err != nil || r.Name != tt.want {
			t.Errorf("RoleFor(%q, %v) = %v, %v; want %s", tt.user, tt.memberOf, r, err, tt.want)
		}
	}
	if _, err := p.RoleFor("mallory", nil); !errors.Is(err, ErrNoRole) || !strings.Contains(err.Error(), `"mallory"`) {
		t.Errorf("unmatched user: %v", err)
	}
	withDefault, err := Parse("p.yaml", []byte("version: 1\nroles:\n  default:\n    unclassified: null\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := withDefault.RoleFor("mallory", nil); err != nil || r.Name != "default" {
		t.Errorf("default role: %v, %v", r, err)
	}
}

func TestDecide(t *testing.T) {
	p := loadExample(t)
	role := func(n string) *Role {
		for _, r := range p.Roles {
			if r.Name == n {
				return r
			}
		}
		t.Fatalf("no role %s", n)
		return nil
	}
	customers := TableName{"public", "customers"}
	health := TableName{"public", "health_records"}
	tests := []struct {
		role   string
		table  TableName
		column string
		want   Action
		kind   crypto.Kind
	}{
		{"bi_analyst", customers, "full_name", Tokenize, crypto.KindToken},
		{"bi_analyst", customers, "iban", Mask, crypto.KindMask},
		{"bi_analyst", customers, "religion", Block, ""},
		{"bi_analyst", customers, "created_at", Allow, ""},
		{"bi_analyst", health, "diagnosis", Block, ""},
		{"developer", customers, "created_at", Null, ""},
		{"developer", customers, "iban", Tokenize, crypto.KindIBAN},
		{"care_team", customers, "religion", Allow, ""},
		{"care_team", health, "anything", Allow, ""},
		{"care_team", customers, "iban", Mask, crypto.KindMask},
		// care_team says nothing about unclassified columns: blocked.
		{"care_team", customers, "created_at", Block, ""},
		// Case matters: "Customers" is another table.
		{"developer", TableName{"public", "Customers"}, "full_name", Null, ""},
	}
	for _, tt := range tests {
		d := p.Decide(role(tt.role), tt.table, tt.column)
		if d.Action != tt.want || d.Spec.Kind != tt.kind {
			t.Errorf("%s %s.%s = %s/%s, want %s/%s (%s)", tt.role, tt.table, tt.column, d.Action, d.Spec.Kind, tt.want, tt.kind, d.Rule)
		}
	}
	d := p.Decide(role("bi_analyst"), customers, "customer_id")
	if d.Spec.Domain != "customer" || !d.Spec.Reversible {
		t.Errorf("customer_id spec %+v, want domain customer, reversible", d.Spec)
	}
	if o := p.Decide(role("bi_analyst"), TableName{"public", "orders"}, "customer_id"); o.Spec != d.Spec {
		t.Errorf("same domain, different specs: %+v vs %+v", o.Spec, d.Spec)
	}
	if d := p.Decide(role("bi_analyst"), customers, "religion"); !strings.Contains(d.Rule, `"special"`) || !strings.Contains(d.Rule, "bi_analyst") {
		t.Errorf("rule %q does not name the category and role", d.Rule)
	}
	if !role("bi_analyst").Restricted() || !role("care_team").Restricted() {
		t.Error("roles with non-allow actions must be restricted")
	}
}

func TestParseErrors(t *testing.T) {
	example, _ := os.ReadFile("testdata/issue-example.yaml")
	ex := string(example)
	tests := []struct {
		name     string
		yaml     string
		wantLine int
		wantMsg  string
	}{
		{"unknown top key", ex + "colums: {}\n", 30, "unknown key"},
		{"unknown column key", strings.Replace(ex, "{category: special}\n  public.orders", "{category: special, transfrom: x}\n  public.orders", 1), 12, "unknown key"},
		{"unknown transform", strings.Replace(ex, "transform: token}", "transform: tokn}", 1), 7, `unknown transform "tokn"`},
		{"unknown category", strings.Replace(ex, "{category: special}\n  public.orders", "{category: speshul}\n  public.orders", 1), 12, `unknown category "speshul"`},
		{"unknown action", strings.Replace(ex, "financial: mask, key: tokenize, special: block}\n    unclassified: allow", "financial: hide, key: tokenize, special: block}\n    unclassified: allow", 1), 20, `unknown action "hide"`},
		{"special without legal basis", strings.Replace(ex, `    legal_basis: "Art. 9(2)(h) GDPR"`+"\n", "", 1), 28, "without a legal_basis"},
		{"role matching nobody", strings.Replace(ex, `    match: {users: ["dev_*"]}`, `    match: {}`, 1), 23, "matches nobody"},
		{"undeclared domain", strings.Replace(ex, "domain: customer}\n  public.health", "domain: client}\n  public.health", 1), 14, `token domain "client"`},
		{"tokenize without transform", strings.Replace(ex, "full_name:   {category: identity,  transform: token}", "full_name:   {category: identity}", 1), 7, "has no transform"},
		{"unqualified table", strings.Replace(ex, "public.orders:", "orders:", 1), 13, "schema-qualified"},
		{"bad option for kind", strings.Replace(ex, "transform: year}", "transform: shift, days: -3}", 1), 11, ""},
		{"version", strings.Replace(ex, "version: 1", "version: 2", 1), 1, "must be 1"},
		{"no roles", "version: 1\n", 0, "at least one role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.yaml))
			var ye *yamlconf.Error
			if !errors.As(err, &ye) {
				t.Fatalf("err = %v, want a *yamlconf.Error", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %q does not contain %q", err, tt.wantMsg)
			}
			if tt.wantLine != 0 && ye.Line != tt.wantLine {
				t.Errorf("line %d, want %d: %v", ye.Line, tt.wantLine, err)
			}
		})
	}
}

func TestParseTableName(t *testing.T) {
	tests := []struct {
		in      string
		want    TableName
		wantErr bool
	}{
		{"public.customers", TableName{"public", "customers"}, false},
		{`public."Orders"`, TableName{"public", "Orders"}, false},
		{`"my.schema"."a""b"`, TableName{"my.schema", `a"b`}, false},
		{"customers", TableName{}, true},
		{`public."open`, TableName{}, true},
		{"a.b.c", TableName{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTableName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTableName(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestCheckSchema(t *testing.T) {
	p := loadExample(t)
	text, integer, date := uint32(25), uint32(23), uint32(1082)
	tables := []DBTable{
		{Name: TableName{"public", "customers"}, Columns: []DBColumn{
			{Name: "customer_id", TypeOID: integer, TypeName: "integer"}, {Name: "full_name", TypeOID: text, TypeName: "text"}, {Name: "email", TypeOID: text, TypeName: "text"},
			{Name: "phone", TypeOID: text, TypeName: "text"}, {Name: "iban", TypeOID: text, TypeName: "text"}, {Name: "birth_date", TypeOID: integer, TypeName: "integer"}, {Name: "city", TypeOID: text, TypeName: "text"},
		}},
		{Name: TableName{"public", "health_records"}, Columns: []DBColumn{{Name: "diagnosis", TypeOID: text, TypeName: "text"}}},
		{Name: TableName{"public", "products"}, Columns: []DBColumn{{Name: "title", TypeOID: text, TypeName: "text"}, {Name: "added", TypeOID: date, TypeName: "date"}}},
	}
	var errs, infos []string
	for _, f := range p.CheckSchema(tables) {
		if f.Severity == SeverityError {
			errs = append(errs, f.String())
		} else {
			infos = append(infos, f.String())
		}
	}
	want := []string{
		`error: public.orders: the policy classifies this table but the database has no such table`,
		`error: public.customers.birth_date: transform year does not apply to type integer`,
		`error: public.customers.religion: the policy classifies this column but the table has no such column`,
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			found = found || e == w
		}
		if !found {
			t.Errorf("missing finding %q in %q", w, errs)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("errors = %q", errs)
	}
	for _, w := range []string{"public.customers.city: unclassified (text)", "public.products.title: unclassified (text)", "public.products.added: unclassified (date)"} {
		if !strings.Contains(strings.Join(infos, "\n"), w) {
			t.Errorf("unclassified %q not listed in %q", w, infos)
		}
	}
}

func TestWildcardActionsAndCustomCategories(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`version: 1
categories: [biometric_template]
columns:
  public.t:
    a: {category: biometric_template}
    b: {category: special}
    c: {category: contact, transform: token}
roles:
  dba:
    match: {users: [dba]}
    actions: {"*": allow, special: allow}
    unclassified: allow
    legal_basis: "Art. 9(2)(h) GDPR"
  ops:
    match: {users: [ops]}
    actions: {"*": allow}
    unclassified: allow
  partial:
    match: {users: [partial]}
    actions: {identity: allow, contact: allow, location: allow, online: allow, employment: allow, financial: allow, key: allow, special: allow}
    unclassified: allow
    legal_basis: "x"
`))
	if err != nil {
		t.Fatal(err)
	}
	role := func(u string) *Role { r, _ := p.RoleFor(u, nil); return r }
	tbl := TableName{"public", "t"}
	if role("dba").Restricted() || p.Decide(role("dba"), tbl, "a").Action != Allow {
		t.Error(`"*": allow with special: allow should be unrestricted`)
	}
	// "*" never reaches special data.
	if !role("ops").Restricted() || p.Decide(role("ops"), tbl, "b").Action != Block || p.Decide(role("ops"), tbl, "c").Action != Allow {
		t.Error(`"*": allow must not allow special data`)
	}
	// A custom category the role does not name is blocked and makes the
	// role restricted.
	if !role("partial").Restricted() || p.Decide(role("partial"), tbl, "a").Action != Block {
		t.Error("an unnamed custom category must be blocked and restrict the role")
	}
}

// TestTokenDomains: a column without a domain is its own, in an encoding
// no declared domain and no other column's name can produce; each column
// a wildcard covers is its own too; shift needs a declared domain.
func TestTokenDomains(t *testing.T) {
	p, err := Parse("domains.yaml", []byte(`version: 1
token_domains:
  shared: {}
columns:
  '"s.t".x':
    x: {category: identity, transform: token}
  's."t.x"':
    x: {category: identity, transform: token}
  public.people:
    "*": {category: identity, transform: token}
    email: {category: contact, transform: email, domain: shared}
roles:
  default:
    actions: {identity: tokenize, contact: tokenize}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := p.TokenDomain(TableName{"s.t", "x"}, "x")
	b := p.TokenDomain(TableName{"s", "t.x"}, "x")
	if a == b {
		t.Fatalf(`"s.t".x.x and s."t.x".x share token domain %q`, a)
	}
	first := p.Column(TableName{"public", "people"}, "first_name")
	last := p.Column(TableName{"public", "people"}, "last_name")
	if first == nil || last == nil || first.Spec.Domain == last.Spec.Domain {
		t.Fatalf("wildcard columns share a domain: %+v %+v", first, last)
	}
	if d := p.TokenDomain(TableName{"public", "people"}, "email"); d != "shared" {
		t.Fatalf("declared domain: %q", d)
	}
	// detokenize finds a wildcard column by its own domain.
	if cols := p.DomainColumns(first.Spec.Domain); len(cols) != 1 || cols[0].Spec != first.Spec || cols[0].Name != "first_name" {
		t.Fatalf("DomainColumns(%q) = %+v", first.Spec.Domain, cols)
	}
	if tn, col, ok := parseImplicitDomain(a); !ok || tn != (TableName{"s.t", "x"}) || col != "x" {
		t.Fatalf("parseImplicitDomain(%q) = %v %q %v", a, tn, col, ok)
	}
	for _, bad := range []string{"column:6:public6:people5:email", "", "-x", "a b", "x-636f6c"} {
		_, err := Parse("bad.yaml", []byte("version: 1\ntoken_domains:\n  '"+bad+"': {}\nroles:\n  default:\n    actions: {identity: allow}\n"))
		if err == nil || !strings.Contains(err.Error(), "token domain name") {
			t.Errorf("domain name %q: %v", bad, err)
		}
	}
	_, err = Parse("shift.yaml", []byte(`version: 1
columns:
  public.people:
    born: {category: identity, transform: shift, days: 30}
roles:
  default:
    actions: {identity: tokenize}
`))
	if err == nil || !strings.Contains(err.Error(), "shift needs a declared token domain") {
		t.Fatalf("shift without a domain: %v", err)
	}
}

// TestCheckSchemaTransformReasons: policy check --db says why a transform
// cannot serve a column whose type it accepts in general.
func TestCheckSchemaTransformReasons(t *testing.T) {
	p, err := Parse("visits.yaml", []byte(`version: 1
token_domains:
  patient: {}
columns:
  public.visits:
    patient_no: {category: key, transform: int, domain: patient}
    age: {category: identity, transform: round}
    fee: {category: identity, transform: round, digits: 2}
    rate: {category: identity, transform: round, bucket: "0.001"}
    price: {category: identity, transform: round, digits: 1}
roles:
  default:
    actions: {key: tokenize, identity: tokenize}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range p.CheckSchema([]DBTable{{Name: TableName{"public", "visits"},
		Columns: []DBColumn{{Name: "patient_no", TypeOID: 21, TypeName: "smallint"}, {Name: "age", TypeOID: 23, TypeName: "integer"},
			{Name: "fee", TypeOID: 1700, TypeName: "numeric(10,2)"}, {Name: "rate", TypeOID: 1700, TypeName: "numeric(8,2)"}, {Name: "price", TypeOID: 1700, TypeName: "numeric(10,2)"}}}}) {
		got = append(got, f.String())
	}
	for _, w := range []string{
		`error: public.visits.patient_no: transform int does not apply to type smallint: unsupported transformer for this type and format: int on smallint: FF1 needs a domain of at least 10^6 values and smallint has 65,536 (use round, redact or null, or widen the column)`,
		`error: public.visits.age: transform round does not apply to type integer: invalid transformer spec: round on an integer column needs a negative digits (tens, hundreds…) or a bucket of at least 2; digits 0 would return every value unchanged`,
		`error: public.visits.fee: transform round does not apply to type numeric(10,2): invalid transformer spec: round to 2 digits returns every value of a column with 2 fraction digits unchanged; use fewer digits`,
		`error: public.visits.rate: transform round does not apply to type numeric(8,2): invalid transformer spec: round bucket 0.001 divides every value of a column with 2 fraction digits, returning it unchanged; use a coarser bucket`,
	} {
		if !slices.Contains(got, w) {
			t.Errorf("missing finding %q in %q", w, got)
		}
	}
	for _, f := range got {
		if strings.Contains(f, "visits.price") {
			t.Errorf("round to 1 digit on numeric(10,2) reported: %s", f)
		}
	}
}

// TestTransformOptionsChecked: mask options are checked when the policy
// loads (not when a query first reads the column), and transform options
// given without a transform are refused.
func TestTransformOptionsChecked(t *testing.T) {
	for _, tc := range []struct{ col, want string }{
		{"{category: financial, mask: {keep_first: 30, keep_last: 30}}", "at most 32"},
		{"{category: financial, mask: {keep_first: -1}}", "must not be negative"},
		{"{category: financial, digits: 2}", "transform options given without a transform"},
		{"{category: financial, keep_time: true}", "transform options given without a transform"},
		{"{category: financial, unique: true}", "transform options given without a transform"},
		{"{category: financial, locale: en}", "transform options given without a transform"},
		{"{category: financial, transform: token, locale: en}", "opts.yaml:4: columns.public.t.c: invalid transformer spec: locale applies only to"},
		{"{category: financial, transform: first_name, locale: fr}", "locale must be de or en"},
		{"{category: financial, transform: postcode, unique: true}", "unique applies only to"},
		{"{category: financial, transform: phone, unique: true}", "unique applies only to"},
		{"{category: financial, transform: token, style: name}", "style applies only to email"},
		{"{category: financial, transform: email, style: fancy}", `email style must be "name"`},
		{"{category: financial, transform: email, style: name, keep_domain: true}", "cannot keep_domain"},
		{"{category: financial, transform: email, style: name, unique: true}", "email is always unique"},
	} {
		_, err := Parse("opts.yaml", []byte("version: 1\ncolumns:\n  public.t:\n    c: "+tc.col+"\nroles:\n  default:\n    actions: {financial: mask}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.col, err, tc.want)
		}
	}
}

// TestFakeTransformsLoad: the realistic fakes and their options load and
// reach the column's spec.
func TestFakeTransformsLoad(t *testing.T) {
	p, err := Parse("fakes.yaml", []byte(`version: 1
token_domains:
  person: {}
columns:
  public.customers:
    first_name: {category: identity, transform: first_name, domain: person}
    last_name:  {category: identity, transform: last_name, domain: person, locale: en, unique: true}
    email:      {category: contact, transform: email, style: name, locale: de}
    phone:      {category: contact, transform: phone}
    street:     {category: location, transform: street}
    postcode:   {category: location, transform: postcode}
    city:       {category: location, transform: city, locale: en}
    company:    {category: employment, transform: company, unique: true}
    full_name:  {category: identity, transform: full_name}
roles:
  default:
    actions: {identity: tokenize, contact: tokenize, location: tokenize, employment: tokenize}
`))
	if err != nil {
		t.Fatal(err)
	}
	tn := TableName{"public", "customers"}
	for col, want := range map[string]crypto.Spec{
		"last_name": {Kind: crypto.KindLastName, Domain: "person", Locale: "en", Unique: true},
		"email":     {Kind: crypto.KindEmail, Style: "name", Locale: "de"},
		"postcode":  {Kind: crypto.KindPostcode},
		"company":   {Kind: crypto.KindCompany, Unique: true},
	} {
		got := p.Column(tn, col).Spec
		if want.Domain == "" {
			want.Domain = got.Domain // the column's implicit domain
		}
		if got != want {
			t.Errorf("%s: %+v, want %+v", col, got, want)
		}
	}
}
