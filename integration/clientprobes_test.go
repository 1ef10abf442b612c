package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/configs/sample"
)

// The client probes (pyclients_test.go, odbc_test.go, node_test.go) run a
// script of a client library through the proxy as the restricted BI user.
// Each script prints one line per result: a label, a tab, the rows as a
// JSON array of arrays of strings (null for NULL). Every script runs the
// same four probes under the same labels:
//
//	tokens   SELECT customer_id, full_name, email, city, religion FROM customers
//	join     SELECT c.customer_id, count(*) AS n FROM orders o JOIN customers c
//	         ON c.customer_id = o.customer_id GROUP BY c.customer_id
//	refused  SELECT customer_id FROM customers WHERE religion = 'x': one row,
//	         the SQLSTATE the client saw and the error's message
//	after    SELECT count(*) FROM customers on the same connection
//
// and the paths particular to its library under labels of its own.

// probeRows is what a client script printed: label → rows, each value a
// string or nil for NULL.
type probeRows map[string][][]*string

// cleanClientEnv is the environment of a client script: nothing of the
// machine's user (no ~/.pgpass, ~/.odbc.ini, PG* variables) but PATH.
func cleanClientEnv(t *testing.T, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "PYTHONIOENCODING=utf-8"}, extra...)
}

// runClientProbe runs name with args (a client script, with a clean
// environment) and parses what it printed. Everything the client wrote,
// to stdout and to stderr, goes through the leak checks before the test
// looks at it or shows it; a failing script fails the test with hint
// (which says what installs the client).
func runClientProbe(t *testing.T, client, hint string, customers []sample.Customer, name string, args ...string) probeRows {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = cleanClientEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	// In clear, and (the attack corpus's check) in the other forms a
	// value could take: case-changed, reversed, hex, base64, digests.
	secrets := sampleSecrets(customers)
	for what, text := range map[string]string{"stdout": out.String(), "stderr": errb.String()} {
		assertNoLeak(t, client+" "+what, text, customers)
		secrets.check(t, client+" "+what, text, "")
	}
	if t.Failed() {
		t.FailNow() // what leaked is not shown
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: timed out (a hang?)\nstderr:\n%s\nstdout:\n%s", client, errb.String(), out.String())
	}
	if err != nil {
		t.Fatalf("%s: %v (%s)\nstderr:\n%s\nstdout:\n%s", client, err, hint, errb.String(), out.String())
	}
	if errb.Len() > 0 {
		t.Logf("%s stderr:\n%s", client, errb.String())
	}
	got := probeRows{}
	var decoded strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		label, rows, ok := strings.Cut(line, "\t")
		var v [][]*string
		if !ok || json.Unmarshal([]byte(rows), &v) != nil {
			t.Fatalf("%s printed %q", client, line)
		}
		if _, dup := got[label]; dup {
			t.Fatalf("%s printed %s twice", client, label)
		}
		got[label] = v
		for _, r := range v {
			for _, c := range r {
				if c != nil {
					decoded.WriteString(*c + "\n")
				}
			}
		}
	}
	// The values as the client had them, whatever escaping its JSON used.
	assertNoLeak(t, client+" values", decoded.String(), customers)
	secrets.check(t, client+" values", decoded.String(), "")
	if t.Failed() {
		t.FailNow()
	}
	return got
}

// probeValue is a printed value for messages: NULL or the string.
func probeValue(v *string) string {
	if v == nil {
		return "NULL"
	}
	return *v
}

// rowStrings is rows with NULL spelled NULL.
func rowStrings(rows [][]*string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		for _, c := range r {
			out[i] = append(out[i], probeValue(c))
		}
	}
	return out
}

// probeReference is what the client probes must agree with: the rows of
// the tokens and join probes as pgx receives them through the same proxy
// (same keys, so the same tokens), and the counts the database itself
// holds.
type probeReference struct {
	customers map[string][]string // customer_id token → full_name, email, city tokens/values
	joinN     map[string]string   // customer_id token → number of orders
	// From the database directly: customers with orders, and orders.
	withOrders, orders int
	cities             map[string]int // city → customers there (the sample's clear values)
}

func referenceFor(t *testing.T, p *runningProxy, customers []sample.Customer) probeReference {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := probeReference{customers: map[string][]string{}, joinN: map[string]string{}, cities: map[string]int{}}
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	read := func(sql string) [][]string {
		res := c.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatalf("reference %s: %v", sql, res.Err)
		}
		var out [][]string
		for _, r := range res.Rows {
			var row []string
			for _, v := range r {
				row = append(row, string(v))
			}
			out = append(out, row)
		}
		return out
	}
	for _, r := range read("SELECT customer_id, full_name, email, city FROM customers") {
		ref.customers[r[0]] = r[1:]
	}
	for _, r := range read("SELECT c.customer_id, count(*) AS n FROM orders o JOIN customers c ON c.customer_id = o.customer_id GROUP BY c.customer_id") {
		ref.joinN[r[0]] = r[1]
	}
	if len(ref.customers) != len(customers) || len(ref.joinN) == 0 {
		t.Fatalf("reference through pgx: %d customers, %d with orders", len(ref.customers), len(ref.joinN))
	}
	d := connect(t, directDSN(userCare, samplePass, dbKunden)) // not through the proxy
	if err := d.QueryRow(ctx, "SELECT count(DISTINCT customer_id), count(*) FROM orders").Scan(&ref.withOrders, &ref.orders); err != nil {
		t.Fatal(err)
	}
	for _, cu := range customers {
		ref.cities[cu.City]++
	}
	return ref
}

