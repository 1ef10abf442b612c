// Package sample generates the "Kundendaten" sample customer database
// deterministically from a seed, at any size: customers with names, emails,
// phones, addresses, birth dates, IBANs and religion; orders and payments
// referencing them; support tickets with free text; health records. Tests
// use a small one, benchmarks a million customers; policy.yaml beside this
// file classifies it.
package sample

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Schema creates the sample tables.
const Schema = `
CREATE TABLE customers (
  customer_id integer PRIMARY KEY,
  full_name   text NOT NULL,
  email       text NOT NULL UNIQUE,
  phone       text,
  street      text,
  postal_code text,
  city        text,
  birth_date  date,
  iban        text,
  religion    text,
  created_at  timestamptz NOT NULL,
  newsletter  boolean NOT NULL
);
CREATE TABLE orders (
  order_id    bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers,
  ordered_at  timestamptz NOT NULL,
  amount      numeric(12,2) NOT NULL,
  status      text NOT NULL
);
CREATE TABLE payments (
  payment_id  bigint PRIMARY KEY,
  order_id    bigint NOT NULL REFERENCES orders,
  customer_id integer NOT NULL REFERENCES customers,
  iban        text NOT NULL,
  amount      numeric(12,2) NOT NULL,
  paid_at     timestamptz NOT NULL
);
CREATE TABLE support_tickets (
  ticket_id   bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers,
  subject     text NOT NULL,
  body        text NOT NULL,
  opened_at   timestamptz NOT NULL
);
CREATE TABLE health_records (
  record_id   bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers,
  diagnosis   text NOT NULL,
  recorded_at date NOT NULL
);
`

var (
	firstNames = []string{"Anna", "Jürgen", "Lena", "Mehmet", "Sophie", "Lukas", "Zoë", "Maximilian", "Fatma", "Jonas", "Ærin", "Paul", "Mia", "Noah", "Émilie", "Ole"}
	lastNames  = []string{"Müller", "Schmidt", "Weiß", "Yılmaz", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Hoffmann", "Schäfer", "Koch", "Richter", "Klein", "Wolf", "Groß"}
	streets    = []string{"Hauptstraße", "Schillerweg", "Goethestraße", "Am Markt", "Lindenallee", "Bahnhofstraße", "Kirchgasse", "Rosenweg"}
	cities     = []string{"Berlin", "Hamburg", "München", "Köln", "Leipzig", "Dresden", "Bremen", "Freiburg im Breisgau"}
	religions  = []string{"römisch-katholisch", "evangelisch", "muslimisch", "jüdisch", "buddhistisch", "konfessionslos"}
	diagnoses  = []string{"Diabetes mellitus Typ 2", "Asthma bronchiale", "Hypertonie", "Migräne", "Depression", "Rückenschmerzen"}
	statuses   = []string{"new", "paid", "shipped", "returned"}
)

// Customer is one generated customer; its personal fields are what leak
// tests look for.
type Customer struct {
	ID                               int
	FullName, Email, Phone, Street   string
	PostalCode, City, IBAN, Religion string
	BirthDate                        time.Time
	CreatedAt                        time.Time
	Newsletter                       bool
}

// PersonalValues returns the values that must never leave the proxy in
// clear for a restricted role (names, contacts, address, IBAN, religion).
func (c Customer) PersonalValues() []string {
	return []string{c.FullName, c.Email, c.Phone, c.Street, c.IBAN, c.Religion}
}

// Diagnoses lists the health_records.diagnosis values the generator uses:
// special-category data that must never reach a role without a legal
// basis.
func Diagnoses() []string { return append([]string(nil), diagnoses...) }

// Customers generates n customers from seed.
func Customers(n int, seed uint64) []Customer {
	out := make([]Customer, 0, n)
	g := newGen(seed)
	for i := 1; i <= n; i++ {
		out = append(out, g.customer(i))
	}
	return out
}

type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) customer(id int) Customer {
	first, last := g.pick(firstNames), g.pick(lastNames)
	// The id makes every personal value unique, so a leak check can tell
	// exactly which value leaked.
	c := Customer{
		ID:         id,
		FullName:   fmt.Sprintf("%s %s-%d", first, last, id),
		Email:      fmt.Sprintf("%s.%s.%d@example-mail.de", ascii(first), ascii(last), id),
		Phone:      fmt.Sprintf("+49 %03d %07d", 150+g.r.IntN(30), 1000000+id),
		Street:     fmt.Sprintf("%s %d-%d", g.pick(streets), 1+g.r.IntN(200), id),
		PostalCode: fmt.Sprintf("%05d", 10000+g.r.IntN(89999)),
		City:       g.pick(cities),
		BirthDate:  time.Date(1940+g.r.IntN(65), time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), 0, 0, 0, 0, time.UTC),
		Religion:   g.pick(religions),
		CreatedAt:  time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.IntN(3000*24)) * time.Hour),
		Newsletter: g.r.IntN(2) == 0,
	}
	// The account number is random: its last digits leave where IBANs are
	// masked, so it must not encode the customer's key.
	c.IBAN = germanIBAN(fmt.Sprintf("%08d%010d", 10000000+g.r.IntN(89999999), g.r.Int64N(10_000_000_000)))
	return c
}

