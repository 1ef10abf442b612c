package integration

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

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
	rows := lines(got)
	if len(rows) != 2 {
		t.Fatalf("rows: %q", rows)
	}
	// The seeded values are row 1's; row 2's transformed digits are
	// random and could hold a short one by chance (a four-digit PIN turns
	// up in 27 random digits about once in 200 runs), so only row 1's
	// output is searched.
	s.check(t, "text rows", rows[0], "")
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
	var row1 string
	for _, l := range lines(copied.String()) {
		if strings.HasPrefix(l, "1\t") {
			row1 = l
		}
	}
	s.check(t, "COPY", row1, "")
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

// TestShiftThroughProxy: dates shifted through the proxy never come back as
// the seeded day or time of day, in text, binary or COPY; two date columns
// of one domain shift one day alike (their outputs cannot be intersected),
// and a timestamptz leaves at midnight UTC.
func TestShiftThroughProxy(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden, dropRelations("shift_t"),
		"CREATE TABLE shift_t (id int PRIMARY KEY, born date, born_copy date, seen timestamptz)",
		"INSERT INTO shift_t VALUES (1, '1990-05-17', '1990-05-17', '2024-03-01 13:45:12.25+00')",
		"GRANT SELECT ON shift_t TO dev_max"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropAfter(t, "shift_t") })
	file := samplePolicyWith(t, `  public.shift_t:
    born: {category: identity, transform: shift, days: 30, domain: person}
    born_copy: {category: identity, transform: shift, days: 30, domain: person}
    seen: {category: identity, transform: shift, days: 30, domain: person}
`)
	pol, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(pol), "\ntoken_domains:\n", "\ntoken_domains:\n  person: {}\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userDev, samplePass, dbKunden))
	if _, err := c.Exec(ctx, "SET timezone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	s := &secrets{values: []string{"1990-05-17", "13:45:12", "2024-03-01"}}
	got := rawRows(t, c, "SELECT born, born_copy, seen FROM shift_t")
	s.check(t, "text rows", got, "")
	f := strings.Split(strings.TrimSuffix(got, "\n"), "|")
	if len(f) != 3 || f[0] != f[1] || !strings.HasSuffix(f[2], " 00:00:00+00") {
		t.Fatalf("shifted row %q: the same day in one domain must shift alike, timestamptz to midnight UTC", got)
	}
	var copied bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &copied, "COPY shift_t (born, seen) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	s.check(t, "COPY", copied.String(), "")
	var born time.Time
	if err := c.QueryRow(ctx, "SELECT born FROM shift_t", pgx.QueryResultFormats{1}).Scan(&born); err != nil {
		t.Fatal(err)
	}
	if d := born.Format("2006-01-02"); d == "1990-05-17" || d != f[0] {
		t.Errorf("binary date %s, text %s (seeded 1990-05-17)", d, f[0])
	}
}
