package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// binaryProxy is pgpseudo running as its own process, so its memory can be
// measured apart from the test's.
type binaryProxy struct {
	cmd  *exec.Cmd
	port string
}

func startBinaryProxy(b *testing.B, extra string) *binaryProxy {
	b.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	return startProxyBinary(b, filepath.Join(root, "bin", "pgpseudo"), extra)
}

// startProxyBinary runs the pgpseudo binary bin (this build, or the
// baseline build make bench compares with).
func startProxyBinary(b *testing.B, bin, extra string) *binaryProxy {
	b.Helper()
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s missing: run `make build` (make bench does)", bin)
	}
	addr := freeAddr(b)
	conf := binaryConfig(addr, "log: {level: warn}\n"+extra)
	cf := filepath.Join(b.TempDir(), "pgpseudo.yaml")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	waitListening(addr)
	_, port, _ := net.SplitHostPort(addr)
	return &binaryProxy{cmd: cmd, port: port}
}

// peakRSS reads the process's high-water resident set size in bytes.
func (p *binaryProxy) peakRSS(b *testing.B) float64 {
	n, err := procStatusBytes(p.cmd.Process.Pid, "VmHWM")
	if err != nil {
		b.Fatal(err)
	}
	return float64(n)
}

// waitListening waits up to 5 s for addr to accept connections.
func waitListening(addr string) bool {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

var tpsRe = regexp.MustCompile(`tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)`)

// BenchmarkProxyOverhead measures, in one run, direct vs through the proxy:
// pgbench -S TPS with 8 clients and the time to stream a 1M-row, 10-column
// SELECT; it reports the ratios and the proxy's peak RSS.
func BenchmarkProxyOverhead(b *testing.B) {
	p := startBinaryProxy(b, "")
	ctx := context.Background()
	db := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, userAlice)); err != nil {
		b.Fatal(err)
	}
	directPort := strconv.Itoa(shared.stack.PG.Port)
	if _, errOut, err := runTool(b, 10*time.Minute, "pgbench", libpqEnv(directPort, userAlice, passAlice, db), "-i", "-s", "10", "-q"); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, errOut)
	}
	c, err := pgx.Connect(ctx, directDSN(userAlice, passAlice, db))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE stream10 AS SELECT g AS c1, g * 2 AS c2, md5(g::text) AS c3, g::numeric / 7 AS c4,
		now() AS c5, g % 1000 AS c6, 'row ' || g AS c7, (g % 2 = 0) AS c8, gen_random_uuid() AS c9, g::float8 / 3 AS c10
		FROM generate_series(1, 1000000) g`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, "VACUUM ANALYZE stream10"); err != nil {
		b.Fatal(err)
	}
	c.Close(ctx)

	pgbenchTPS := func(port string) float64 {
		return runPgbench(b, port, userAlice, passAlice, db, "simple", 8, 15).tps
	}
	stream := func(port string) time.Duration {
		conn, err := pgx.Connect(ctx, dsn(port, userAlice, passAlice, db))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		start := time.Now()
		rows, err := conn.Query(ctx, "SELECT * FROM stream10")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 1000000 {
			b.Fatalf("streamed %d rows: %v", n, rows.Err())
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dTPS, pTPS := pgbenchTPS(directPort), pgbenchTPS(p.port)
		stream(directPort) // warm the cache
		dStream, pStream := stream(directPort), stream(p.port)
		b.ReportMetric(dTPS, "direct-tps")
		b.ReportMetric(pTPS, "proxy-tps")
		b.ReportMetric(pTPS/dTPS, "tps-ratio")
		b.ReportMetric(dStream.Seconds(), "direct-stream-s")
		b.ReportMetric(pStream.Seconds(), "proxy-stream-s")
		b.ReportMetric(pStream.Seconds()/dStream.Seconds(), "stream-time-ratio")
		b.ReportMetric(p.peakRSS(b)/(1<<20), "proxy-peak-rss-MiB")
		b.Logf("pgbench -S 8 clients: direct %.0f tps, proxy %.0f tps (%.2f); 1M x 10 stream: direct %v, proxy %v (%.2fx); proxy peak RSS %.1f MiB",
			dTPS, pTPS, pTPS/dTPS, dStream.Round(time.Millisecond), pStream.Round(time.Millisecond), pStream.Seconds()/dStream.Seconds(), p.peakRSS(b)/(1<<20))
	}
}

// BenchmarkPolicyStream streams the 1M-customer sample table (12 columns)
// through the proxy as bi_analyst (8 columns rewritten: 5 tokenized, one
// masked, one generalised, one withheld), as a role that may see
// everything, and direct; it reports the time ratios and the proxy's peak
// RSS, which must stay flat as the result grows.
func BenchmarkPolicyStream(b *testing.B) {
	kunden(b)
	ctx := context.Background()
	const n = 1_000_000
	if err := shared.stack.PG.Exec(ctx, "postgres", "CREATE ROLE bench_allow LOGIN PASSWORD '"+samplePass+"'"); err != nil {
		b.Fatal(err)
	}
	db := loadBenchKunden(b, n, userBI, "bench_allow")
	orig, err := os.ReadFile(samplePolicy)
	if err != nil {
		b.Fatal(err)
	}
	pol := filepath.Join(b.TempDir(), "policy.yaml")
	allowRole := `
  everything:
    match: {users: [bench_allow]}
    actions: {identity: allow, contact: allow, location: allow, online: allow, employment: allow, financial: allow, key: allow, special: allow}
    unclassified: allow
    legal_basis: "benchmark"
