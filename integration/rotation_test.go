package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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
	// The proxy records the keys it loaded at start (previous 0) and the
	// rotation it picked up.
	var picked []audit.KeyRotation
	for _, r := range readAudit(t, logPath) {
		if r.KeyRotation != nil {
			picked = append(picked, *r.KeyRotation)
		}
	}
	want := []audit.KeyRotation{{Actor: "pgpseudo", Provider: "file", Previous: 0, Version: 1, Outcome: audit.OutcomeOK},
		{Actor: "pgpseudo", Provider: "file", Previous: 1, Version: 2, Outcome: audit.OutcomeOK}}
	if len(picked) != 2 || picked[0] != want[0] || picked[1] != want[1] {
		t.Fatalf("key_rotation records: %+v, want %+v", picked, want)
	}
	// keys status reads what the running proxy uses from its log.
	c := &cli{t: t, bin: buildKeysCLI(t), home: t.TempDir()}
	cf := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(cf, []byte("keys: {provider: file, allow_insecure_file_keys: true, file: {path: "+keys+"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := c.run("", "", "keys", "status", "--config", cf, logPath)
	c.expect(res, 0)
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(logPath) + `\s+2\s+\S+\s+current$`).MatchString(res.stdout) {
		t.Fatalf("keys status with the proxy's log:\n%s", res.stdout)
	}
	// A proxy that is stopped does not pick a later rotation up.
	// (Sessions still open are ended at the deadline.)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(sctx)
	if _, err := crypto.NewFileProvider(kc.File, zap.NewNop()).Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	res = c.run("", "", "keys", "status", "--config", cf, logPath)
	if !strings.Contains(res.stdout, "behind") {
		t.Fatalf("keys status right after another rotation:\n%s", res.stdout)
	}
}

// TestUnknownPinnedKeyVersion: a domain pinned to a key version the
// keyset does not hold withholds its columns with the reason; the session
// goes on and the other columns keep their tokens.
func TestUnknownPinnedKeyVersion(t *testing.T) {
	customers := kunden(t)
	file, _ := editedPolicy(t, samplePolicy, [2]string{"\n  email: {}\n", "\n  email: {key_version: 99}\n"})
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	for range 2 {
		var name string
		var email *string
		if err := c.QueryRow(ctx, "SELECT full_name, email FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&name, &email); err != nil {
			t.Fatalf("a column pinned to an unknown key version: %v", err)
		}
		if !strings.HasPrefix(name, "tk1_") {
			t.Fatalf("full_name %q is not a token", name)
		}
		// email is NOT NULL: withheld, it leaves as the type's stand-in.
		if email != nil && (strings.HasPrefix(*email, "tk1_") || *email == customers[0].Email) {
			t.Fatalf("email %q: not withheld", *email)
		}
	}
}
