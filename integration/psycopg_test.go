package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianPython is the interpreter Debian's python3-psycopg installs into
// (make deps installs the package).
const debianPython = "/usr/bin/python3"

// TestPsycopgPipeline: psycopg 3's pipeline mode (Parse/Bind/Describe/
// Execute of several statements before one Sync, prepared statements,
// executemany) works through the proxy for a restricted role: results
// come back rewritten, in order, a refusal fails that pipeline alone, and
// the session goes on.
func TestPsycopgPipeline(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	script, err := filepath.Abs(filepath.Join("testdata", "psycopg_pipeline.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianPython, script, p.dsn(userBI, samplePass, dbKunden))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("psycopg pipeline: %v (`make deps` installs python3-psycopg)\nstderr:\n%s\nstdout:\n%s", err, errb.String(), out.String())
	}
	assertNoLeak(t, "psycopg output", out.String(), customers)
	got := map[string][][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		label, rows, ok := strings.Cut(line, "\t")
		var v [][]string
		if !ok || json.Unmarshal([]byte(rows), &v) != nil {
			t.Fatalf("psycopg pipeline printed %q", line)
		}
		got[label] = v
	}
	for _, label := range []string{"city0", "city1"} {
		rows := got[label]
		if len(rows) != 2 {
			t.Fatalf("%s: %v, want two rows", label, rows)
		}
		for _, r := range rows {
			if !strings.HasPrefix(r[0], "tk1_") {
				t.Errorf("%s: e-mail %q is not a token", label, r[0])
			}
		}
	}
	if got["city0"][0][1] != "Berlin" || got["city1"][0][1] != "Leipzig" {
		t.Errorf("pipelined results out of order: %v, %v", got["city0"], got["city1"])
	}
	first := got["prepared0"]
	for _, label := range []string{"prepared0", "prepared1", "prepared2"} {
		rows := got[label]
		if len(rows) != 1 || !strings.HasPrefix(rows[0][0], "tk1_") || rows[0][1] != "None" || rows[0][0] != first[0][0] {
			t.Errorf("%s: %v, want the same token and a NULL religion as the first run %v", label, rows, first)
		}
	}
	if m := got["many"]; len(m) != 2 || m[0][0] != "2" || m[1][0] != "3" {
		t.Errorf("executemany: %v, want 2 and 3", m)
	}
	if r := got["refused"]; len(r) != 1 || r[0][0] != "42501" {
		t.Errorf("a refused statement in a pipeline: %v, want 42501", r)
	}
	if a := got["after"]; len(a) != 1 || a[0][0] == "" {
		t.Errorf("the session after the refusal: %v", a)
	}
	// The other psycopg paths: every row tokenized, religion NULL, the
	// join on the token domain non-empty.
	for _, tt := range []struct {
		label       string
		rows, email int // rows wanted, the e-mail's column
	}{{"binary", 3, 1}, {"server_cursor", len(customers), 0}, {"copy_binary", len(customers), 1}} {
		rows := got[tt.label]
		if len(rows) != tt.rows {
			t.Errorf("%s: %d rows, want %d", tt.label, len(rows), tt.rows)
			continue
		}
		for _, r := range rows {
			if !strings.HasPrefix(r[tt.email], "tk1_") {
				t.Errorf("%s: %v is not tokenized", tt.label, r)
			}
		}
	}
	if b := got["binary"]; len(b) > 0 && b[0][2] != "None" {
		t.Errorf("binary cursor: religion %q, want None", b[0][2])
	}
	if len(got["join"]) == 0 {
		t.Error("join on customer_id: no rows")
	}
}
