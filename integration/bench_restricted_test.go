package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var latencyRe = regexp.MustCompile(`latency average = ([\d.]+) ms`)

// pgbenchRun is one pgbench -S run's throughput and mean latency.
type pgbenchRun struct {
	tps, latencyMs float64
}

// runPgbench runs pgbench -S (with extra arguments, such as -C) and reads
// its throughput and mean latency.
func runPgbench(b *testing.B, port, user, password, db, mode string, clients int, secs int, extra ...string) pgbenchRun {
	b.Helper()
	args := append([]string{"-S", "-M", mode, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)), "-T", strconv.Itoa(secs)}, extra...)
	out, errOut, err := runTool(b, 2*time.Minute, "pgbench", libpqEnv(port, user, password, db), args...)
	if err != nil {
		b.Fatalf("pgbench -M %s on %s: %v\n%s", mode, port, err, errOut)
	}
	m, l := tpsRe.FindStringSubmatch(out), latencyRe.FindStringSubmatch(out)
	if m == nil || l == nil {
		b.Fatalf("no tps or latency in pgbench output:\n%s", out)
	}
	var r pgbenchRun
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	r.latencyMs, _ = strconv.ParseFloat(l[1], 64)
	return r
}

// BenchmarkRestrictedSelect measures pgbench -S as a restricted role
// (bi_jane, policy role bi_analyst: every statement is analysed, and
// checked on the server's plan on a verdict-cache miss), in one run,
// against a direct connection, PgBouncer, and the baseline build (the
// commit before the server-resolved check; PGPSEUDO_BASELINE_BIN, built by
// make bench):
//
//   - -M simple: the key is a literal in the text, so every statement is a
//     verdict-cache miss (parse, analysis and the server-side check);
//   - -M extended: the same text in an unnamed Parse each time, a cache hit;
//   - -M prepared: parsed once per connection.
//
// With one client the latency difference to the baseline is the cost of
// the server-side check on a miss and on a hit; with eight clients the
// throughput ratio.
func BenchmarkRestrictedSelect(b *testing.B) {
	kunden(b)
	baseline := os.Getenv("PGPSEUDO_BASELINE_BIN")
	if baseline == "" {
		b.Fatal("PGPSEUDO_BASELINE_BIN is not set: run `make bench`, which builds the baseline")
	}
	ctx := context.Background()
	db := fmt.Sprintf("rbench_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, userAlice)); err != nil {
		b.Fatal(err)
	}
	directPort := strconv.Itoa(shared.stack.PG.Port)
	if _, errOut, err := runTool(b, 10*time.Minute, "pgbench", libpqEnv(directPort, userAlice, passAlice, db), "-i", "-s", "5", "-q"); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, errOut)
	}
	if err := shared.stack.PG.Exec(ctx, db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+userBI); err != nil {
		b.Fatal(err)
	}
	base := fmt.Sprintf("policy: %s\nkeys: {provider: file, allow_insecure_file_keys: true, file: {path: %s}}\n", samplePolicy, sampleKeys)
	current := startBinaryProxy(b, base)
	before := startProxyBinary(b, baseline, base)
	bouncerPort := startPgBouncer(b, userBI)
	// Baseline and pgpseudo run twice each, interleaved (A B B A), so that
	// drift on the shared cores falls on both alike; their means compare.
	mean := func(a, b pgbenchRun) pgbenchRun {
		return pgbenchRun{tps: (a.tps + b.tps) / 2, latencyMs: (a.latencyMs + b.latencyMs) / 2}
	}
	pair := func(mode string, clients, secs int) (base, now pgbenchRun) {
		b1 := runPgbench(b, before.port, userBI, samplePass, db, mode, clients, secs)
		n1 := runPgbench(b, current.port, userBI, samplePass, db, mode, clients, secs)
		n2 := runPgbench(b, current.port, userBI, samplePass, db, mode, clients, secs)
		b2 := runPgbench(b, before.port, userBI, samplePass, db, mode, clients, secs)
		return mean(b1, b2), mean(n1, n2)
	}
	for i := 0; i < b.N; i++ {
		for _, mode := range []string{"simple", "extended", "prepared"} {
			direct := runPgbench(b, directPort, userBI, samplePass, db, mode, 8, 10)
			bouncer := runPgbench(b, bouncerPort, userBI, samplePass, db, mode, 8, 10)
			base, cur := pair(mode, 8, 10)
			base1, cur1 := pair(mode, 1, 8)
			costUs := 1000 * (cur1.latencyMs - base1.latencyMs)
			for name, v := range map[string]float64{"direct-tps": direct.tps, "pgbouncer-tps": bouncer.tps, "baseline-tps": base.tps,
				"pgpseudo-tps": cur.tps, "vs-baseline-tps-ratio": cur.tps / base.tps, "check-cost-us": costUs,
				"vs-baseline-latency-ratio": cur1.latencyMs / base1.latencyMs} {
				b.ReportMetric(v, mode+"-"+name)
			}
			b.Logf("pgbench -S -M %s as bi_analyst, 8 clients: direct %.0f, pgbouncer %.0f, baseline %.0f, pgpseudo %.0f tps (%.2f of baseline, %.2f of direct); 1 client: baseline %.3f ms, pgpseudo %.3f ms (%+.0f µs, %.3f×)",
				mode, direct.tps, bouncer.tps, base.tps, cur.tps, cur.tps/base.tps, cur.tps/direct.tps,
				base1.latencyMs, cur1.latencyMs, costUs, cur1.latencyMs/base1.latencyMs)
		}
	}
}
