package rewrite

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestCanonicalNaN(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const arr8 = "00000001" + "00000001" + "000002bd" + "00000003" + "00000001" // 1-D float8[] of 3, lower bound 1
	for _, tc := range []struct {
		oid       uint32
		in, want  string
		wantError bool
	}{
		{701, "fff8000000000000", "7ff8000000000000", false},
		{701, "7ff8000000000001", "7ff8000000000000", false},
		{701, "8000000000000000", "8000000000000000", false}, // -0 stays: it prints differently
		{701, "3ff0000000000000", "3ff0000000000000", false},
		{700, "ffc00000", "7fc00000", false},
		{700, "3f800000", "3f800000", false},
		{701, "3ff0", "", true},
		{1022, arr8 + "00000008fff8000000000000" + "ffffffff" + "000000083ff0000000000000",
			arr8 + "000000087ff8000000000000" + "ffffffff" + "000000083ff0000000000000", false},
		{1022, arr8 + "00000004fff80000", "", true},
		// (ARRAY[NULL, 1])[2:2] keeps the NULL flag; ARRAY[1] has none.
		{1007, "00000001" + "00000001" + "00000017" + "00000001" + "00000001" + "0000000400000001",
			"00000001" + "00000000" + "00000017" + "00000001" + "00000001" + "0000000400000001", false},
		{1007, "00000001" + "00000000" + "00000017" + "00000002" + "00000001" + "ffffffff" + "0000000400000001",
			"00000001" + "00000001" + "00000017" + "00000002" + "00000001" + "ffffffff" + "0000000400000001", false},
	} {
		tr := CanonicalNaN(tc.oid)
		got, err := tr.Transform([]byte("x"), h(tc.in))
		if tc.wantError {
			if err == nil {
				t.Errorf("%d %s: no error", tc.oid, tc.in)
			}
			if !bytes.Equal(got, []byte("x")) {
				t.Errorf("%d %s: dst changed on error", tc.oid, tc.in)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, append([]byte("x"), h(tc.want)...)) {
			t.Errorf("%d %s: %x, %v; want %s", tc.oid, tc.in, got, err, tc.want)
		}
	}
	if CanonicalNaN(1700) != nil || CanonicalNaN(25) != nil {
		t.Error("numeric and text hold no float NaNs to rewrite")
	}
}
