package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/audit"
)

// auditFixture writes a rotated log of n statements with a checkpoint file
// and a signing key file (pubFile its public key), and returns the
// directory.
type auditFixture struct {
	dir, keyFile, pubFile, ckpt string
	files                       []string
}

func newAuditFixture(t *testing.T, n int) auditFixture {
	t.Helper()
	dir := t.TempDir()
	fx := auditFixture{dir: dir, keyFile: filepath.Join(dir, "audit.key"), pubFile: filepath.Join(dir, "audit.key.pub"), ckpt: filepath.Join(dir, "checkpoints")}
	if err := run(context.Background(), []string{"audit", "keygen", "--out", fx.keyFile}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fx.keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	signer, err := audit.LoadSigningKey(fx.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{Path: filepath.Join(dir, "audit.jsonl"), Fsync: audit.FsyncNever, RotateSize: 4096, CheckpointPath: fx.ckpt}
	w, err := audit.New(context.Background(), cfg, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	users := []struct{ user, role string }{{"alice", "analyst"}, {"carol", "support"}}
	for i := range n {
		u := users[i%2]
		s := audit.Statement{
			Session:     audit.Session{ConnID: uint64(i%2 + 1), User: u.user, Role: u.role, Database: "shop"},
			Fingerprint: "SELECT email FROM customers WHERE id = $1", Kind: "select",
			Relations: []string{"public.customers"},
			Columns: []audit.ColumnDecision{{Table: "public.customers", Column: "email", Class: "personal",
				Decision: map[string]audit.Decision{"analyst": audit.DecisionTokenized, "support": audit.DecisionAllowed}[u.role]}},
			Rows: 1, Outcome: audit.OutcomeOK,
		}
		if i == 5 {
			s.Outcome, s.SQLState, s.Rows = audit.OutcomeRefused, "42501", 0
			s.Refusal = &audit.Refusal{Rule: "pseudonymised-compared", Table: "public.customers", Column: "email"}
		}
		if err := w.Write(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	w.Write(ctx, audit.Detokenize{Actor: "dpo", Domain: "customers", Tokens: 2, Outcome: audit.OutcomeOK})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fx.files, _ = filepath.Glob(filepath.Join(dir, "audit*.jsonl"))
	if len(fx.files) < 2 {
		t.Fatalf("files %v", fx.files)
	}
	return fx
}

func runAudit(args ...string) (stdout, stderr string, code int, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"audit"}, args...), &out, &errb)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		code = 1
	}
	return out.String(), errb.String(), code, err
}

func lines(t *testing.T, p string) []string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	l := strings.SplitAfter(string(data), "\n")
	return l[:len(l)-1]
}

