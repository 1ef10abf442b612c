package proxy

import "testing"

// TestFlight: without a policy, the server owes replies to Syncs, Queries
// and flushed requests, until its ReadyForQuery.
func TestFlight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		client   string // message types sent
		server   string // message types received after them
		wantOwed bool
	}{
		{"nothing", "", "", false},
		{"lone Flush", "H", "", false},
		{"lone Parse", "P", "", false},
		{"Parse, Bind, Execute unsynced", "PBE", "", false},
		{"flushed Execute", "PBEH", "", true},
		{"flushed Execute answered, no Sync yet", "PBEH", "12C", true}, // owed until a ReadyForQuery
		{"Sync", "PBES", "", true},
		{"Sync answered", "PBES", "12CZ", false},
		{"Query", "Q", "", true},
		{"Query answered", "Q", "TDCZ", false},
		{"two Queries, one answered", "QQ", "CZ", true},
		{"flushed, then synced and answered", "PHS", "1Z", false},
		{"stray ReadyForQuery", "", "Z", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f flight
			for _, c := range []byte(tc.client) {
				f.sent(c)
			}
			for _, c := range []byte(tc.server) {
				f.received(c)
			}
			if got := f.owed(); got != tc.wantOwed {
				t.Fatalf("owed %v, want %v", got, tc.wantOwed)
			}
		})
	}
}
