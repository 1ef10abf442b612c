package policy

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesNonRegularFiles: a FIFO in the policy's place is refused
// at once instead of blocking the reload (and the signals waiting for it).
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	fifo := t.TempDir() + "/policy.yaml"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Load of a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load of a FIFO blocked")
	}
}

func TestMemberOfDatabaseOwnerRefused(t *testing.T) {
	_, err := Parse("p.yaml", []byte("version: 1\nroles:\n  owners:\n    match: {member_of: [pg_database_owner]}\n    actions: {\"*\": allow, special: block}\n    unclassified: allow\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:4: roles.owners.match.member_of[0]: pg_database_owner has no granted members") {
		t.Fatalf("member_of pg_database_owner: %v", err)
	}
}
