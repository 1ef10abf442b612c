package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// TestTwoReplicasOneKeyset: two proxies on one Vault keyset, as the
// Kubernetes Deployment runs them, give a restricted role identical tokens
// (so a load balancer may send its sessions to either), each writes its
// own audit chain, and `pgpseudo audit verify` accepts the set of both
// chains with the public key of their shared Transit signing key, and
// names the chain someone altered.
func TestTwoReplicasOneKeyset(t *testing.T) {
	customers := kunden(t)
	v := requireVault(t)
	e := newVaultEnv(t, v)
	kp, err := crypto.NewProvider(t.Context(), e.config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	kp.Close()
	if _, err := e.admin.Logical().WriteWithContext(t.Context(), e.cfg.TransitMount+"/keys/"+auditSigningKey, map[string]any{"type": "ed25519"}); err != nil {
		t.Fatal(err)
	}
	keys := e.withToken(t, e.token(t, "serve-audit", "replica", "1h"))
	dir := t.TempDir()
	var logs []string
	query := "SELECT customer_id, full_name, email, iban FROM customers ORDER BY created_at, customer_id LIMIT 5"
	var results [][]string
	for i := range 2 {
		cfg := policyConfig(t, samplePolicy)
		cfg.Keys = keys.WithDefaults()
		logPath := filepath.Join(dir, fmt.Sprintf("replica-%d", i), "audit.jsonl")
		if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
			t.Fatal(err)
		}
		cfg.Audit = audit.Config{Path: logPath, SigningTransitKey: auditSigningKey}.WithDefaults()
		logs = append(logs, logPath)
		p := startProxy(t, cfg)
		c := connect(t, p.dsn(userBI, samplePass, dbKunden))
		rows, err := c.Query(context.Background(), query, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(vals))
			for j, v := range vals {
				parts[j] = fmt.Sprint(v)
			}
			got = append(got, strings.Join(parts, "|"))
		}
		if rows.Err() != nil || len(got) != 5 {
			t.Fatalf("replica %d: %d rows, %v", i, len(got), rows.Err())
		}
		assertNoLeak(t, fmt.Sprintf("replica %d", i), strings.Join(got, "\n"), customers)
		results = append(results, got)
		c.Close(context.Background())
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		p.srv.Shutdown(sctx) // the final checkpoint signs each chain
		cancel()
	}
	if !slices.Equal(results[0], results[1]) {
		t.Fatalf("the replicas give different tokens:\n%v\n%v", results[0], results[1])
	}
	if !strings.HasPrefix(strings.Split(results[0][0], "|")[1], "tk1_") {
		t.Fatalf("not tokens: %v", results[0])
	}

	// Verify both chains with one command and the signer's public key.
	cf := filepath.Join(dir, "verify.yaml")
	conf := fmt.Sprintf(`keys:
  provider: vault
  vault: {address: %s, ca_file: %s, auth: {method: token, token_file: %s}, transit_mount: %s, kv_path: %s}
audit: {path: %s, signing_transit_key: %s}
`, e.cfg.Address, e.cfg.CAFile, keys.Vault.Auth.TokenFile, e.cfg.TransitMount, e.cfg.KVPath, logs[0], auditSigningKey)
	if err := os.WriteFile(cf, []byte(binaryConfig(freeAddr(t), conf)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := shared.binary(t)
	pub, err := exec.Command(bin, "audit", "public-key", "--config", cf).Output()
	if err != nil {
		t.Fatalf("audit public-key: %v", err)
	}
	pubFile := filepath.Join(dir, "signer.pub")
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "audit", "verify", "--public-key", pubFile, logs[0], logs[1]).CombinedOutput()
	if err != nil || bytes.Count(out, []byte("OK")) != 2 {
		t.Fatalf("audit verify of both chains: %v\n%s", err, out)
	}
	// One altered record in replica 1's chain: verify fails and says which.
	b, err := os.ReadFile(logs[1])
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(b, []byte(`"role":"bi_analyst"`), []byte(`"role":"bi_analyss"`), 1)
	if bytes.Equal(altered, b) {
		t.Fatal("nothing to alter in replica 1's log")
	}
	if err := os.WriteFile(logs[1], altered, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "audit", "verify", "--public-key", pubFile, logs[0], logs[1]).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "replica-1") || bytes.Count(out, []byte("OK")) != 1 {
		t.Fatalf("audit verify with replica 1's chain altered: %v\n%s", err, out)
	}
}
