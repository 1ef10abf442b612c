package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	base := "upstream: {address: 127.0.0.1:5432, tls: {mode: disable}}\nauth: {auth_user: a, auth_password_file: " + pw + "}\nkeys: {provider: file, file: {path: " + filepath.Join(dir, "k") + "}}\npolicy: "
	os.WriteFile(cfg, []byte(base+pol+"\n"), 0o600)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"policy", "check", "--config", cfg}, &out, &errb); err != nil {
		t.Fatalf("policy check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "is valid") || !strings.Contains(out.String(), "bi_analyst") {
		t.Fatalf("output: %s", out.String())
	}
	bad := filepath.Join(dir, "bad-policy.yaml")
	os.WriteFile(bad, []byte("version: 1\nroles:\n  r:\n    match: {users: [x]}\n    actions: {special: allow}\n"), 0o600)
	os.WriteFile(cfg, []byte(base+bad+"\n"), 0o600)
	err := run(context.Background(), []string{"policy", "check", "--config", cfg}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "bad-policy.yaml:5: roles.r.actions.special") {
		t.Fatalf("invalid policy: %v", err)
	}
}
