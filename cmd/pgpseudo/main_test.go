package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
)

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:1\nupstream:\n  address: db:5432\n  tls: {mode: disable}\n  colour: blue\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, 2, "no command"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"serve without config", []string{"serve"}, 2, "--config is required"},
		{"missing config file", []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, 1, "no such file"},
		{"unknown key", []string{"serve", "--config", bad}, 1, "bad.yaml:5: upstream.colour: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			code := 1
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d", code, tt.wantCode)
			}
		})
	}
}

// TestHelp: every command and subcommand prints its usage on stdout for
// -h and --help and succeeds, writing nothing on stderr.
func TestHelp(t *testing.T) {
	commands := [][]string{
		nil, {"serve"}, {"policy"}, {"policy", "check"}, {"policy", "diff"}, {"keys"}, {"keys", "init"}, {"keys", "rotate"}, {"keys", "status"},
		{"detokenize"}, {"audit"}, {"audit", "verify"}, {"audit", "query"}, {"audit", "report"}, {"audit", "keygen"}, {"audit", "public-key"},
	}
	for _, cmd := range commands {
		for _, flag := range []string{"-h", "--help"} {
			args := append(append([]string(nil), cmd...), flag)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errb bytes.Buffer
				if err := run(context.Background(), args, &out, &errb); err != nil {
					t.Fatalf("err = %v (stderr %q)", err, errb.String())
				}
				if !strings.Contains(strings.ToLower(out.String()), "usage") && !strings.Contains(out.String(), "-config") {
					t.Fatalf("stdout has no usage: %q", out.String())
				}
				if errb.Len() != 0 {
					t.Fatalf("stderr: %q", errb.String())
				}
			})
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "pgpseudo ") {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
}