func put(t *testing.T, p string, l []string) {
	if err := os.WriteFile(p, []byte(strings.Join(l, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func seqAt(t *testing.T, line string) uint64 {
	var r struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

func TestAuditVerifyTampering(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		tamper func(t *testing.T, fx auditFixture) uint64
	}{
		{"none", "", func(*testing.T, auditFixture) uint64 { return 0 }},
		{"one byte changed", "modified", func(t *testing.T, fx auditFixture) uint64 {
			l := lines(t, fx.files[1])
			seq := seqAt(t, l[2])
			l[2] = strings.Replace(l[2], `"rows":1`, `"rows":2`, 1)
			put(t, fx.files[1], l)
			return seq
		}},
		{"line deleted", "deleted", func(t *testing.T, fx auditFixture) uint64 {
			l := lines(t, fx.files[0])
			seq := seqAt(t, l[2])
			put(t, fx.files[0], slices.Delete(l, 2, 3))
			return seq
		}},
		{"line inserted", "inserted", func(t *testing.T, fx auditFixture) uint64 {
			l := lines(t, fx.files[0])
			seq := seqAt(t, l[3])
			put(t, fx.files[0], slices.Insert(l, 3, strings.Replace(l[1], "alice", "eve", 1)))
			return seq
		}},
		{"lines swapped", "reordered", func(t *testing.T, fx auditFixture) uint64 {
			l := lines(t, fx.files[1])
			seq := seqAt(t, l[2])
			l[2], l[3] = l[3], l[2]
			put(t, fx.files[1], l)
			return seq
		}},
		{"file truncated", "truncated", func(t *testing.T, fx auditFixture) uint64 {
			last := fx.files[len(fx.files)-1]
			l := lines(t, last)
			put(t, last, l[:len(l)-2])
			return seqAt(t, l[len(l)-2])
		}},
		{"rotated file removed", "missing_file", func(t *testing.T, fx auditFixture) uint64 {
			seq := seqAt(t, lines(t, fx.files[1])[0])
			os.Remove(fx.files[1])
			return seq
		}},
		// The chain is public: a record removed and every later hash,
		// prev and seq recomputed still chains, but the signed
		// checkpoints (in the log and in the checkpoint file) do not
		// match it any more.
		{"record deleted, chain recomputed", "rewritten", func(t *testing.T, fx auditFixture) uint64 {
			last := fx.files[len(fx.files)-1]
			l := lines(t, last)
			l = slices.Delete(l, 2, 3)
			var prev string
			if err := json.Unmarshal([]byte(l[0]), &struct{ Prev *string }{&prev}); err != nil {
				t.Fatal(err)
			}
			first := seqAt(t, l[0])
			for i := range l {
				var r audit.Record
				if err := json.Unmarshal([]byte(l[i]), &r); err != nil {
					t.Fatal(err)
				}
				r.Seq, r.Prev, r.Hash = first+uint64(i), prev, ""
				l[i], prev = rehash(t, &r)
			}
			put(t, last, l)
			// The first record that differs from what was signed: the
			// record now where the final checkpoint's covered record was.
			return first + uint64(len(l)) - 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newAuditFixture(t, 40)
			if len(fx.files) < 3 {
				t.Fatalf("want ≥ 3 files, got %v", fx.files)
			}
			want := tt.tamper(t, fx)
			files, _ := filepath.Glob(filepath.Join(fx.dir, "audit*.jsonl"))
			args := append([]string{"verify", "--public-key", fx.pubFile, "--checkpoints", fx.ckpt}, files...)
			out, _, code, err := runAudit(args...)
			if tt.kind == "" {
				if code != 0 || !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, "closed cleanly") {
					t.Fatalf("code %d, %v: %s", code, err, out)
				}
				return
			}
			prefix := fmt.Sprintf("TAMPERED: record %d %s at ", want, tt.kind)
			if code != 1 || !strings.HasPrefix(out, prefix) {
				t.Fatalf("code %d, out %q, want prefix %q (err %v)", code, out, prefix, err)
			}
			// the JSON form says the same
			out, _, code, _ = runAudit(append([]string{"verify", "--format", "json"}, args[1:]...)...)
			var res struct {
				Status  string
				Problem *audit.TamperError
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Status != "tampered" ||
				string(res.Problem.Kind) != tt.kind || res.Problem.Record != want {
				t.Fatalf("json: code %d %v %s", code, err, out)
			}
		})
	}
}

// rehash seals r as the writer would: anyone can, the chain is public.
func rehash(t *testing.T, r *audit.Record) (line, sum string) {
	t.Helper()
	l, sum, err := audit.EncodeLine(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(l), sum
}

func TestAuditExitStatus(t *testing.T) {
	fx := newAuditFixture(t, 10)
	wrongKey := filepath.Join(fx.dir, "wrong.key")
	run(context.Background(), []string{"audit", "keygen", "--out", wrongKey}, &bytes.Buffer{}, &bytes.Buffer{})
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"ok, flags after files", append(append([]string{"verify"}, fx.files...), "--public-key", fx.pubFile), 0},
		{"no subcommand", nil, 2},
		{"unknown subcommand", []string{"frob"}, 2},
		{"no files", []string{"verify", "--public-key", fx.pubFile}, 2},
		{"no key", append([]string{"verify"}, fx.files...), 2},
		{"bad flag", []string{"verify", "--colour", "x"}, 2},
		{"missing public key file", append([]string{"verify", "--public-key", filepath.Join(fx.dir, "none")}, fx.files...), 3},
		{"a private key is not a public key", append([]string{"verify", "--public-key", fx.keyFile}, fx.files...), 3},
		{"another signer's public key", append([]string{"verify", "--public-key", wrongKey + ".pub"}, fx.files...), 3},
		{"unreadable log", []string{"verify", "--public-key", fx.pubFile, filepath.Join(fx.dir, "none.jsonl")}, 4},
		{"query bad decision", append([]string{"query", "--decision", "peeked"}, fx.files...), 2},
		{"query bad format", append([]string{"query", "--format", "xml"}, fx.files...), 2},
		{"query bad time", append([]string{"query", "--since", "yesterday"}, fx.files...), 2},
		{"report unreadable", []string{"report", filepath.Join(fx.dir, "none.jsonl")}, 4},
		{"keygen refuses to overwrite", []string{"keygen", "--out", fx.keyFile}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code, err := runAudit(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (%v)\n%s%s", code, tt.code, err, out, errs)
			}
		})
	}
}

func TestAuditQuery(t *testing.T) {
	fx := newAuditFixture(t, 40)
	t.Run("json", func(t *testing.T) {
		out, _, code, err := runAudit(append([]string{"query", "--user", "carol", "--decision", "allowed", "--format", "json"}, fx.files...)...)
		if code != 0 {
			t.Fatal(err)
		}
		ls := strings.Split(strings.TrimSpace(out), "\n")
		if len(ls) != 20 {
			t.Fatalf("%d records", len(ls))
		}
		for _, l := range ls {
			var r audit.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Statement.Session.User != "carol" {
				t.Fatalf("%v: %s", err, l)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		out, _, code, err := runAudit(append([]string{"query", "--outcome", "refused", "--format", "csv"}, fx.files...)...)
		rows, cerr := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 0 || cerr != nil || len(rows) != 2 || rows[1][4] != "carol" || !slices.Contains(rows[1], "pseudonymised-compared") {
			t.Fatalf("%v %v %q", err, cerr, rows)
		}
	})
	t.Run("table", func(t *testing.T) {
		out, _, code, err := runAudit(append([]string{"query", "--role", "analyst", "--column", "customers.email", "--since", "2000-01-01", "--until", "2100-01-01"}, fx.files...)...)
		ls := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(ls) != 21 || !strings.HasPrefix(ls[0], "SEQ") || !strings.Contains(ls[1], "public.customers.email=tokenized") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("window excludes everything", func(t *testing.T) {
		out, _, _, _ := runAudit(append([]string{"query", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--format", "csv"}, fx.files...)...)
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("%s", out)
		}
	})
}

func TestAuditReport(t *testing.T) {
	fx := newAuditFixture(t, 40)
	out, _, code, err := runAudit(append([]string{"report", "--since", "24h"}, fx.files...)...)
	if code != 0 {
		t.Fatal(err)
	}
	for _, want := range []string{"role analyst, user alice: 20 statements, 0 refused", "role support, user carol: 20 statements, 1 refused",
		"in clear:", "pseudonymised:", "public.customers.email  tokenized", "pseudonymised-compared", "dpo"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out, _, code, _ = runAudit(append([]string{"report", "--format", "json"}, fx.files...)...)
	var rp audit.Report
	if err := json.Unmarshal([]byte(out), &rp); err != nil || code != 0 || len(rp.Subjects) != 2 || len(rp.Detokens) != 1 {
		t.Fatalf("%v %s", err, out)
	}
}

// TestAuditVerifyFindsCheckpointsOfRenamedFiles: the checkpoint file is
// found by the chain's name, so renaming the active file to an archive's
// name does not hide a log cut back to its first checkpoint.
func TestAuditVerifyFindsCheckpointsOfRenamedFiles(t *testing.T) {
	dir := t.TempDir()
	key := signedLogs(t, dir, "audit.jsonl")
	logPath := filepath.Join(dir, "audit.jsonl")
	renamed := filepath.Join(dir, "audit-00000000000000000002.jsonl")
	put(t, renamed, lines(t, logPath)[:2])
	os.Remove(logPath)
	out, _, code, _ := runAudit("verify", "--public-key", key, renamed)
	if code != 1 || !strings.Contains(out, "truncated") {
		t.Fatalf("code %d: %s", code, out)
	}
}

// TestAuditVerifyNoticesARemovedLog: a glob no longer names a log that was
// removed, but its checkpoint file is still beside the others.
func TestAuditVerifyNoticesARemovedLog(t *testing.T) {
	dir := t.TempDir()
	key := signedLogs(t, dir, "audit.jsonl", "audit-detokenize.jsonl")
	glob := func() []string { f, _ := filepath.Glob(filepath.Join(dir, "audit*.jsonl")); return f }
	if out, _, code, _ := runAudit(append([]string{"verify", "--public-key", key}, glob()...)...); code != 0 {
		t.Fatalf("untouched: %d %s", code, out)
	}
	os.Remove(filepath.Join(dir, "audit-detokenize.jsonl"))
	out, _, code, _ := runAudit(append([]string{"verify", "--public-key", key}, glob()...)...)
	if code != 1 || !strings.Contains(out, "missing_file") || !strings.Contains(out, "audit-detokenize.jsonl") {
		t.Fatalf("a removed log: %d %s", code, out)
	}
}

// signedLogs writes a closed log of three records in dir under each name,
// signed by a new key, and returns the public key file.
func signedLogs(t *testing.T, dir string, names ...string) string {
	t.Helper()
	key := filepath.Join(dir, "k.pem")
	if _, _, code, err := runAudit("keygen", "--out", key); code != 0 {
		t.Fatal(err)
	}
	signer, err := audit.LoadSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		w, err := audit.New(context.Background(), audit.Config{Path: filepath.Join(dir, name), Fsync: audit.FsyncNever}, signer, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := w.Write(context.Background(), audit.Detokenize{Actor: "dpo", Domain: "customers", Tokens: 1, Outcome: audit.OutcomeOK}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return key + ".pub"
}