`
	if err := os.WriteFile(pol, append(orig, allowRole...), 0o600); err != nil {
		b.Fatal(err)
	}
	p := startBinaryProxy(b, fmt.Sprintf("policy: %s\nkeys: {provider: file, allow_insecure_file_keys: true, file: {path: %s}}\n", pol, sampleKeys))
	stream := func(port, user, pass string) time.Duration {
		conn, err := pgx.Connect(ctx, dsn(port, user, pass, db))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		start := time.Now()
		rows, err := conn.Query(ctx, "SELECT * FROM customers")
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for rows.Next() {
			count++
		}
		if rows.Err() != nil || count != n {
			b.Fatalf("streamed %d rows: %v", count, rows.Err())
		}
		return time.Since(start)
	}
	directPort := strconv.Itoa(shared.stack.PG.Port)
	for i := 0; i < b.N; i++ {
		stream(directPort, userBI, samplePass) // warm the cache
		d := stream(directPort, userBI, samplePass)
		allow := stream(p.port, "bench_allow", samplePass)
		rssAllow := p.peakRSS(b)
		tok := stream(p.port, userBI, samplePass)
		rss := p.peakRSS(b)
		b.ReportMetric(d.Seconds(), "direct-s")
		b.ReportMetric(allow.Seconds()/d.Seconds(), "allow-ratio")
		b.ReportMetric(tok.Seconds()/d.Seconds(), "tokenize-ratio")
		b.ReportMetric(rss/(1<<20), "proxy-peak-rss-MiB")
		b.Logf("1M customers x 12 columns: direct %v, allow role %v (%.2fx), bi_analyst %v (%.2fx); proxy peak RSS %.1f MiB after the allow run, %.1f MiB after the tokenized run",
			d.Round(time.Millisecond), allow.Round(time.Millisecond), allow.Seconds()/d.Seconds(), tok.Round(time.Millisecond), tok.Seconds()/d.Seconds(), rssAllow/(1<<20), rss/(1<<20))
	}
}

// loadBenchKunden loads n sample customers into a new database, readable
// by the users given, and returns its name.
func loadBenchKunden(b *testing.B, n int, readers ...string) string {
	b.Helper()
	ctx := context.Background()
	db := fmt.Sprintf("kunden_bench_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s", db)); err != nil {
		b.Fatal(err)
	}
	b.Logf("loading %d sample customers…", n)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(sample.Write(pw, n, 7)) }()
	load := pgTool(ctx, "psql", nil, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", shared.stack.PG.SockDir, "-p", fmt.Sprint(shared.stack.PG.Port), "-U", "postgres", "-d", db,
		"-c", "SET client_min_messages = warning", "-f", "-", "-c", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+strings.Join(readers, ", "))
	load.Stdin = pr
	if out, err := load.CombinedOutput(); err != nil {
		b.Fatalf("load: %v\n%s", err, out)
	}
	return db
}

// BenchmarkDeveloperDump times pg_dump of the 1M-customer sample as the
// developer role through the proxy (every personal column rewritten,
// special-category ones withheld) and directly, in custom format and in
// directory format with four jobs (exported snapshots through the proxy).
func BenchmarkDeveloperDump(b *testing.B) {
	kunden(b)
	db := loadBenchKunden(b, 1_000_000, userDev)
	p := startBinaryProxy(b, fmt.Sprintf("policy: %s\nkeys: {provider: file, allow_insecure_file_keys: true, file: {path: %s}}\n", samplePolicy, sampleKeys))
	directPort := strconv.Itoa(shared.stack.PG.Port)
	dump := func(port string, args ...string) time.Duration {
		out := filepath.Join(b.TempDir(), "dump")
		start := time.Now()
		if _, errOut, err := runTool(b, 30*time.Minute, "pg_dump", libpqEnv(port, userDev, samplePass, db), append(args, "-f", out)...); err != nil {
			b.Fatalf("pg_dump %v: %v\n%s", args, err, errOut)
		}
		return time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		for _, f := range []struct {
			name string
			args []string
		}{{"Fc", []string{"-Fc"}}, {"Fd-j4", []string{"-Fd", "-j", "4"}}} {
			dump(directPort, f.args...) // warm the cache
			d := dump(directPort, f.args...)
			viaProxy := dump(p.port, f.args...)
			b.ReportMetric(d.Seconds(), f.name+"-direct-s")
			b.ReportMetric(viaProxy.Seconds(), f.name+"-proxy-s")
			b.ReportMetric(viaProxy.Seconds()/d.Seconds(), f.name+"-ratio")
			b.Logf("pg_dump %s of 1M customers as developer: direct %v, through pgpseudo %v (%.2fx)", strings.Join(f.args, " "), d.Round(time.Millisecond), viaProxy.Round(time.Millisecond), viaProxy.Seconds()/d.Seconds())
		}
	}
}

// BenchmarkAuditOverhead compares pgbench -S throughput through the proxy
// with a policy (an allow role, so every statement is tracked) with the
// audit log off and on, in one run.
func BenchmarkAuditOverhead(b *testing.B) {
	kunden(b)
	ctx := context.Background()
	db := fmt.Sprintf("auditbench_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, userAlice)); err != nil {
		b.Fatal(err)
	}
	directPort := strconv.Itoa(shared.stack.PG.Port)
	if _, errOut, err := runTool(b, 10*time.Minute, "pgbench", libpqEnv(directPort, userAlice, passAlice, db), "-i", "-s", "5", "-q"); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, errOut)
	}
	orig, err := os.ReadFile(samplePolicy)
	if err != nil {
		b.Fatal(err)
	}
	pol := filepath.Join(b.TempDir(), "policy.yaml")
	role := `
  everything:
    match: {users: [alice]}
    actions: {identity: allow, contact: allow, location: allow, online: allow, employment: allow, financial: allow, key: allow, special: allow}
    unclassified: allow
    legal_basis: "benchmark"
`
	if err := os.WriteFile(pol, append(orig, role...), 0o600); err != nil {
		b.Fatal(err)
	}
	base := fmt.Sprintf("policy: %s\nkeys: {provider: file, allow_insecure_file_keys: true, file: {path: %s}}\n", pol, sampleKeys)
	off := startBinaryProxy(b, base)
	ac := auditConfig(b, filepath.Join(b.TempDir(), "audit.jsonl"))
	on := startBinaryProxy(b, base+fmt.Sprintf("audit: {path: %s, signing_key_file: %s}\n", ac.Path, ac.SigningKeyFile))
	tps := func(port string) float64 { return runPgbench(b, port, userAlice, passAlice, db, "simple", 8, 10).tps }
	for i := 0; i < b.N; i++ {
		tOff, tOn := tps(off.port), tps(on.port)
		b.ReportMetric(tOff, "audit-off-tps")
		b.ReportMetric(tOn, "audit-on-tps")
		b.ReportMetric(tOn/tOff, "audit-tps-ratio")
		b.Logf("pgbench -S through the proxy with a policy: audit off %.0f tps, on %.0f tps (%.2f)", tOff, tOn, tOn/tOff)
	}
}
