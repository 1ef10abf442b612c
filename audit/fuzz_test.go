package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadAndVerify feeds any file content to the verifier and the
// readers: they must never panic and must report an error for a file no
// checkpoint signs (the fuzzer cannot sign).
func FuzzReadAndVerify(f *testing.F) {
	cfg := testConfig(f.TempDir())
	for _, p := range writeLog(f, cfg, 3) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"seq":1,"type":"statement","statement":{}}` + "\n"))
	f.Add([]byte("\n\n{}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "audit.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		res, err := Verify(ctx, testKeys, []string{path}, VerifyOptions{})
		if err == nil && res.Unsigned > 0 {
			t.Fatalf("unsigned records verified: %+v", res)
		}
		_ = ReadRecords(ctx, []string{path}, func(r *Record) error { return nil })
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if r, err := decodeRecord(line); err == nil && r.Seq == 0 {
				t.Fatalf("a record without a sequence number decoded: %q", line)
			}
		}
	})
}
