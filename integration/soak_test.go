//go:build soak

package integration

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// soakStats collects one interval's latencies and errors.
type soakStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	ok, fail  int
	lastErr   error
}

func (s *soakStats) add(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.fail++
		s.lastErr = err
		return
	}
	s.ok++
	s.latencies = append(s.latencies, d)
}

// take returns and resets the interval: p50 and p99 in ms, ok, failed.
func (s *soakStats) take() (p50, p99 float64, ok, fail int) {
	s.mu.Lock()
	l, ok, fail := s.latencies, s.ok, s.fail
	s.latencies, s.ok, s.fail = nil, 0, 0
	s.mu.Unlock()
	if len(l) == 0 {
		return 0, 0, ok, fail
	}
	slices.Sort(l)
	q := func(f float64) float64 { return float64(l[int(f*float64(len(l)-1))].Microseconds()) / 1000 }
	return q(0.5), q(0.99), ok, fail
}

// TestSoak runs the real binary for PGPSEUDO_SOAK (default 30m) under mixed
// load: pgbench -S, restricted BI queries, COPY of a tokenized table, and
// reconnecting clients. Every 10 s it samples the proxy's goroutines,
// resident memory and open files (from its own /metrics) and the BI
// latency, into SOAK_CSV. After the warm-up (the first fifth) nothing may
// grow: the last minute's figures stay within bounds of the warm-up's,
// and no statement fails. make soak runs it and draws the CSV.
func TestSoak(t *testing.T) {
	dur := 30 * time.Minute
	if v := os.Getenv("PGPSEUDO_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	csvPath := os.Getenv("SOAK_CSV")
	if csvPath == "" {
		csvPath = filepath.Join(t.TempDir(), "soak.csv")
	}
	customers := kunden(t)
	bin := shared.binary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	ac := auditConfig(t, filepath.Join(dir, "audit.jsonl"))
	adm := adminConfig(t)
	keys, _ := filepath.Abs(sampleKeys)
	pol := ownerPolicy(t, userAlice) // pgbench's user sees everything
	conf := binaryConfig(addr, fmt.Sprintf(`log: {level: warn}
policy: %s
keys: {provider: file, allow_insecure_file_keys: true, file: {path: %s}}
audit: {path: %s, signing_key_file: %s, rotate_size: 64MiB}
admin: {listen: %s, cert_file: %s, key_file: %s, token_file: %s}
`, pol, keys, ac.Path, ac.SigningKeyFile, adm.Listen, adm.CertFile, adm.KeyFile, adm.TokenFile))
	cf := filepath.Join(dir, "pgpseudo.yaml")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	if !waitListening(addr) {
		t.Fatal("the proxy did not start")
	}
	a := newAdminEndpoint(t, adm)
	_, port, _ := net.SplitHostPort(addr)

	// pgbench's tables, in a database of their own.
	db := fmt.Sprintf("soak_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(context.Background(), "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, userAlice)); err != nil {
		t.Fatal(err)
	}
	env := libpqEnv(port, userAlice, passAlice, db)
	if _, errOut, err := runTool(t, 5*time.Minute, "pgbench", env, "-i", "-s", "2", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var (
		wg    sync.WaitGroup
		bi    soakStats
		other soakStats
		rows  atomic.Int64
	)
	wg.Add(1)
	go func() { // pgbench -S, 4 clients at 500 transactions/s, in 60 s runs
		defer wg.Done()
		for ctx.Err() == nil {
			secs := int(min(60*time.Second, time.Until(deadlineOf(ctx))).Seconds())
			if secs < 1 {
				return
			}
			start := time.Now()
			out, errOut, err := runTool(t, 2*time.Minute, "pgbench", env, "-S", "-c", "4", "-j", "1", "-R", "500", "-T", strconv.Itoa(secs), "-n")
			if err != nil || failedRe.FindStringSubmatch(out) == nil || failedRe.FindStringSubmatch(out)[1] != "0" {
				other.add(0, fmt.Errorf("pgbench: %v %s", err, errOut))
			} else {
				other.add(time.Since(start), nil)
			}
		}
	}()
	biQueries := []string{
		"SELECT full_name, email FROM customers ORDER BY created_at LIMIT 50",
		"SELECT city, count(*) FROM customers GROUP BY city ORDER BY 2 DESC LIMIT 10",
		"SELECT c.full_name, count(o.*) FROM customers c LEFT JOIN orders o USING (customer_id) GROUP BY c.full_name LIMIT 20",
	}
	for w := range 2 { // restricted BI sessions
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, dsn(port, userBI, samplePass, dbKunden))
			if err != nil {
				bi.add(0, err)
				return
			}
			defer c.Close(context.Background())
			for i := w; ctx.Err() == nil; i++ {
				start := time.Now()
				r, err := c.Query(ctx, biQueries[i%len(biQueries)])
				if err == nil {
					var got []any
					for r.Next() {
						got, _ = r.Values()
						rows.Add(1)
					}
					_ = got
					err = r.Err()
				}
				if ctx.Err() != nil {
					return
				}
				bi.add(time.Since(start), err)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() { // COPY of the tokenized customers, and reconnects
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			c, err := pgx.Connect(ctx, dsn(port, userDev, samplePass, dbKunden))
			if err == nil {
				var sink countWriter
				_, err = c.PgConn().CopyTo(ctx, &sink, "COPY (SELECT * FROM customers) TO STDOUT")
				c.Close(context.Background())
			}
			if ctx.Err() != nil {
				return
			}
			other.add(time.Since(start), err)
			time.Sleep(time.Second)
		}
	}()

	f, err := os.Create(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"seconds", "goroutines", "rss_mib", "open_fds", "bi_p50_ms", "bi_p99_ms", "bi_ok", "failed"})
	type sample struct{ g, rss, fds float64 }
	var samples []sample
	begin := time.Now()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		body := a.metrics(t)
		s := sample{metricValue(body, "go_goroutines", ""), metricValue(body, "process_resident_memory_bytes", "") / (1 << 20), metricValue(body, "process_open_fds", "")}
		samples = append(samples, s)
		p50, p99, ok, fail := bi.take()
		_, _, _, ofail := other.take()
		w.Write([]string{fmt.Sprintf("%.0f", time.Since(begin).Seconds()), fmt.Sprint(s.g), fmt.Sprintf("%.1f", s.rss), fmt.Sprint(s.fds),
			fmt.Sprintf("%.2f", p50), fmt.Sprintf("%.2f", p99), strconv.Itoa(ok), strconv.Itoa(fail + ofail)})
		w.Flush()
		if fail+ofail > 0 {
			t.Errorf("at %s: %d failures; last: %v %v", time.Since(begin).Round(time.Second), fail+ofail, bi.lastErr, other.lastErr)
		}
	}
	wg.Wait()
	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	// Warm-up: the first fifth. Compare the mean of the last three
	// samples with the highest sample just after the warm-up.
	warm := samples[len(samples)/5]
	mean := func(f func(sample) float64) float64 {
		var s float64
		for _, x := range samples[len(samples)-3:] {
			s += f(x)
		}
		return s / 3
	}
	for _, c := range []struct {
		name  string
		f     func(sample) float64
		slack float64
	}{
		{"goroutines", func(s sample) float64 { return s.g }, 1.25},
		{"RSS", func(s sample) float64 { return s.rss }, 1.25},
		{"open files", func(s sample) float64 { return s.fds }, 1.25},
	} {
		if end, base := mean(c.f), c.f(warm); end > base*c.slack+5 {
			t.Errorf("%s grew after warm-up: %.1f at %d s, %.1f at the end", c.name, base, len(samples)/5*10, end)
		}
	}
	t.Logf("soak %s: %d samples in %s, %d BI rows", dur, len(samples), csvPath, rows.Load())
	assertNoLeak(t, "audit log", readFile(t, ac.Path), customers)
}

// countWriter counts and drops COPY data.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
