package audit

import (
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

func TestFitName(t *testing.T) {
	long := strings.Repeat("ä", 300)
	for _, s := range []string{"", "alice", long, long + "x", "bad\xff\xfeutf8", strings.Repeat("a", 256), strings.Repeat("a", 257)} {
		got := FitName(s)
		if len(got) > maxName || !utf8.ValidString(got) {
			t.Errorf("FitName(%.20q…) = %.20q…, %d bytes", s, got, len(got))
		}
		if len(s) <= maxName && utf8.ValidString(s) && got != s {
			t.Errorf("FitName changed an acceptable name %q", s)
		}
	}
	if FitName(long) == FitName(long+"x") {
		t.Error("two long names fit to the same value")
	}
	f := func(s string) bool { n := FitName(s); return len(n) <= maxName && utf8.ValidString(n) }
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
}

func TestFitCode(t *testing.T) {
	tests := map[string]string{"": "", "Select": "Select", "sql_analysis": "sql_analysis", "Alter Table": "Alter_Table",
		"_x": "x_x", " lead": "xlead", strings.Repeat("A", 100): strings.Repeat("A", 64), "ü": "x_"}
	for in, want := range tests {
		if got := FitCode(in); got != want {
			t.Errorf("FitCode(%q) = %q, want %q", in, got, want)
		}
	}
	f := func(s string) bool { c := FitCode(s); return c == "" && s == "" || isCode(c) }
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
}
