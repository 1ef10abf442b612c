package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/policy"
)

// scanColumn is one column of `pgpseudo scan --format json`.
type scanColumn struct {
	Schema     string   `json:"schema"`
	Table      string   `json:"table"`
	Column     string   `json:"column"`
	Category   string   `json:"category"`
	Transform  string   `json:"transform"`
	Domain     string   `json:"domain"`
	Confidence string   `json:"confidence"`
	Reasons    []string `json:"reasons"`
}

// TestScan is the acceptance test of `pgpseudo scan`, on the Kundendaten
// and the shop sample databases through the real binary: every column
// the sample policies classify is found with its category (special stays
// special, every column of a "*: special" table too), the obviously
// non-personal columns are not, the shop's misleadingly named e-mail
// column is found by its values, no seeded personal value appears in any
// output of any format, and the proposal merged into a policy that has
// only the sample's roles leaves `policy check --db` without a warning
// about an unclassified personal column.
func TestScan(t *testing.T) {
	customers := kunden(t)
	kundenValues := sample.Diagnoses()
	for _, c := range customers {
		kundenValues = append(kundenValues, c.PersonalValues()...)
	}
	shopValues := shop(t)
	bin := shared.binary(t)
	dir := t.TempDir()
	// The auth user reads catalogs only; scanning samples values, so it
	// connects as a sample user with SELECT on the tables.
	pw := filepath.Join(dir, "bi.pw")
	if err := os.WriteFile(pw, []byte(samplePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configWith := func(name, policyFile string) string {
		path := filepath.Join(dir, "config-"+name+".yaml")
		if err := os.WriteFile(path, []byte(binaryConfig(freeAddr(t), "policy: "+policyFile+"\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, db := range []struct {
		name, policy string
		values       []string
		// Obviously non-personal columns: amounts, dates of orders and
		// payments, statuses (text or enum), quantities, SKUs, products.
		notPersonal []string
	}{
		{dbKunden, samplePolicy, kundenValues, []string{
			"customers.created_at", "customers.newsletter", "orders.order_id", "orders.ordered_at", "orders.amount", "orders.status",
			"payments.order_id", "payments.amount", "payments.paid_at", "support_tickets.subject", "support_tickets.opened_at",
		}},
		{dbShop, shopPolicy, shopValues, []string{
			"customers.created_at", "accounts.created_at", "products.product_id", "products.sku", "products.product_name", "products.price",
			"products.currency", "orders.order_id", "orders.ordered_at", "orders.status", "orders.total", "orders.currency",
			"order_items.order_id", "order_items.line_no", "order_items.product_id", "order_items.quantity", "order_items.unit_price",
			"shipments.order_id", "shipments.carrier", "shipments.tracking_no", "shipments.shipped_at",
			"newsletter_subscriptions.subscribed_at", "newsletter_subscriptions.double_opt_in",
			"loyalty_survey.answered_at", "loyalty_survey.score", "addresses.is_default",
		}},
	} {
		t.Run(db.name, func(t *testing.T) {
			c := &cli{t: t, bin: bin, home: t.TempDir()}
			var outputs strings.Builder
			cf := configWith(db.name, db.policy)
			scanArgs := []string{"scan", "--config", cf, "--database", db.name, "--user", userBI, "--password-file", pw}
			res := c.run("", "", append(scanArgs, "--format", "json")...)
			c.expect(res, 0)
			outputs.WriteString(res.stdout + res.stderr)
			var got struct {
				Columns []scanColumn `json:"columns"`
				Sampled int          `json:"sampled_tables"`
			}
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("scan --format json: %v\n%s", err, res.stdout)
			}
			if got.Sampled == 0 {
				t.Fatalf("no table was sampled:\n%s", res.stderr)
			}
			found := map[string]scanColumn{}
			for _, col := range got.Columns {
				found[col.Table+"."+col.Column] = col
			}

			// Every classified column is found with its category.
			pol, err := policy.Load(db.policy)
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range pol.Tables() {
				for _, pc := range pol.Columns(tn) {
					names := []string{pc.Name}
					if pc.Name == "*" {
						names = wildcardColumns(t, db.name, pol, tn)
					}
					for _, n := range names {
						sc, ok := found[tn.Table+"."+n]
						switch {
						case !ok:
							t.Errorf("%s.%s (%s in the sample policy): not found", tn, n, pc.Category)
						case sc.Category != pc.Category:
							t.Errorf("%s.%s: scan says %s (%s), the sample policy %s", tn, n, sc.Category, strings.Join(sc.Reasons, "; "), pc.Category)
						}
					}
				}
			}
			for _, n := range db.notPersonal {
				if sc, ok := found[n]; ok {
					t.Errorf("%s: false positive %s (%s)", n, sc.Category, strings.Join(sc.Reasons, "; "))
				}
			}
			if db.name == dbShop {
				lr := found["accounts.login_ref"]
				reasons := strings.Join(lr.Reasons, "; ")
				if lr.Category != "contact" || lr.Transform != "email" || !strings.Contains(reasons, "values: e-mail address in 100%") || strings.Contains(reasons, "name matches") {
					t.Errorf("accounts.login_ref: %+v, want contact/email found by its values", lr)
				}
				if a, b := found["customers.email"].Domain, found["newsletter_subscriptions.email"].Domain; a == "" || a != b {
					t.Errorf("customers.email (domain %q) and newsletter_subscriptions.email (domain %q) do not share a domain", a, b)
				}
			}

			for _, format := range []string{"yaml", "table"} {
				res := c.run("", "", append(scanArgs, "--format", format)...)
				c.expect(res, 0)
				outputs.WriteString(res.stdout + res.stderr)
			}

			// A policy with the sample's roles only, then the proposal
			// merged into it.
			rolesOnly := filepath.Join(dir, db.name+"-roles.yaml")
			if err := os.WriteFile(rolesOnly, rolesOnlyPolicy(t, db.policy), 0o600); err != nil {
				t.Fatal(err)
			}
			before := c.run("", "", "policy", "check", "--config", configWith(db.name+"-roles", rolesOnly), "--db", "--database", db.name)
			c.expect(before, 0)
			if !strings.Contains(before.stdout, "warning: public.customers.email: unclassified, scan would classify as contact (name matches e-mail") {
				t.Errorf("policy check --db without columns does not warn about customers.email:\n%s", before.stdout)
			}
			merged := filepath.Join(dir, db.name+"-merged.yaml")
			res = c.run("", "", append(scanArgs, "--merge", rolesOnly, "--out", merged)...)
			c.expect(res, 0)
			outputs.WriteString(res.stdout + res.stderr + readFile(t, merged))
			if !strings.Contains(readFile(t, merged), "# roles only") {
				t.Errorf("the merged policy lost the file's comment")
			}
			after := c.run("", "", "policy", "check", "--config", configWith(db.name+"-merged", merged), "--db", "--database", db.name)
			c.expect(after, 0)
			outputs.WriteString(after.stdout + after.stderr)
			if strings.Contains(after.stdout, "scan would classify") || strings.Contains(after.stdout, "error:") {
				t.Errorf("policy check --db of the merged policy:\n%s", after.stdout)
			}
			// The sample policy itself checks clean against its database
			// (the shop's domain-typed postcodes included).
			own := c.run("", "", "policy", "check", "--config", cf, "--db", "--database", db.name)
			c.expect(own, 0)

			text := outputs.String()
			for _, v := range db.values {
				if strings.Contains(text, v) {
					t.Fatalf("a scan output contains the seeded personal value %q", v)
				}
			}
		})
	}
}

// wildcardColumns lists the columns of tn that the policy's "*" entry
// covers (those it does not name).
func wildcardColumns(t *testing.T, database string, pol *policy.Policy, tn policy.TableName) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := shared.stack.PG.SuperConnect(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, tn.Schema, tn.Table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if c := pol.Column(tn, n); c != nil && c.Name == "*" {
			out = append(out, n)
		}
	}
	return out
}

// rolesOnlyPolicy is a sample policy file without its columns and token
// domains: what a team starts from before classifying anything.
func rolesOnlyPolicy(t *testing.T, path string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readFile(t, path)), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	var kept []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k != "columns" && k != "token_domains" {
			kept = append(kept, root.Content[i], root.Content[i+1])
		}
	}
	root.Content = kept
	root.HeadComment = "roles only, derived from " + filepath.Base(path)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScanLargeTable samples a table of 100,000 rows with TABLESAMPLE
// (reading a few percent of its pages, at most --sample rows), warns
// about a table the user may not read (classified by names only), and
// with --sample 0 reads no values: the name-only column is still found,
// the one found by its values is not.
func TestScanLargeTable(t *testing.T) {
	kunden(t) // the sample users
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, "postgres", "CREATE DATABASE scanbig"); err != nil {
		t.Fatal(err)
	}
	if err := shared.stack.PG.Exec(ctx, "scanbig",
		"CREATE TABLE people (person_id bigint PRIMARY KEY, contact text NOT NULL, email text)",
		"INSERT INTO people SELECT i, 'user' || i || '@example.org', 'mail' || i || '@example.org' FROM generate_series(1, 100000) i",
		"ANALYZE people",
		"GRANT SELECT ON people TO "+userBI,
		// Not granted: classified by name only, with a warning.
		"CREATE TABLE secrets (secret_id int PRIMARY KEY, phone text)",
	); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "bi.pw")
	cf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(pw, []byte(samplePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, []byte(binaryConfig(freeAddr(t), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, bin: shared.binary(t), home: t.TempDir()}
	var stderr string
	scanJSON := func(sample string) map[string]scanColumn {
		res := c.run("", "", "scan", "--config", cf, "--database", "scanbig", "--user", userBI, "--password-file", pw, "--sample", sample, "--format", "json")
		c.expect(res, 0)
		if strings.Contains(res.stdout+res.stderr, "@example.org") {
			t.Fatalf("a sampled value in the output:\n%s\n%s", res.stdout, res.stderr)
		}
		var got struct {
			Columns []scanColumn `json:"columns"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatal(err)
		}
		out := map[string]scanColumn{}
		for _, col := range got.Columns {
			out[col.Column] = col
		}
		stderr = res.stderr
		return out
	}
	got := scanJSON("1000")
	if !strings.Contains(stderr, "warning: public.secrets: not sampled, classified by names and keys only: permission denied for table secrets (SQLSTATE 42501)") {
		t.Errorf("no warning about the table it may not read:\n%s", stderr)
	}
	if got["phone"].Category != "contact" {
		t.Errorf("secrets.phone: %+v, want contact by its name", got["phone"])
	}
	reasons := strings.Join(got["contact"].Reasons, "; ")
	if got["contact"].Category != "contact" || !strings.Contains(reasons, "TABLESAMPLE SYSTEM") {
		t.Errorf("contact: %+v, want contact found by a TABLESAMPLE", got["contact"])
	}
	if !strings.Contains(reasons, "of 1000 sampled") {
		t.Errorf("contact: %q, want the row cap of 1000 reached", reasons)
	}
	got = scanJSON("0")
	if _, ok := got["contact"]; ok {
		t.Errorf("--sample 0 found contact, which only its values tell")
	}
	if got["email"].Category != "contact" {
		t.Errorf("--sample 0: email %+v, want contact by its name", got["email"])
	}
}
