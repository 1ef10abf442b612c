package audit

import (
	"fmt"
	"testing"
)

// TestChains: a log with its archives is one chain; command logs beside it
// (and their archives) are others.
func TestChains(t *testing.T) {
	got := Chains([]string{"d/audit-detokenize.jsonl", "d/audit.jsonl", "d/audit-00000000000000000042.jsonl",
		"d/audit-keys.jsonl", "d/audit-detokenize-00000000000000000007.jsonl", "e/audit.jsonl"})
	want := [][]string{
		{"d/audit-detokenize.jsonl", "d/audit-detokenize-00000000000000000007.jsonl"},
		{"d/audit.jsonl", "d/audit-00000000000000000042.jsonl"},
		{"d/audit-keys.jsonl"},
		{"e/audit.jsonl"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Chains: %v\nwant %v", got, want)
	}
}