// germanIBAN builds a valid DE IBAN for an 18-digit BBAN.
func germanIBAN(bban string) string {
	// Check digits: 98 - (BBAN + "DE00" as digits) mod 97; D=13, E=14.
	s := bban + "131400"
	rem := 0
	for _, ch := range s {
		rem = (rem*10 + int(ch-'0')) % 97
	}
	return fmt.Sprintf("DE%02d%s", 98-rem, bban)
}

func ascii(s string) string {
	return strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae", "ß", "ss", "ı", "i", "Æ", "Ae", "ë", "e", "É", "E").Replace(strings.ToLower(s))
}

// Write writes the schema and COPY data for n customers (and their orders,
// payments, tickets and health records) as a psql script.
func Write(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	fmt.Fprint(bw, Schema)
	customers := Customers(n, seed)
	g := newGen(seed + 1)
	fmt.Fprintln(bw, "COPY customers FROM stdin;")
	for _, c := range customers {
		fmt.Fprintf(bw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\n", c.ID, c.FullName, c.Email, c.Phone, c.Street,
			c.PostalCode, c.City, c.BirthDate.Format("2006-01-02"), c.IBAN, c.Religion, c.CreatedAt.Format(time.RFC3339), c.Newsletter)
	}
	fmt.Fprintln(bw, `\.`)
	var orders, payments, tickets, health strings.Builder
	oid, pid, tid, hid := 0, 0, 0, 0
	for _, c := range customers {
		for k := g.r.IntN(4); k > 0; k-- {
			oid++
			amount := fmt.Sprintf("%d.%02d", 5+g.r.IntN(500), g.r.IntN(100))
			at := c.CreatedAt.Add(time.Duration(1+g.r.IntN(900*24)) * time.Hour).Format(time.RFC3339)
			fmt.Fprintf(&orders, "%d\t%d\t%s\t%s\t%s\n", oid, c.ID, at, amount, g.pick(statuses))
			if g.r.IntN(3) > 0 {
				pid++
				fmt.Fprintf(&payments, "%d\t%d\t%d\t%s\t%s\t%s\n", pid, oid, c.ID, c.IBAN, amount, at)
			}
		}
		if g.r.IntN(4) == 0 {
			tid++
			fmt.Fprintf(&tickets, "%d\t%d\tRückfrage zu Bestellung\tHallo, hier ist %s (%s). Bitte rufen Sie mich unter %s an.\t%s\n",
				tid, c.ID, c.FullName, c.Email, c.Phone, c.CreatedAt.Format(time.RFC3339))
		}
		if g.r.IntN(5) == 0 {
			hid++
			fmt.Fprintf(&health, "%d\t%d\t%s\t%s\n", hid, c.ID, g.pick(diagnoses), c.CreatedAt.Format("2006-01-02"))
		}
	}
	for _, t := range []struct {
		name string
		data *strings.Builder
	}{{"orders", &orders}, {"payments", &payments}, {"support_tickets", &tickets}, {"health_records", &health}} {
		fmt.Fprintf(bw, "COPY %s FROM stdin;\n%s\\.\n", t.name, t.data.String())
	}
	fmt.Fprintln(bw, "ANALYZE;")
	return bw.Flush()
}
