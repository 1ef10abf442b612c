package integration

import (
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
