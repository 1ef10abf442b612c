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

func runPgbench(b *testing.B, port, user, password, db, mode string, clients int, secs int) pgbenchRun {
	b.Helper()
	out, errOut, err := runTool(b, 2*time.Minute, "pgbench", libpqEnv(port, user, password, db),
		"-S", "-M", mode, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)), "-T", strconv.Itoa(secs))
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
	base := fmt.Sprintf("policy: %s\nkeys: {provider: file, file: {path: %s}}\n", samplePolicy, sampleKeys)
	now := startBinaryProxy(b, base)
	before := startProxyBinary(b, baseline, base)
	bouncer := startPgBouncer(b, userBI)
	targets := []struct{ name, port string }{{"direct", directPort}, {"pgbouncer", bouncer}, {"baseline", before.port}, {"pgpseudo", now.port}}
	for i := 0; i < b.N; i++ {
		for _, mode := range []string{"simple", "extended", "prepared"} {
			runs := map[string]pgbenchRun{}
			for _, t := range targets {
				runs[t.name] = runPgbench(b, t.port, userBI, samplePass, db, mode, 8, 10)
				b.ReportMetric(runs[t.name].tps, mode+"-"+t.name+"-tps")
			}
			one := map[string]pgbenchRun{}
			for _, t := range targets[2:] {
				one[t.name] = runPgbench(b, t.port, userBI, samplePass, db, mode, 1, 8)
			}
			costUs := 1000 * (one["pgpseudo"].latencyMs - one["baseline"].latencyMs)
			b.ReportMetric(runs["pgpseudo"].tps/runs["baseline"].tps, mode+"-vs-baseline-tps-ratio")
			b.ReportMetric(costUs, mode+"-check-cost-us")
			b.Logf("pgbench -S -M %s as bi_analyst, 8 clients: direct %.0f, pgbouncer %.0f, baseline %.0f, pgpseudo %.0f tps (%.2f of baseline, %.2f of direct); 1 client: baseline %.3f ms, pgpseudo %.3f ms (%+.0f µs)",
				mode, runs["direct"].tps, runs["pgbouncer"].tps, runs["baseline"].tps, runs["pgpseudo"].tps,
				runs["pgpseudo"].tps/runs["baseline"].tps, runs["pgpseudo"].tps/runs["direct"].tps,
				one["baseline"].latencyMs, one["pgpseudo"].latencyMs, costUs)
		}
	}
}
