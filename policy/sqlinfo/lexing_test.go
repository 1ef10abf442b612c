package sqlinfo

import "testing"

// pg15Keywords is pg_get_keywords() of a PostgreSQL 15 server for the words
// the tests use.
var pg15Keywords = Keywords{"select": 'R', "from": 'R', "as": 'R', "upper": 0, "current_user": 'R', "where": 'R',
	"and": 'R', "is": 'T', "null": 'R', "order": 'R', "by": 'R', "limit": 'R', "group": 'R', "count": 0, "with": 'R'}

func TestCheckKeywords(t *testing.T) {
	tests := []struct {
		sql  string
		skew string // "" = passes
	}{
		{`SELECT upper(k.email) FROM kunden AS k`, ""},
		{`SELECT upper(system_user) FROM kunden AS k(a, b, "system_user")`, "system_user"},
		{`SELECT upper("system_user") FROM kunden AS k(a, b, "system_user")`, ""},
		{`SELECT 'system_user', "json" FROM t`, ""},
		{`SELECT json(x) FROM t`, "json"},
		{`SELECT JSON_SCALAR(x) FROM t`, "json_scalar"},
		{`SELECT path, source, format FROM files`, ""}, // unreserved in 17, names in 15
		{`SELECT current_user`, ""},
		{`-- system_user in a comment
SELECT 1 /* json() */`, ""},
	}
	for _, tt := range tests {
		skew, err := CheckKeywords(tt.sql, pg15Keywords)
		if err != nil {
			t.Fatalf("%s: %v", tt.sql, err)
		}
		got := ""
		if skew != nil {
			got = skew.Word
		}
		if got != tt.skew {
			t.Errorf("%s: skew %q, want %q", tt.sql, got, tt.skew)
		}
	}
	// A newer server's keyword that pgpseudo's parser reads as a name.
	skew, _ := CheckKeywords(`SELECT frobnicate FROM t`, Keywords{"select": 'R', "from": 'R', "frobnicate": 'R'})
	if skew == nil || skew.Word != "frobnicate" || skew.Parser != 0 || skew.Server != 'R' {
		t.Errorf("server-only reserved word: %+v", skew)
	}
}

func TestSafeClientEncoding(t *testing.T) {
	for _, enc := range []string{"UTF8", "utf-8", "Unicode", "utf8", "UTF_8"} {
		if !SafeClientEncoding(enc) {
			t.Errorf("%s counted unsafe", enc)
		}
	}
	for _, enc := range []string{"SJIS", "Shift_JIS", "MS_Kanji", "WIN932", "Windows-932", "SHIFT_JIS_2004", "BIG5", "Win950", "GBK", "CP936", "windows936", "UHC", "win949", "JOHAB", "GB18030", "", "klingon",
		"LATIN1", "ISO-8859-15", "WIN1252", "EUC_JP", "SQL_ASCII", "KOI8-R", "KOI8R", "WIN1251", "utf16"} {
		if SafeClientEncoding(enc) {
			t.Errorf("%s counted safe", enc)
		}
	}
}

func TestLockedSetting(t *testing.T) {
	tests := []struct {
		name, value string
		ok, locked  bool
	}{
		{"standard_conforming_strings", "on", true, true},
		{"STANDARD_CONFORMING_STRINGS", "off", true, true},
		{"client_encoding", "UTF8", true, false},
		{"client_encoding", "sjis", true, true},
		{"names", "BIG5", true, true},
		{"client_encoding", "", false, true},
		{"client_encoding", "", true, false}, // RESET
		{"plan_cache_mode", "force_custom_plan", true, true},
		{"work_mem", "64MB", true, false},
	}
	for _, tt := range tests {
		if got := LockedSetting(tt.name, tt.value, tt.ok) != ""; got != tt.locked {
			t.Errorf("%s = %q: locked %v, want %v", tt.name, tt.value, got, tt.locked)
		}
	}
}
