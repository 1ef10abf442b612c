package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// TestLiveRotation: a running proxy picks up a rotation made by another
// process (keys rotate) within its refresh interval, without a restart:
// new sessions get version-2 tokens, type-preserving values stay as they
// were, old reversible tokens still detokenize, and the audit log records
// the rotation the proxy picked up.
func TestLiveRotation(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keyset.json")
	data, err := os.ReadFile(sampleKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, data, 0o600); err != nil {
		t.Fatal(err)
	}
	kc := crypto.Config{Provider: crypto.ProviderFile, AllowInsecureFileKeys: true, File: crypto.FileConfig{Path: keys}, RefreshInterval: time.Second}
	cfg := proxyConfig()
	cfg.Policy = samplePolicy
	cfg.Keys = kc
	logPath := filepath.Join(dir, "audit.jsonl")
	cfg.Audit = auditConfig(t, logPath)
	p := startProxy(t, cfg)

	const q = "SELECT customer_id, full_name FROM customers ORDER BY created_at LIMIT 1"
	// A session open across the rotation, whose repeated statement reuses
	// its last result plan, must pick it up as well as new sessions.
	long := connect(t, p.dsn(userBI, samplePass, dbKunden))
	before := rawRows(t, long, q)
	if !strings.Contains(before, "|tk1_1_") {
		t.Fatalf("before the rotation: %q", before)
	}
	if _, err := crypto.NewFileProvider(kc.File, zap.NewNop()).Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	var after string
	deadline := time.Now().Add(10 * time.Second) // refresh_interval is 1s
	for {
		after = rawRows(t, long, q)
		if strings.Contains(after, "|tk1_2_") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(after, "|tk1_2_") {
		t.Fatalf("the running proxy did not pick up the rotation: %q", after)
	}
	if fresh := rawRows(t, connect(t, p.dsn(userBI, samplePass, dbKunden)), q); fresh != after {
		t.Errorf("a new session after the rotation: %q, the open one: %q", fresh, after)
	}
	// customer_id (int, untagged) keeps its value across the rotation.
	if strings.SplitN(before, "|", 2)[0] != strings.SplitN(after, "|", 2)[0] {
		t.Errorf("a type-preserving value changed with the rotation: %q → %q", before, after)
	}
	var picked *audit.KeyRotation
	for _, r := range readAudit(t, logPath) {
		if r.KeyRotation != nil {
			picked = r.KeyRotation
		}
	}
	if picked == nil || picked.Actor != "pgpseudo" || picked.Previous != 1 || picked.Version != 2 || picked.Outcome != audit.OutcomeOK {
		t.Fatalf("key_rotation record: %+v", picked)
	}
}
