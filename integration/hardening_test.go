package integration

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestTransformsNeverReturnTheirInput runs values a transform cannot
// change through the proxy: digit strings too short for FF1, card numbers
// and IBANs with wrong check digits, a smallint under int. Each leaves as
// NULL (rows, binary rows, COPY) or its column is refused, and no seeded
// value reaches the client in any form; e-mails that differ only in case
// keep distinct tokens, so a unique index on them still holds after a dump.
func TestTransformsNeverReturnTheirInput(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	seeded := []string{"4711", "4111111111111112", "DE00370400440532013000", "12345"}
	if err := shared.stack.PG.Exec(ctx, dbKunden, dropRelations("hardening_t"),
		"CREATE TABLE hardening_t (id int PRIMARY KEY, pin text, card text, iban text, code smallint, email text UNIQUE)",
		`INSERT INTO hardening_t VALUES
		 (1, '4711', '4111111111111112', 'DE00370400440532013000', 12345, 'Anna.Schmidt@example.com'),
		 (2, '30 12 77 41 05', '4539578763621486', 'DE89370400440532013000', 7, 'anna.schmidt@example.com')`,
		"GRANT SELECT ON hardening_t TO dev_max"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropAfter(t, "hardening_t") })
	file := samplePolicyWith(t, `  public.hardening_t:
    pin: {category: contact, transform: digits}
    card: {category: financial, transform: card}
    iban: {category: financial, transform: iban}
    code: {category: key, transform: int, domain: customer}
    email: {category: contact, transform: email}
`)
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userDev, samplePass, dbKunden))
	s := &secrets{values: seeded}

	got := rawRows(t, c, "SELECT id, pin, card, iban, email FROM hardening_t ORDER BY id")
	s.check(t, "text rows", got, "")
	rows := lines(got)
	if len(rows) != 2 {
		t.Fatalf("rows: %q", rows)
	}
	if f := strings.Split(rows[0], "|"); f[1] != "NULL" || f[2] != "NULL" || f[3] != "NULL" {
		t.Errorf("values the transforms cannot change left as %q, want NULL", rows[0])
	}
	f1, f2 := strings.Split(rows[0], "|"), strings.Split(rows[1], "|")
	if f2[1] == "NULL" || f2[2] == "NULL" || f2[3] == "NULL" || f1[4] == f2[4] || !strings.HasSuffix(f1[4], ".invalid") {
		t.Errorf("transformable values or distinct e-mails: %q / %q", rows[0], rows[1])
	}

	// Binary results and COPY withhold the same values.
	var bin bytes.Buffer
	brows, err := c.Query(ctx, "SELECT pin, card, iban FROM hardening_t WHERE id = 1", pgx.QueryResultFormats{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	for brows.Next() {
		for _, raw := range brows.RawValues() {
			if raw != nil {
				t.Errorf("binary row: withheld value sent as %q", raw)
			}
			bin.Write(raw)
		}
	}
	if err := brows.Err(); err != nil {
		t.Fatal(err)
	}
	s.check(t, "binary rows", bin.String(), "")
	var copied bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &copied, "COPY hardening_t (id, pin, card, iban, email) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	s.check(t, "COPY", copied.String(), "")
	if !strings.Contains("\n"+copied.String(), "\n1\t\\N\t\\N\t\\N\t") {
		t.Errorf("COPY rows (row 1 withheld): %q", copied.String())
	}

	// int on smallint is below FF1's minimum domain: the column is
	// withheld, never sent.
	codes := rawRows(t, c, "SELECT code FROM hardening_t ORDER BY id")
	s.check(t, "smallint under int", codes, "")
	if codes != "NULL\nNULL\n" {
		t.Errorf("smallint under int left as %q, want NULL", codes)
	}
}
