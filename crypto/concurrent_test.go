package crypto

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// TestTransformConcurrent: a transformer used from several goroutines at
// once (the proxy rewrites a large result's rows on every core) gives
// each call the output it gives alone. Run with -race, it also finds
// shared scratch state. The wrappers count: Styled (a session's
// DateStyle) keeps per-call scratch too.
func TestTransformConcurrent(t *testing.T) {
	ks, err := NewKeyset(testNow)
	if err != nil {
		t.Fatal(err)
	}
	german, ok := ParseDateStyle("German, DMY")
	if !ok {
		t.Fatal("German, DMY")
	}
	year, err := New(Spec{Kind: KindYear}, ks, OIDDate, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	shift, err := New(Spec{Kind: KindShift, Domain: "d", Days: 30}, ks, OIDTimestamp, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	styled := []struct {
		name string
		tr   Transformer
		in   []string
	}{
		{"styled year/date", Styled(year, OIDDate, german), []string{"29.02.2024", "01.01.1990", "31.12.1969"}},
		{"styled shift/timestamp", Styled(shift, OIDTimestamp, german), []string{"29.02.2024 13:45:00", "01.01.1990 00:00:01.5"}},
	}
	for _, c := range styled {
		var ins [][]byte
		for _, in := range c.in {
			ins = append(ins, []byte(in))
		}
		concurrently(t, c.name, c.tr, ins...)
	}
	for _, c := range typicalInputs() {
		for _, f := range []int16{FormatText, FormatBinary} {
			in := c.input(f)
			tr, err := New(c.spec, ks, c.oid, f)
			if err != nil {
				t.Fatal(err)
			}
			ins := [][]byte{in}
			if v := variant(in); v != nil {
				if _, err := tr.Transform(nil, v); err == nil {
					ins = append(ins, v)
				}
			}
			concurrently(t, fmt.Sprintf("%s/%s/oid=%d", c.spec.Kind, formatName(f), c.oid), tr, ins...)
		}
	}
}

// variant is in with its last digit or lower-case letter moved on by one
// (the low bit of its last byte for binary values), so that goroutines
// transform different values at once and a shared buffer shows in the
// outputs, not only under -race. Nil when nothing can change.
func variant(in []byte) []byte {
	v := bytes.Clone(in)
	for i := len(v) - 1; i >= 0; i-- {
		switch b := v[i]; {
		case b >= '0' && b <= '8', b >= 'a' && b <= 'y':
			v[i]++
			return v
		case b < 0x20 || b >= 0x7f:
			v[i] ^= 1
			return v
		}
	}
	return nil
}

// concurrently transforms the inputs on four goroutines at once, each
// goroutine its own input in turn, and compares each output with the one
// tr gives alone.
func concurrently(t *testing.T, name string, tr Transformer, ins ...[]byte) {
	t.Helper()
	want := make([][]byte, len(ins))
	for i, in := range ins {
		var err error
		if want[i], err = tr.Transform(nil, in); err != nil {
			t.Fatalf("%s %q: %v", name, in, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			dst := make([]byte, 0, 64)
			for i := range 200 {
				k := (g + i) % len(ins)
				got, err := tr.Transform(dst[:0], ins[k])
				if err == nil && !bytes.Equal(got, want[k]) {
					err = fmt.Errorf("call %d on %q gave %q, alone %q", i, ins[k], got, want[k])
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
			t.Errorf("%s: %v", name, err)
		}
	}
}
