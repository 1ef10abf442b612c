package crypto

import (
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestKeyset(t testing.TB) *Keyset {
	t.Helper()
	ks, err := NewKeyset(testNow)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mustNew(t testing.TB, spec Spec, ks *Keyset, oid uint32, format int16) Transformer {
	t.Helper()
	tr, err := New(spec, ks, oid, format)
	if err != nil {
		t.Fatalf("New(%+v, oid %d, format %d): %v", spec, oid, format, err)
	}
	return tr
}

func apply(t testing.TB, tr Transformer, in []byte) []byte {
	t.Helper()
	out, err := tr.Transform(nil, in)
	if err != nil {
		t.Fatalf("Transform(%.80q): %v", in, err)
	}
	return out
}
