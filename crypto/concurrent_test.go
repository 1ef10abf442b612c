package crypto

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// TestTransformConcurrent: a transformer used from several goroutines at
// once (the proxy rewrites a large result's rows on every core, and
// sessions share transformers) gives each call the output it gives alone.
// Run with -race, it also finds shared scratch state.
func TestTransformConcurrent(t *testing.T) {
	ks, err := NewKeyset(testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range typicalInputs() {
		for _, f := range []int16{FormatText, FormatBinary} {
			in := []byte(c.text)
			if f == FormatBinary && c.bin != nil {
				in = c.bin
			}
			tr, err := New(c.spec, ks, c.oid, f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tr.Transform(nil, in)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for g := range errs {
				wg.Go(func() {
					dst := make([]byte, 0, 64)
					for i := range 200 {
						got, err := tr.Transform(dst[:0], in)
						if err == nil && !bytes.Equal(got, want) {
							err = fmt.Errorf("call %d gave %q, alone %q", i, got, want)
						}
						if err != nil {
							errs[g] = err
							return
						}
						dst = got
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Errorf("%s/%s/oid=%d: %v", c.spec.Kind, formatName(f), c.oid, err)
				}
			}
		}
	}
}
