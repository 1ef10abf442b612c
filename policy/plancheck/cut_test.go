package plancheck

import "testing"

func TestSmallShift(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"30 days", true}, {"1 year 2 mons", true}, {"6 months", true}, {"02:00:00", true}, {"1 day 02:30:00", true},
		{"-7 days", true}, {"999 years", true}, {"5 secs", true},
		{"300000 years", false}, {"9999 years", false}, {"99999 millennium", false}, {"5 decades", false}, {"100000 days", false},
		{"1 day 123456:00:00", false}, {"", false}, {"infinity", false},
	} {
		if got := smallShift(tc.s); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.s, got, tc.want)
		}
	}
}
