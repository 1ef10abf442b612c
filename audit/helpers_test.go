package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var (
	testKey  = NewFileSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, 32)))
	testKeys = PublicKeys{KeyID(testKey.Public()): testKey.Public()}
)

// clock is a fake time source: each call advances one second.
type clock struct{ n atomic.Int64 }

var epoch = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time { return epoch.Add(time.Duration(c.n.Add(1)) * time.Second) }

func testConfig(dir string) Config {
	return Config{Path: filepath.Join(dir, "audit.jsonl"), Fsync: FsyncNever, RotateSize: -1, RotateInterval: -1, CheckpointInterval: -1}
}

func newTestWriter(t testing.TB, cfg Config, s seams) *Writer {
	t.Helper()
	if s.now == nil {
		s.now = new(clock).now
	}
	w, err := newWriter(context.Background(), cfg, testKey, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func stmt(i int) Statement {
	return Statement{
		Session:     Session{ConnID: uint64(i%3 + 1), User: "alice", Role: "analyst", Database: "shop"},
		Fingerprint: "SELECT id, email FROM customers WHERE id = $1",
		Kind:        "select",
		Relations:   []string{"public.customers"},
		Columns: []ColumnDecision{
			{Table: "public.customers", Column: "email", Class: "personal", Decision: DecisionTokenized, Transformer: "email", Domain: "customers", KeyVersion: 1},
			{Table: "public.customers", Column: "id", Class: "identifier", Decision: DecisionAllowed},
		},
		Rows: uint64(i), Bytes: uint64(100 * i), Duration: time.Duration(i) * time.Millisecond, Outcome: OutcomeOK,
	}
}

// writeLog writes n statements (and closes, adding a final checkpoint).
func writeLog(t testing.TB, cfg Config, n int) []string {
	t.Helper()
	w := newTestWriter(t, cfg, seams{})
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if err := w.Write(ctx, stmt(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(strings.TrimSuffix(cfg.Path, ".jsonl") + "*.jsonl")
	return files
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(data), "\n")[:strings.Count(string(data), "\n")]
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func connStart() ConnectionStart {
	return ConnectionStart{Session: Session{ConnID: 1, User: "alice", Role: "analyst", Database: "shop"},
		ClientAddr: netip.MustParseAddrPort("10.0.0.7:51234"), ApplicationName: "psql", TLSVersion: "TLS 1.3", AuthMethod: "scram-sha-256"}
}

// sampleEvents returns one valid event of every kind.
func sampleEvents() []Event {
	refused := stmt(7)
	refused.Outcome, refused.SQLState, refused.Rows, refused.Bytes = OutcomeRefused, "42501", 0, 0
	refused.Fingerprint = "SELECT id FROM customers WHERE email = $1"
	refused.Refusal = &Refusal{Rule: "pseudonymised-compared", Table: "public.customers", Column: "email"}
	end := ConnectionEnd{Session: connStart().Session, Duration: 90 * time.Second, Statements: 2, Rows: 7, Bytes: 1400}
	return []Event{
		PolicyLoad{File: "policy.yaml", Hash: "sha256:" + strings.Repeat("ab", 32), Roles: []string{"analyst", "support"}, Outcome: OutcomeOK},
		connStart(),
		AuthFailure{User: "bob", Database: "shop", ClientAddr: netip.MustParseAddrPort("[2001:db8::1]:40000"), ApplicationName: "Metabase", AuthMethod: "scram-sha-256", Reason: "bad_password"},
		stmt(7),
		refused,
		end,
		KeyRotation{Actor: "ops@example.org", Provider: "vault", Previous: 1, Version: 2, Outcome: OutcomeOK},
		Detokenize{Actor: "dpo", Domain: "customers", Tokens: 3, Outcome: OutcomeOK},
	}
}
