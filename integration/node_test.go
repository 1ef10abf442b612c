package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// nodeProbeDir holds probe.js and its package.json/package-lock.json;
// make deps runs npm ci there (node_modules is not committed).
var nodeProbeDir = filepath.Join("testdata", "node")

// TestNode: node-postgres (pg, pinned in testdata/node/package.json) reads
// tokens with a simple query, joins on the customer token domain, runs a
// named prepared statement twice with other values, sees the refusal's
// SQLSTATE 42501 and goes on; a pool of connections queries concurrently
// and a pooled connection goes on after a refusal.
func TestNode(t *testing.T) {
	customers := kunden(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node missing (%v): `make deps` installs nodejs and npm", err)
	}
	dir, err := filepath.Abs(nodeProbeDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg", "package.json")); err != nil {
		t.Fatalf("node-postgres missing (%v): `make deps` runs npm ci in %s", err, nodeProbeDir)
	}
	p := policyProxy(t, samplePolicy)
	ref := referenceFor(t, p, customers)
	port, err := strconv.Atoi(p.port)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{"host": "127.0.0.1", "port": port, "user": userBI, "password": samplePass, "database": dbKunden})
	if err != nil {
		t.Fatal(err)
	}
	from := pgLogOffset(t)
	got := runClientProbe(t, "node-postgres", "`make deps` installs nodejs and npm and runs npm ci in "+nodeProbeDir,
		customers, node, filepath.Join(dir, "probe.js"), string(cfg))
	checkCommonProbes(t, "node-postgres", got, ref)

	for _, label := range []string{"named.Berlin", "named.Leipzig", "named.after"} {
		city := "Berlin"
		if label == "named.Leipzig" {
			city = "Leipzig"
		}
		checkCityRows(t, "node-postgres "+label, got[label], city, ref)
	}
	// The named statement q1 ran on the server under its name, each time.
	runs := 0
	for _, s := range serverStatements(t, from, userBI) {
		if s.Portal == "q1" {
			runs++
		}
	}
	if runs != 3 {
		t.Errorf("node-postgres: the server executed the prepared statement q1 %d times, want 3", runs)
	}

	checkJoinRows(t, "node-postgres pool join", got["pool.join"], ref)
	checkTokenRows(t, "node-postgres pool tokens", got["pool.tokens"], ref)
	checkCityRows(t, "node-postgres pool parameterised", got["pool.Berlin"], "Berlin", ref)
	if n := rowStrings(got["pool.connections"]); len(n) != 1 || n[0][0] != "3" {
		t.Errorf("node-postgres pool: %q connections for three concurrent queries, want 3", n)
	}
	checkRefused(t, "node-postgres pool refused", got["pool.refused"])
	if a := rowStrings(got["pool.after"]); len(a) != 1 || a[0][0] != strconv.Itoa(len(customers)) {
		t.Errorf("node-postgres: the pooled connection after the refusal returned %q, want [[%d]]", a, len(customers))
	}
}