func TestPolicyCheckStatic(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x"), 0o600)
	pol, _ := filepath.Abs("../../configs/sample/policy.yaml")
	cfg := filepath.Join(dir, "pgpseudo.yaml")
	base := "upstream: {address: 127.0.0.1:5432, tls: {mode: disable}}\nauth: {auth_user: a, auth_password_file: " + pw + "}\nkeys: {provider: file, allow_insecure_file_keys: true, file: {path: " + filepath.Join(dir, "k") + "}}\npolicy: "
	os.WriteFile(cfg, []byte(base+pol+"\n"), 0o600)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"policy", "check", "--config", cfg}, &out, &errb); err != nil {
		t.Fatalf("policy check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "is valid") || !strings.Contains(out.String(), "bi_analyst") {
		t.Fatalf("output: %s", out.String())
	}
	// Without --db the credentials the file names need not exist here.
	noCreds := filepath.Join(dir, "no-creds.yaml")
	os.WriteFile(noCreds, []byte("upstream: {address: db:5432, tls: {mode: disable}}\nauth: {auth_user: a, auth_password_file: /nonexistent/pw}\npolicy: "+pol+"\n"), 0o600)
	if err := run(context.Background(), []string{"policy", "check", "--config", noCreds}, &out, &errb); err != nil {
		t.Fatalf("policy check without --db and without the password file: %v", err)
	}
	if err := run(context.Background(), []string{"policy", "check", "--config", noCreds, "--db"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "auth_password_file") {
		t.Fatalf("policy check --db without the password file: %v", err)
	}
	bad := filepath.Join(dir, "bad-policy.yaml")
	os.WriteFile(bad, []byte("version: 1\nroles:\n  r:\n    match: {users: [x]}\n    actions: {special: allow}\n"), 0o600)
	os.WriteFile(cfg, []byte(base+bad+"\n"), 0o600)
	err := run(context.Background(), []string{"policy", "check", "--config", cfg}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "bad-policy.yaml:5: roles.r.actions.special") {
		t.Fatalf("invalid policy: %v", err)
	}
}

// TestAuditVerifyWithConfig: audit verify --config takes the public key
// from the signer the proxy configuration names (no token keys needed),
// and audit public-key prints it for auditors.
func TestAuditVerifyWithConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signing.pem")
	logPath := filepath.Join(dir, "audit.jsonl")
	cfg := filepath.Join(dir, "pgpseudo.yaml")
	os.WriteFile(cfg, []byte("audit: {path: "+logPath+", signing_key_file: "+keyFile+"}\n"), 0o600)
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"audit", "keygen", "--out", keyFile}, &out, &errb); err != nil {
		t.Fatalf("keygen: %v\n%s", err, errb.String())
	}
	signer, err := audit.LoadSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audit.New(ctx, audit.Config{Path: logPath}.WithDefaults(), signer, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := w.Write(ctx, audit.PolicyLoad{File: "p.yaml", Hash: "sha256:" + strings.Repeat("ab", 32), Roles: []string{"r"}, Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--config", cfg, logPath}, &out, &errb); err != nil || !strings.Contains(out.String(), "closed cleanly") {
		t.Fatalf("verify --config: %v\n%s%s", err, out.String(), errb.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "public-key", "--config", cfg}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(keyFile + ".pub")
	if !strings.Contains(out.String(), string(pub)) || !strings.Contains(out.String(), "# key_id "+audit.KeyID(signer.Public())) {
		t.Fatalf("public-key printed %q, keygen wrote %q", out.String(), pub)
	}
	// Another signing key does not verify the log.
	other := filepath.Join(dir, "other.pem")
	run(ctx, []string{"audit", "keygen", "--out", other}, &out, &errb)
	os.WriteFile(cfg, []byte("audit: {path: "+logPath+", signing_key_file: "+other+"}\n"), 0o600)
	err = run(ctx, []string{"audit", "verify", "--config", cfg, logPath}, &out, &errb)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitKeyUnavailable {
		t.Fatalf("verify with another signing key: %v", err)
	}
}

// TestDetokenizeIntDomainAudited: with a policy in the configuration, an
// int domain's values are reversed with the column's transform, and the
// detokenisation leaves an audit record (who, domain, count — no values).
func TestDetokenizeIntDomainAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pol, _ := filepath.Abs("../../configs/sample/policy.yaml")
	logPath := filepath.Join(dir, "audit.jsonl")
	cfg := filepath.Join(dir, "pgpseudo.yaml")
	signingKey := filepath.Join(dir, "signing.pem")
	os.WriteFile(cfg, []byte("keys: {provider: file, allow_insecure_file_keys: true, file: {path: "+filepath.Join(dir, "keyset.json")+"}}\npolicy: "+pol+"\naudit: {path: "+logPath+", signing_key_file: "+signingKey+"}\n"), 0o600)
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"audit", "keygen", "--out", signingKey}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"keys", "init", "--config", cfg}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	kf, _ := loadKeysConfig(cfg)
	p, err := crypto.NewProvider(ctx, kf.Keys, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ks, _ := p.Keyset(ctx)
	spec := crypto.Spec{Kind: crypto.KindInt, Domain: "customer", Reversible: true}
	tr, err := crypto.New(spec, ks, crypto.OIDInt4, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := tr.Transform(nil, []byte("424242"))
	out.Reset()
	if err := run(ctx, []string{"detokenize", "--config", cfg, "--domain", "customer", "--", string(token)}, &out, &errb); exitCode(err) != 2 || !strings.Contains(err.Error(), "--type int4") {
		t.Fatalf("int domain without --type: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"detokenize", "--config", cfg, "--domain", "customer", "--type", "int4", "--", string(token)}, &out, &errb); err != nil {
		t.Fatalf("detokenize: %v\n%s", err, errb.String())
	}
	if strings.TrimSpace(out.String()) != "424242" {
		t.Fatalf("detokenized %q, want 424242", out.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "audit-detokenize.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"domain":"customer"`) || !strings.Contains(string(raw), `"tokens":1`) || strings.Contains(string(raw), "424242") || strings.Contains(string(raw), string(token)) {
		t.Fatalf("audit record: %s", raw)
	}
	// Whoever rotates writes a key_rotation record, in the keys command's
	// own chain beside the proxy's log.
	if err := run(ctx, []string{"keys", "rotate", "--config", cfg}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(dir, "audit-keys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"type":"key_rotation"`) || !strings.Contains(string(raw), `"previous":1`) || !strings.Contains(string(raw), `"version":2`) || !strings.Contains(string(raw), `"outcome":"ok"`) {
		t.Fatalf("key_rotation record: %s", raw)
	}
	// The documented glob verifies each chain on its own.
	files, _ := filepath.Glob(filepath.Join(dir, "audit*.jsonl"))
	out.Reset()
	if err := run(ctx, append([]string{"audit", "verify", "--config", cfg}, files...), &out, &errb); err != nil {
		t.Fatalf("audit verify %v: %v\n%s", files, err, out.String())
	}
	if strings.Count(out.String(), "OK: ") != 2 || strings.Contains(out.String(), "TAMPERED") {
		t.Fatalf("audit verify of two chains:\n%s", out.String())
	}
	// And with the public key alone, each chain against its own
	// checkpoint file.
	out.Reset()
	if err := run(ctx, append([]string{"audit", "verify", "--public-key", signingKey + ".pub"}, files...), &out, &errb); err != nil {
		t.Fatalf("audit verify --public-key %v: %v\n%s", files, err, out.String())
	}
	if strings.Count(out.String(), "closed cleanly") != 2 || !strings.Contains(out.String(), "in audit-detokenize.jsonl.checkpoints") ||
		!strings.Contains(out.String(), "in audit-keys.jsonl.checkpoints") {
		t.Fatalf("audit verify --public-key of two chains:\n%s", out.String())
	}
}

// TestDetokenizeAfterRotation: after keys rotate, a value made before it
// detokenizes to its own original for every reversible transform (the
// proxy makes type-preserving values with one version for good, and
// detokenize uses the same), and detokenize refuses to guess a column or
// a width instead of printing another person's value.
func TestDetokenizeAfterRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pol := writeFile(t, filepath.Join(dir, "policy.yaml"), `version: 1
token_domains:
  customer: {reversible: true}
  notes: {reversible: true}
  phones: {}
  accounts: {}
columns:
  public.c:
    id: {category: key, transform: int, domain: customer}
    note: {category: identity, transform: token, domain: notes}
    phone: {category: contact, transform: digits, keep_prefix: 3, domain: phones}
    mobile: {category: contact, transform: digits, domain: phones}
    iban: {category: financial, transform: iban, domain: accounts}
roles:
  default:
    actions: {key: tokenize, identity: tokenize, contact: tokenize, financial: tokenize}
`)
	cfg := writeFile(t, filepath.Join(dir, "pgpseudo.yaml"), "keys: {provider: file, allow_insecure_file_keys: true, file: {path: "+filepath.Join(dir, "keyset.json")+"}}\npolicy: "+pol+"\n")
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"keys", "init", "--config", cfg}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	kf, _ := loadKeysConfig(cfg)
	made := func(spec crypto.Spec, oid uint32, v string) string {
		t.Helper()
		p, err := crypto.NewProvider(ctx, kf.Keys, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ks, err := p.Keyset(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := crypto.New(spec, ks, oid, crypto.FormatText)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tr.Transform(nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return string(tok)
	}
	cases := []struct {
		name, domain, value string
		spec                crypto.Spec
		oid                 uint32
		flags               []string
	}{
		{"int", "customer", "424242", crypto.Spec{Kind: crypto.KindInt, Domain: "customer", Reversible: true}, crypto.OIDInt4, []string{"--type", "int4"}},
		{"reversible token", "notes", "Erika Mustermann", crypto.Spec{Kind: crypto.KindToken, Domain: "notes", Reversible: true}, crypto.OIDText, nil},
		{"digits, keep_prefix 3", "phones", "+49 171 5550123", crypto.Spec{Kind: crypto.KindDigits, Domain: "phones", KeepPrefix: 3}, crypto.OIDText, []string{"--column", "public.c.phone"}},
		{"digits", "phones", "0171 5550123", crypto.Spec{Kind: crypto.KindDigits, Domain: "phones"}, crypto.OIDText, []string{"--column", "public.c.mobile"}},
		{"iban", "accounts", "DE89370400440532013000", crypto.Spec{Kind: crypto.KindIBAN, Domain: "accounts"}, crypto.OIDText, nil},
	}
	tokens := make([]string, len(cases))
	for i, tc := range cases {
		tokens[i] = made(tc.spec, tc.oid, tc.value)
	}
	if err := run(ctx, []string{"keys", "rotate", "--config", cfg}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		if again := made(tc.spec, tc.oid, tc.value); tc.spec.Kind != crypto.KindToken && again != tokens[i] {
			t.Errorf("%s: the rotation changed the value's token", tc.name)
		}
		out.Reset()
		args := append(append([]string{"detokenize", "--config", cfg, "--domain", tc.domain}, tc.flags...), "--", tokens[i])
		if err := run(ctx, args, &out, &errb); err != nil || strings.TrimSpace(out.String()) != tc.value {
			t.Errorf("%s after a rotation: %q, %v", tc.name, out.String(), err)
		}
	}
	// The phones domain has two transforms: without --column it refuses.
	out.Reset()
	err := run(ctx, []string{"detokenize", "--config", cfg, "--domain", "phones", "--", tokens[2]}, &out, &errb)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--column") || out.Len() != 0 {
		t.Errorf("a domain whose columns differ, without --column: %v, %q", err, out.String())
	}
	// A value no column of the domain could have made is refused.
	out.Reset()
	err = run(ctx, []string{"detokenize", "--config", cfg, "--domain", "accounts", "--", "DE00370400440532013000"}, &out, &errb)
	if exitCode(err) != 1 || out.Len() != 0 {
		t.Errorf("an IBAN with invalid check digits: %v, %q", err, out.String())
	}
}
