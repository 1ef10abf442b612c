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
	return startBinaryProxyReuse(b, 0, extra)
}

// startBinaryProxyReuse is startBinaryProxy keeping up to reuse upstream
// sessions for later logins.
func startBinaryProxyReuse(b *testing.B, reuse int, extra string) *binaryProxy {
	b.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	return startProxyBinary(b, filepath.Join(root, "bin", "pgpseudo"), reuse, extra)
}

// startProxyBinary runs the pgpseudo binary bin (this build, or the
// baseline build make bench compares with).
func startProxyBinary(b *testing.B, bin string, reuse int, extra string) *binaryProxy {
	b.Helper()
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s missing: run `make build` (make bench does)", bin)
	}
	addr := freeAddr(b)
	conf := binaryConfigReuse(addr, reuse, "log: {level: warn}\n"+extra)
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
