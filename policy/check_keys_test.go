package policy

import (
	"strings"
	"testing"
)

// TestCheckSchemaKeysAndLengths: policy check --db names, before any dump,
// the columns a developer's dump could not restore: outputs longer than
// the column, non-distinct transforms on unique columns, and foreign keys
// whose sides are rewritten differently.
func TestCheckSchemaKeysAndLengths(t *testing.T) {
	p, err := Parse("keys.yaml", []byte(`version: 1
token_domains:
  email: {}
  other: {}
  person: {}
columns:
  public.people:
    id:        {category: key,      transform: int,   domain: person}
    nick:      {category: identity, transform: token}
    born:      {category: identity, transform: year}
    email:     {category: contact,  transform: email, domain: email}
  public.subs:
    person_id: {category: key,      transform: int,   domain: person}
    email:     {category: contact,  transform: email, domain: other}
  public.notes:
    person_id: {category: key,      transform: int,   domain: person}
roles:
  dev:
    match: {users: ["dev_*"]}
    actions: {identity: tokenize, contact: tokenize, key: tokenize}
    unclassified: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	const varchar, bigint, integer, date = 1043, 20, 23, 1082
	people := TableName{"public", "people"}
	tables := []DBTable{
		{Name: people, Columns: []DBColumn{
			{Name: "id", TypeOID: bigint, TypeName: "bigint", UniqueIn: []string{"people_pkey"}},
			{Name: "nick", TypeOID: varchar, TypeName: "character varying(12)", MaxLen: 12},
			{Name: "born", TypeOID: date, TypeName: "date", UniqueIn: []string{"people_born_key"}},
			{Name: "email", TypeOID: varchar, TypeName: "character varying(50)", MaxLen: 50, UniqueIn: []string{"people_email_key"}},
		}},
		{Name: TableName{"public", "subs"}, Columns: []DBColumn{
			{Name: "person_id", TypeOID: bigint, TypeName: "bigint"},
			{Name: "email", TypeOID: varchar, TypeName: "character varying(50)", MaxLen: 50},
		}, ForeignKeys: []DBForeignKey{
			{Name: "subs_person_fkey", Columns: []string{"person_id"}, RefTable: people, RefColumns: []string{"id"}},
			{Name: "subs_email_fkey", Columns: []string{"email"}, RefTable: people, RefColumns: []string{"email"}},
		}},
		{Name: TableName{"public", "notes"}, Columns: []DBColumn{
			{Name: "person_id", TypeOID: integer, TypeName: "integer"},
		}, ForeignKeys: []DBForeignKey{
			{Name: "notes_person_fkey", Columns: []string{"person_id"}, RefTable: people, RefColumns: []string{"id"}},
		}},
	}
	var errs []string
	for _, f := range p.CheckSchema(tables) {
		if f.Severity == SeverityError {
			errs = append(errs, f.String())
		}
	}
	text := strings.Join(errs, "\n")
	for _, want := range []string{
		"public.people.nick: transform token does not apply to type character varying(12)",
		"public.people.born: role dev: tokenize (year, its own domain) [identity] makes distinct values equal, and the column is in unique index people_born_key",
		"public.subs.email: role dev: foreign key subs_email_fkey references public.people.email",
		"public.notes.person_id: role dev: foreign key notes_person_fkey references public.people.id",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	if strings.Contains(text, "subs_person_fkey") || strings.Contains(text, "people.email: role") || len(errs) != 4 {
		t.Errorf("want exactly the four problems, got\n%s", text)
	}
}
