package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/proxy"
)

// auditSigningKey is the Transit key that signs audit checkpoints in the
// Vault tests.
const auditSigningKey = "pgpseudo-audit"

// TestAuditSignedByVaultTransit: the proxy signs its checkpoints with a
// Vault Transit ed25519 key whose private half never leaves Vault; a
// proxy whose token may not sign refuses to start; an auditor verifies
// with the public key alone (audit public-key), across a rotation of the
// signing key; a chain rewritten by someone who can write the log, or cut
// back to an earlier checkpoint, fails verification.
func TestAuditSignedByVaultTransit(t *testing.T) {
	kunden(t)
	e := newVaultEnv(t, requireVault(t))
	ctx := t.Context()
	kp, err := crypto.NewVaultProvider(ctx, e.cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	kp.Close()

	c := &cli{t: t, bin: buildKeysCLI(t), home: t.TempDir()}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.jsonl")
	cfgFile := keysConfigFile(t, dir, "pgpseudo", e.cfg)
	appendFile(t, cfgFile, "audit: {path: "+logPath+", signing_transit_key: "+auditSigningKey+"}\n")
	root := e.vault.RootToken

	res := c.run(root, "", "audit", "keygen", "--config", cfgFile)
	c.expect(res, 0, "created the Vault Transit signing key")
	c.expect(c.run(root, "", "audit", "keygen", "--config", cfgFile), 0, "exists")
	pub1 := writeFile(t, dir, "audit-v1.pub", res.stdout)

	cfg := proxyConfig()
	cfg.Policy = samplePolicy
	cfg.Audit = audit.Config{Path: logPath, SigningTransitKey: auditSigningKey}.WithDefaults()
	// Fail closed: a token that may not sign stops the proxy at start.
	cfg.Keys = e.withToken(t, e.token(t, "serve", "proxy-nosign", "1h"))
	if _, err := proxy.NewServer(cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "sign") {
		t.Fatalf("a proxy that cannot sign started: %v", err)
	}
	cfg.Keys = e.withToken(t, e.token(t, "serve-audit", "proxy", "1h"))
	session := func() {
		t.Helper()
		p := startProxy(t, cfg)
		conn := connect(t, p.dsn(userBI, samplePass, dbKunden))
		if _, err := conn.Exec(ctx, "SELECT full_name, email FROM customers"); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if err := p.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	session()
	verify := func(pub string, files ...string) cliResult {
		return c.run("", "", append([]string{"audit", "verify", "--public-key", pub}, files...)...)
	}
	res = verify(pub1, logPath)
	c.expect(res, 0)
	if !strings.Contains(res.stdout, "closed cleanly") || !strings.Contains(res.stdout, "in audit.jsonl.checkpoints") {
		t.Fatalf("verify: %s", res.stdout)
	}

	// Rotate the signing key: new checkpoints carry version 2's key id;
	// the log verifies with every version's public key, not with v1's.
	if _, err := e.admin.Logical().WriteWithContext(ctx, e.cfg.TransitMount+"/keys/"+auditSigningKey+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	session()
	c.expect(verify(pub1, logPath), 3)
	res = c.run(root, "", "audit", "public-key", "--config", cfgFile)
	c.expect(res, 0)
	if strings.Count(res.stdout, "BEGIN PUBLIC KEY") != 2 {
		t.Fatalf("public-key after a rotation: %s", res.stdout)
	}
	pubAll := writeFile(t, dir, "audit-all.pub", res.stdout)
	res = verify(pubAll, logPath)
	c.expect(res, 0)
	if !strings.Contains(res.stdout, "closed cleanly") || !strings.Contains(res.stdout, ", ") {
		t.Fatalf("verify with both keys: %s", res.stdout)
	}

	// Someone who can write the log removes a statement record and
	// recomputes the public chain: the signatures no longer match.
	orig, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1]
	var kept []string
	dropped := false
	for _, l := range lines {
		if !dropped && strings.Contains(l, `"type":"statement"`) {
			dropped = true
			continue
		}
		kept = append(kept, l)
	}
	writeFile(t, dir, "audit.jsonl", strings.Join(rechain(t, kept), ""))
	res = verify(pubAll, logPath)
	c.expect(res, 1)
	if !strings.Contains(res.stdout, "rewritten") {
		t.Fatalf("a recomputed chain: %s", res.stdout)
	}
	// Cut back to the first signed checkpoint: the log on its own is a
	// valid prefix, the checkpoint file beside it is not.
	writeFile(t, dir, "audit.jsonl", strings.Join(lines[:2], ""))
	res = verify(pubAll, logPath)
	c.expect(res, 1)
	if !strings.Contains(res.stdout, "truncated") {
		t.Fatalf("a log cut back: %s", res.stdout)
	}
}

// rechain recomputes seq, prev and hash of every line, as anyone can.
func rechain(t *testing.T, lines []string) []string {
	t.Helper()
	out := make([]string, len(lines))
	prev := ""
	for i, l := range lines {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		r.Seq, r.Prev, r.Hash = uint64(i+1), prev, ""
		line, sum, err := audit.EncodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		out[i], prev = string(line), sum
	}
	return out
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// appendFile appends data to path.
func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}
