package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// TestDeveloperDumpRestores: a developer's pg_dump of the shop sample
// through the proxy, in every format (-Fp, -Fc, -Fd -j 4, -Ft, --inserts,
// --column-inserts, -n, --data-only into the schema, a -t selection),
// restores into an empty database
// with --exit-on-error (ON_ERROR_STOP for plain SQL): every constraint is
// present and valid, every table has the source's row count, and no
// seeded personal value is anywhere in the dump files.
func TestDeveloperDumpRestores(t *testing.T) {
	personal := globalPersonal(t, shop(t))
	ctx := context.Background()
	// pg_dump reads each sequence's state.
	if err := shared.stack.PG.Exec(ctx, dbShop, "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO "+userDev); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, policyConfig(t, shopPolicy))
	dev := libpqEnv(p.port, userDev, samplePass, dbShop)
	superArgs := func(db string) []string {
		return []string{"-h", shared.stack.PG.SockDir, "-p", fmt.Sprint(shared.stack.PG.Port), "-U", "postgres", "-d", db}
	}
	counts := func(db string) string {
		out, errOut, err := runTool(t, time.Minute, "psql", nil, append(superArgs(db), "-X", "-At", "-c",
			`SELECT string_agg(format('%s=%s', c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]), ',' ORDER BY c.relname)
			 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'`)...)
		if err != nil {
			t.Fatalf("row counts of %s: %v\n%s", db, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	constraints := func(db string) string {
		out, errOut, err := runTool(t, time.Minute, "psql", nil, append(superArgs(db), "-X", "-At", "-c",
			`SELECT string_agg(format('%s:%s:%s:%s', conrelid::regclass, conname, contype, convalidated), ',' ORDER BY conrelid::regclass::text, conname)
			 FROM pg_constraint WHERE connamespace = 'public'::regnamespace`)...)
		if err != nil {
			t.Fatalf("constraints of %s: %v\n%s", db, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	wantCounts, wantCons := counts(dbShop), constraints(dbShop)
	formats := []struct {
		name string
		args []string
		// schemaFirst: the target gets the schema directly first (a
		// --data-only dump); tables: the -t selection restored.
		schemaFirst bool
		tables      []string
		restore     []string // more pg_restore options
	}{
		{name: "plain", args: []string{"-Fp"}},
		{name: "custom", args: []string{"-Fc"}},
		{name: "directory-j4", args: []string{"-Fd", "-j", "4"}},
		{name: "tar", args: []string{"-Ft"}},
		{name: "inserts", args: []string{"-Fp", "--inserts"}},
		{name: "column-inserts", args: []string{"-Fp", "--column-inserts"}},
		// -n names the schema, so the archive creates it: the target's
		// own public schema makes way.
		{name: "schema-n", args: []string{"-Fc", "-n", "public"}, restore: []string{"--clean", "--if-exists"}},
		{name: "data-only", args: []string{"-Fc", "--data-only"}, schemaFirst: true},
		{name: "tables-t", args: []string{"-Fc", "-t", "public.customers", "-t", "public.newsletter_subscriptions"}, tables: []string{"customers", "newsletter_subscriptions"}},
	}
	only := func(list string, tables []string) string {
		if tables == nil {
			return list
		}
		var keep []string
		for _, e := range strings.Split(list, ",") {
			for _, tb := range tables {
				if strings.HasPrefix(e, tb+"=") || strings.HasPrefix(e, tb+":") {
					keep = append(keep, e)
				}
			}
		}
		return strings.Join(keep, ",")
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "shop.dump")
			if _, errOut, err := runTool(t, 5*time.Minute, "pg_dump", dev, append(f.args, "--no-owner", "--no-privileges", "-f", out)...); err != nil {
				t.Fatalf("pg_dump %v through the proxy: %v\n%s", f.args, err, errOut)
			}
			assertFilesFree(t, out, personal)
			target := fmt.Sprintf("devdump_%s_%d", strings.ReplaceAll(f.name, "-", "_"), time.Now().UnixNano())
			if err := shared.stack.PG.Exec(ctx, "postgres", "CREATE DATABASE "+target); err != nil {
				t.Fatal(err)
			}
			if f.schemaFirst {
				schema, errOut, err := runTool(t, time.Minute, "pg_dump", nil, append(superArgs(dbShop), "--schema-only", "--no-owner", "--no-privileges")...)
				if err != nil {
					t.Fatalf("schema of the source: %v\n%s", err, errOut)
				}
				schemaFile := filepath.Join(t.TempDir(), "schema.sql")
				if err := os.WriteFile(schemaFile, []byte(schema), 0o600); err != nil {
					t.Fatal(err)
				}
				if _, errOut, err := runTool(t, time.Minute, "psql", nil, append(superArgs(target), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", schemaFile)...); err != nil {
					t.Fatalf("schema into the target: %v\n%s", err, errOut)
				}
			}
			if f.args[0] == "-Fp" {
				_, errOut, err := runTool(t, 5*time.Minute, "psql", nil, append(superArgs(target), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", out)...)
				if err != nil {
					t.Fatalf("psql restore: %v\n%s", err, errOut)
				}
			} else {
				args := append(superArgs(target), "--exit-on-error", "--no-owner", "-j", "4", out)
				if f.args[0] == "-Ft" || f.schemaFirst {
					// Tar archives restore serially; data into existing
					// foreign keys goes in the dump's dependency order.
					args = append(superArgs(target), "--exit-on-error", "--no-owner", out)
				}
				args = append(f.restore, args...)
				if _, errOut, err := runTool(t, 5*time.Minute, "pg_restore", nil, args...); err != nil {
					t.Fatalf("pg_restore: %v\n%s", err, errOut)
				}
			}
			if got, want := counts(target), only(wantCounts, f.tables); got != want {
				t.Fatalf("row counts: %s, want %s", got, want)
			}
			if got, want := constraints(target), only(wantCons, f.tables); got != want {
				t.Fatalf("constraints: %s, want %s", got, want)
			}
			checkRestoredFakes(t, target)
		})
	}
}

// globalPersonal is the seeded values a dump must not hold anywhere,
// without those made only of the fakes' dictionary words: a fake given
// name may be another customer's real one ("Sophie"), which is no leak;
// checkRestoredFakes checks those columns row by row instead.
func globalPersonal(t *testing.T, personal []string) []string {
	t.Helper()
	words, err := crypto.FakeWords("de")
	if err != nil {
		t.Fatal(err)
	}
	dict := map[string]bool{}
	for _, w := range words {
		dict[strings.ToLower(w)] = true
	}
	var out []string
	for _, v := range personal {
		common := true
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '-' || r >= '0' && r <= '9' }) {
			common = common && dict[strings.ToLower(part)]
		}
		if !common {
			out = append(out, v)
		}
	}
	if len(out) < len(personal)/2 {
		t.Fatalf("only %d of %d seeded values are checked globally", len(out), len(personal))
	}
	return out
}

// checkRestoredFakes links each restored customer to its source row
// through the reversible customer domain (the test holds the keyset) and
// checks that no personal field kept its value, that names come from the
// fakes' dictionaries and that phone numbers are valid German numbers.
func checkRestoredFakes(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	kp, err := crypto.NewProvider(ctx, proxyKeys(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	ks, err := kp.Keyset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := crypto.NewReverser(crypto.Spec{Kind: crypto.KindInt, Domain: "customer"}, ks, crypto.OIDInt8, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	words, err := crypto.FakeWords("de")
	if err != nil {
		t.Fatal(err)
	}
	dict := map[string]bool{}
	for _, w := range words {
		dict[w] = true
	}
	source := map[string]sample.ShopCustomer{}
	for _, c := range sample.ShopCustomers(shopSize, shopSeed) {
		source[fmt.Sprint(c.ID)] = c
	}
	out, errOut, err := runTool(t, time.Minute, "psql", nil, "-h", shared.stack.PG.SockDir, "-p", fmt.Sprint(shared.stack.PG.Port), "-U", "postgres", "-d", db,
		"-X", "-At", "-F", "\t", "-c", "SELECT customer_id, first_name, last_name, email, coalesce(phone, '') FROM customers")
	if err != nil {
		t.Fatalf("read restored customers: %v\n%s", err, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != shopSize {
		t.Fatalf("%d restored customers, want %d", len(rows), shopSize)
	}
	for _, line := range rows {
		f := strings.Split(line, "\t")
		id, err := rev.Reverse(nil, []byte(f[0]))
		if err != nil {
			t.Fatalf("customer_id %s does not detokenize: %v", f[0], err)
		}
		src, ok := source[string(id)]
		if !ok {
			t.Fatalf("customer_id %s is customer %s, not a seeded one", f[0], id)
		}
		if f[1] == src.FirstName || f[2] == src.LastName || f[3] == src.Email || f[4] != "" && f[4] == src.Phone {
			t.Fatalf("customer %s kept a personal value: %q", id, line)
		}
		if !dict[f[1]] || !dict[f[2]] {
			t.Fatalf("customer %s: %q %q are not from the fakes' dictionaries", id, f[1], f[2])
		}
		if f[4] != "" {
			num, err := phonenumbers.Parse(f[4], "DE")
			if err != nil || !phonenumbers.IsValidNumber(num) {
				t.Fatalf("customer %s: phone %q is not a valid German number (%v)", id, f[4], err)
			}
		}
		if !strings.HasSuffix(f[3], ".com") && !strings.HasSuffix(f[3], ".org") && !strings.HasSuffix(f[3], ".net") || strings.Count(f[3], "@") != 1 {
			t.Fatalf("customer %s: %q is not a name-style address at a reserved domain", id, f[3])
		}
	}
}

// assertFilesFree fails when any seeded personal value appears in the file
// or directory at path (in clear, lower or upper case).
func assertFilesFree(t *testing.T, path string, personal []string) {
	t.Helper()
	err := filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		lower, upper := strings.ToLower(text), strings.ToUpper(text)
		for _, v := range personal {
			if len(v) < 4 {
				continue
			}
			if strings.Contains(text, v) || strings.Contains(lower, strings.ToLower(v)) || strings.Contains(upper, strings.ToUpper(v)) {
				t.Fatalf("%s holds the seeded personal value %q", p, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeveloperSubsetDump: a role's subset keeps the customers its
// condition names and, through foreign keys, only the rows that reference
// them (two hops: shipments → orders → customers; newsletter
// subscriptions by e-mail); tables nothing filtered references (products)
// keep every row. The dump restores with every foreign key valid, and each
// table has exactly the rows the subset implies.
func TestDeveloperSubsetDump(t *testing.T) {
	personal := globalPersonal(t, shop(t))
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbShop, "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO "+userDev); err != nil {
		t.Fatal(err)
	}
	superArgs := func(db string) []string {
		return []string{"-h", shared.stack.PG.SockDir, "-p", fmt.Sprint(shared.stack.PG.Port), "-U", "postgres", "-d", db, "-X", "-At"}
	}
	query := func(db, q string) string {
		out, errOut, err := runTool(t, time.Minute, "psql", nil, append(superArgs(db), "-c", q)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", q, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	cut := query(dbShop, "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY created_at) FROM customers")
	cond := fmt.Sprintf("created_at < TIMESTAMPTZ '%s'", cut)
	orig, err := os.ReadFile(shopPolicy)
	if err != nil {
		t.Fatal(err)
	}
	pol := strings.Replace(string(orig), "  developer:\n    match: {users: [\"dev_*\"]}\n",
		"  developer:\n    match: {users: [\"dev_*\"]}\n    subset: {public.customers: \""+cond+"\"}\n", 1)
	if pol == string(orig) {
		t.Fatal("test edit did not apply")
	}
	polFile := filepath.Join(t.TempDir(), "shop-subset.yaml")
	if err := os.WriteFile(polFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, policyConfig(t, polFile))
	kept := "(SELECT customer_id FROM customers WHERE " + cond + ")"
	want := map[string]string{
		"customers":                "SELECT count(*) FROM customers WHERE " + cond,
		"orders":                   "SELECT count(*) FROM orders WHERE customer_id IN " + kept,
		"order_items":              "SELECT count(*) FROM order_items WHERE order_id IN (SELECT order_id FROM orders WHERE customer_id IN " + kept + ")",
		"shipments":                "SELECT count(*) FROM shipments WHERE order_id IN (SELECT order_id FROM orders WHERE customer_id IN " + kept + ")",
		"newsletter_subscriptions": "SELECT count(*) FROM newsletter_subscriptions WHERE email IN (SELECT email FROM customers WHERE " + cond + ")",
		"products":                 "SELECT count(*) FROM products",
	}
	wantN := map[string]string{}
	for table, q := range want {
		wantN[table] = query(dbShop, q)
	}
	if wantN["customers"] == query(dbShop, "SELECT count(*) FROM customers") || wantN["customers"] == "0" {
		t.Fatalf("the subset keeps %s customers: no subset to test", wantN["customers"])
	}
	for _, format := range [][]string{{"-Fc"}, {"-Fp", "--inserts"}} {
		t.Run(format[len(format)-1], func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "subset.dump")
			if _, errOut, err := runTool(t, 5*time.Minute, "pg_dump", libpqEnv(p.port, userDev, samplePass, dbShop), append(format, "--no-owner", "--no-privileges", "-f", archive)...); err != nil {
				t.Fatalf("pg_dump %v through the proxy: %v\n%s", format, err, errOut)
			}
			assertFilesFree(t, archive, personal)
			target := fmt.Sprintf("subset_%d", time.Now().UnixNano())
			if err := shared.stack.PG.Exec(ctx, "postgres", "CREATE DATABASE "+target); err != nil {
				t.Fatal(err)
			}
			conn := []string{"-h", shared.stack.PG.SockDir, "-p", fmt.Sprint(shared.stack.PG.Port), "-U", "postgres", "-d", target}
			tool, args := "pg_restore", append(conn, "--exit-on-error", "--no-owner", archive)
			if format[0] == "-Fp" {
				// --inserts reads each table through a cursor, which the
				// subset filters as it does pg_dump's COPY.
				tool, args = "psql", append(conn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", archive)
			}
			if _, errOut, err := runTool(t, 5*time.Minute, tool, nil, args...); err != nil {
				t.Fatalf("restore of the subset (a dangling key fails its constraint): %v\n%s", err, errOut)
			}
			for table, n := range wantN {
				if got := query(target, "SELECT count(*) FROM "+table); got != n {
					t.Errorf("%s: %s rows restored, the subset implies %s", table, got, n)
				}
			}
			if n := query(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"); n != "0" {
				t.Fatalf("%s foreign keys not valid", n)
			}
		})
	}
}

// TestPolicyCheckReportsDumpBreakers: policy check --db on the shop
// database names, before anyone dumps, each column a developer's dump
// would not restore with: a token too long for char(5), a transform that
// merges values on a unique column, and a foreign key (newsletter
// e-mails) whose sides would be rewritten differently.
func TestPolicyCheckReportsDumpBreakers(t *testing.T) {
	shop(t)
	orig, err := os.ReadFile(shopPolicy)
	if err != nil {
		t.Fatal(err)
	}
	pol := string(orig)
	for _, e := range [][2]string{
		{"    postcode:    {category: location, transform: postcode}", "    postcode:    {category: location, transform: token}"},
		{"    email:         {category: contact,  transform: email,  domain: email, style: name}", "    email:         {category: contact,  transform: token,  domain: email}"},
	} {
		if !strings.Contains(pol, e[0]) {
			t.Fatalf("test edit does not apply: %q", e[0])
		}
		pol = strings.Replace(pol, e[0], e[1], 1)
	}
	pol = strings.Replace(pol, "  public.orders:\n", "  public.products:\n    sku: {category: identity, transform: postcode}\n  public.orders:\n", 1)
	dir := t.TempDir()
	polFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "pgpseudo.yaml")
	if err := os.WriteFile(cf, []byte(binaryConfig(freeAddr(t), "policy: "+polFile+"\npolicy_database: "+dbShop+"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(shared.binary(t), "policy", "check", "--config", cf, "--db").CombinedOutput()
	if err == nil {
		t.Fatalf("policy check --db passed:\n%s", out)
	}
	for _, want := range []string{
		"error: public.addresses.postcode: transform token does not apply to type plz_de", "a token needs at least 19 characters",
		"error: public.products.sku: role bi_analyst: tokenize (postcode",
		"makes distinct values equal, and the column is in unique index products_sku_key",
		"error: public.newsletter_subscriptions.email: role bi_analyst: foreign key newsletter_subscriptions_email_fkey references public.customers.email",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("policy check --db lacks %q:\n%s", want, out)
		}
	}
}