// checkTokenRows checks rows of customer_id, full_name, email, city[,
// religion] against the reference: every customer once, the key as an
// integer token, name and e-mail as tk1_ tokens, the city in clear, the
// religion (when there) NULL.
func checkTokenRows(t *testing.T, what string, rows [][]*string, ref probeReference) {
	t.Helper()
	if len(rows) != len(ref.customers) {
		t.Errorf("%s: %d rows, want %d: %q", what, len(rows), len(ref.customers), rowStrings(rows))
		return
	}
	seen := map[string]bool{}
	clearIDs := 0
	for _, r := range rows {
		if len(r) < 4 {
			t.Errorf("%s: row %q, want customer_id, full_name, email, city…", what, rowStrings([][]*string{r}))
			return
		}
		id := probeValue(r[0])
		if n, err := strconv.Atoi(id); err != nil {
			t.Errorf("%s: customer_id %q is not an integer", what, id)
		} else if n >= 1 && n <= len(ref.customers) {
			clearIDs++
		}
		if seen[id] {
			t.Errorf("%s: customer_id %s twice", what, id)
		}
		seen[id] = true
		for i, col := range []string{"full_name", "email"} {
			if v := probeValue(r[1+i]); !strings.HasPrefix(v, "tk1_") {
				t.Errorf("%s: %s %q is not a tk1_ token", what, col, v)
			}
		}
		want, ok := ref.customers[id]
		if !ok {
			t.Errorf("%s: customer_id %s is not one pgx gets through the proxy", what, id)
		} else if have := []string{probeValue(r[1]), probeValue(r[2]), probeValue(r[3])}; !slices.Equal(have, want) {
			t.Errorf("%s: customer %s is %q, pgx gets %q", what, id, have, want)
		}
		if len(r) > 4 && r[4] != nil {
			t.Errorf("%s: religion %q, want NULL (blocked)", what, *r[4])
		}
	}
	// The keys are tokens: not the sample's own 1…n (a few may meet by
	// chance, not all).
	if clearIDs == len(rows) {
		t.Errorf("%s: every customer_id is in 1…%d: the keys came back in clear", what, len(rows))
	}
}

// checkCommonProbes checks the four probes every client runs.
func checkCommonProbes(t *testing.T, client string, got probeRows, ref probeReference) {
	t.Helper()
	for _, label := range []string{"tokens", "join", "refused", "after"} {
		if _, ok := got[label]; !ok {
			t.Fatalf("%s printed no %s result: %q", client, label, probeLabels(got))
		}
	}
	checkTokenRows(t, client+" tokens", got["tokens"], ref)
	checkJoinRows(t, client+" join", got["join"], ref)
	checkRefused(t, client+" refused", got["refused"])
	if a := rowStrings(got["after"]); len(a) != 1 || len(a[0]) != 1 || a[0][0] != strconv.Itoa(len(ref.customers)) {
		t.Errorf("%s: the connection after the refusal returned %q, want [[%d]]", client, a, len(ref.customers))
	}
}

// checkJoinRows checks rows of customer_id, count of the orders ⋈
// customers join: one per customer with orders, the counts pgx gets and
// the database holds, each key one of the customers' tokens.
func checkJoinRows(t *testing.T, what string, rows [][]*string, ref probeReference) {
	t.Helper()
	if len(rows) == 0 {
		t.Errorf("%s: no rows: the join on the token domain customer found nothing", what)
		return
	}
	if len(rows) != ref.withOrders {
		t.Errorf("%s: %d rows, want %d (customers with orders)", what, len(rows), ref.withOrders)
	}
	total := 0
	for _, r := range rows {
		if len(r) != 2 {
			t.Errorf("%s: row %q, want customer_id, count", what, rowStrings([][]*string{r}))
			return
		}
		id, n := probeValue(r[0]), probeValue(r[1])
		if _, ok := ref.customers[id]; !ok {
			t.Errorf("%s: customer_id %s is none of the customers' tokens", what, id)
		}
		if want := ref.joinN[id]; n != want {
			t.Errorf("%s: customer %s has %s orders, pgx gets %q", what, id, n, want)
		}
		k, err := strconv.Atoi(n)
		if err != nil {
			t.Errorf("%s: count %q", what, n)
		}
		total += k
	}
	if total != ref.orders {
		t.Errorf("%s: %d orders in all, the database holds %d", what, total, ref.orders)
	}
}

// checkRefused checks a refusal row: SQLSTATE 42501 and the proxy's
// message naming the blocked column.
func checkRefused(t *testing.T, what string, rows [][]*string) {
	t.Helper()
	r := rowStrings(rows)
	if len(r) != 1 || len(r[0]) != 2 {
		t.Errorf("%s: %q, want one row of SQLSTATE and message", what, r)
		return
	}
	if r[0][0] != "42501" {
		t.Errorf("%s: SQLSTATE %q (%s), want 42501", what, r[0][0], r[0][1])
	}
	if !strings.Contains(r[0][1], "pgpseudo") || !strings.Contains(r[0][1], "religion") {
		t.Errorf("%s: message %q is not the proxy's refusal naming religion", what, r[0][1])
	}
}

// probeLabels lists the labels a client printed.
func probeLabels(m probeRows) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sawStatement reports whether the server ran, for the BI user since
// from, a statement for which match is true; it fails the test listing
// what the server ran when not.
func sawStatement(t *testing.T, what string, from int64, match func(loggedStatement) bool) {
	t.Helper()
	var all []string
	for _, s := range serverStatements(t, from, userBI) {
		if match(s) {
			return
		}
		all = append(all, fmt.Sprintf("[%s] %s", s.Portal, s.Text))
	}
	t.Errorf("%s: the server never ran such a statement; it ran:\n%s", what, strings.Join(all, "\n"))
}
