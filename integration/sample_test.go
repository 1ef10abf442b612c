package integration

import (
	"bytes"
	"context"
	"fmt"
	"github.com/pgpseudo/pgpseudo/config"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// The sample database and its users for policy tests.
const (
	dbKunden     = "kunden"
	sampleSize   = 60
	sampleSeed   = 42
	userBI       = "bi_jane"
	userDev      = "dev_max"
	userCare     = "dr_house"
	userNobody   = "mallory"
	samplePass   = "Sample-Pa55"
	samplePolicy = "../configs/sample/policy.yaml"
)

var (
	sampleOnce sync.Once
	sampleErr  error
	sampleKeys string
)

// kunden loads the sample database once and returns the customers in it.
func kunden(t testing.TB) []sample.Customer {
	t.Helper()
	sampleOnce.Do(func() { sampleErr = loadSample(shared.stack) })
	if sampleErr != nil {
		t.Fatalf("sample database: %v", sampleErr)
	}
	return sample.Customers(sampleSize, sampleSeed)
}

func loadSample(s *stack.Stack) error {
	ctx := context.Background()
	stmts := []string{fmt.Sprintf("CREATE DATABASE %s OWNER %s", dbKunden, userAlice), "CREATE ROLE clinicians NOLOGIN"}
	for _, u := range []string{userBI, userDev, userCare, userNobody} {
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", u, samplePass))
	}
	stmts = append(stmts, "GRANT clinicians TO "+userCare)
	if err := s.PG.Exec(ctx, "postgres", stmts...); err != nil {
		return err
	}
	var script bytes.Buffer
	if err := sample.Write(&script, sampleSize, sampleSeed); err != nil {
		return err
	}
	script.WriteString(fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s, %s, %s, %s;\n", userBI, userDev, userCare, userNobody))
	// Only the superuser may use the trusted local socket.
	cmd := pgTool(ctx, "psql", nil, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.PG.SockDir, "-p", fmt.Sprint(s.PG.Port), "-U", "postgres", "-d", dbKunden)
	cmd.Stdin = &script
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load sample: %v\n%s", err, out)
	}
	// A keyset for the file provider.
	sampleKeys = filepath.Join(s.Dir, "sample-keyset.json")
	kp, err := crypto.NewProvider(ctx, crypto.Config{Provider: crypto.ProviderFile, AllowInsecureFileKeys: true, File: crypto.FileConfig{Path: sampleKeys}}, zap.NewNop())
	if err != nil {
		return err
	}
	defer kp.Close()
	_, err = kp.Init(ctx)
	return err
}

// policyProxy starts a proxy with the sample policy and the file keyset.
func policyProxy(t *testing.T, policyFile string) *runningProxy {
	t.Helper()
	return startProxy(t, policyConfig(t, policyFile))
}

// policyConfig is the proxy configuration with policyFile and the file
// keyset, the sample database loaded.
func policyConfig(t testing.TB, policyFile string) *config.Config {
	t.Helper()
	kunden(t)
	cfg := proxyConfig()
	cfg.Policy = policyFile
	cfg.Keys = proxyKeys()
	return cfg
}

// samplePolicyWith writes the sample policy with extra entries (YAML lines
// indented as table entries under columns:) and returns its path.
func samplePolicyWith(t *testing.T, columns string) string {
	t.Helper()
	pol, err := os.ReadFile(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	extended := strings.Replace(string(pol), "\ncolumns:\n", "\ncolumns:\n"+columns, 1)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(extended), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// editedPolicy writes the policy file src with each edit (old, new) made
// once, failing when one does not apply, to a file of the test's own, and
// returns its path and the original text.
func editedPolicy(t testing.TB, src string, edits ...[2]string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	orig, text := string(b), string(b)
	for _, e := range edits {
		if !strings.Contains(text, e[0]) {
			t.Fatalf("policy edit does not apply: %q", e[0])
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, orig
}

// proxyKeys is the file key provider holding the sample keyset.
func proxyKeys() crypto.Config {
	return crypto.Config{Provider: crypto.ProviderFile, AllowInsecureFileKeys: true, File: crypto.FileConfig{Path: sampleKeys}}
}

// assertNoLeak fails when any personal value of the sample, or any of its
// health diagnoses, appears in got.
func assertNoLeak(t *testing.T, what, got string, customers []sample.Customer) {
	t.Helper()
	for _, d := range sample.Diagnoses() {
		if strings.Contains(got, d) {
			t.Fatalf("%s: health diagnosis %q leaked", what, d)
		}
	}
	for _, c := range customers {
		for _, v := range c.PersonalValues() {
			if strings.Contains(got, v) {
				t.Fatalf("%s: personal value %q of customer %d leaked", what, v, c.ID)
			}
		}
	}
}
