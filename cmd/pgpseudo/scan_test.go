package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/policy"
)

func TestScanHelpAndUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"scan", "--help"}, 0, "usage: pgpseudo scan"},
		{[]string{"scan", "-h"}, 0, "--merge"},
		{[]string{"scan"}, 2, ""},
		{[]string{"scan", "--config", "x.yaml", "--format", "xml"}, 2, ""},
		{[]string{"scan", "--config", "x.yaml", "--merge", "p.yaml", "--format", "json"}, 2, ""},
		{[]string{"scan", "--config", "x.yaml", "extra"}, 2, ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if got := exitCode(err); got != tt.code {
			t.Errorf("%v: exit %d (%v), want %d", tt.args, got, err, tt.code)
		}
		if !strings.Contains(stdout.String(), tt.stdout) {
			t.Errorf("%v: stdout %q does not contain %q", tt.args, stdout.String(), tt.stdout)
		}
	}
}

func TestWithScanHint(t *testing.T) {
	pol, err := policy.Parse("p.yaml", []byte(`version: 1
columns:
  public.customers:
    email: {category: contact}
roles:
  everyone: {match: {users: ["*"]}, actions: {"*": allow, special: allow}, legal_basis: test, unclassified: allow}
`))
	if err != nil {
		t.Fatal(err)
	}
	customers := policy.TableName{Schema: "public", Table: "customers"}
	health := policy.TableName{Schema: "public", Table: "health_records"}
	tests := []struct {
		f    policy.Finding
		want string
	}{
		{policy.Finding{Severity: policy.SeverityInfo, Table: customers, Column: "phone", Message: "unclassified (text)"},
			"warning: public.customers.phone: unclassified, scan would classify as contact (name matches phone number (phone))"},
		{policy.Finding{Severity: policy.SeverityInfo, Table: customers, Column: "amount", Message: "unclassified (numeric)"},
			"info: public.customers.amount: unclassified (numeric)"},
		{policy.Finding{Severity: policy.SeverityInfo, Table: health, Column: "recorded_at", Message: "unclassified (date)"},
			"warning: public.health_records.recorded_at: unclassified, scan would classify as special (table name matches health)"},
		{policy.Finding{Severity: policy.SeverityInfo, Table: health, Column: "record_id", Message: "unclassified (bigint)"},
			"info: public.health_records.record_id: unclassified (bigint)"},
		{policy.Finding{Severity: policy.SeverityError, Table: customers, Column: "email", Message: "no such column"},
			"error: public.customers.email: no such column"},
	}
	for _, tt := range tests {
		if got := withScanHint(pol, tt.f).String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// TestScanProgress: a stderr that is not a terminal gets progress lines
// only once the scan has run longer than progressAfter, and they carry
// counts only.
func TestScanProgress(t *testing.T) {
	tests := []struct {
		started time.Duration // ago
		want    string
	}{
		{0, ""},
		{progressAfter + time.Second, "scanned 3/12 tables…\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		progress(&b, time.Now().Add(-tt.started))(3, 12)
		if b.String() != tt.want {
			t.Errorf("started %v ago: %q, want %q", tt.started, b.String(), tt.want)
		}
	}
}
