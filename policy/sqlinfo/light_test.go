package sqlinfo

import (
	"testing"
)

func TestLightKey(t *testing.T) {
	tests := []struct {
		sql, key string
		ok       bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "SELECT abalance FROM pgbench_accounts WHERE aid = 0;", true},
		{"select a from t where a>=12 and b<3.25 and c <> 7", "select a from t where a>=0 and b<0.0 and c <> 0", true},
		{"SELECT f(x => 5) FROM t", "SELECT f(x => 0) FROM t", true},
		// Numbers that are not compared, continue a name or run into one
		// are kept as written.
		{"SELECT 1, t1.c2 FROM t1 LIMIT 5", "SELECT 1, t1.c2 FROM t1 LIMIT 5", true},
		{"SELECT a FROM t WHERE a = 1e5", "SELECT a FROM t WHERE a = 1e5", true},
		{"SELECT a FROM t WHERE a = 0x1F", "SELECT a FROM t WHERE a = 0x1F", true},
		{"SELECT a FROM t WHERE a = 1_000", "SELECT a FROM t WHERE a = 1_000", true},
		{"SELECT a FROM t WHERE a = .5", "SELECT a FROM t WHERE a = .5", true},
		{"SELECT a FROM t WHERE a = 5.", "SELECT a FROM t WHERE a = 5.", true},
		{"SELECT a FROM t WHERE a = 1.2.3", "SELECT a FROM t WHERE a = 1.2.3", true},
		{"SELECT a FROM t WHERE a = 7 AND (b=8)", "SELECT a FROM t WHERE a = 0 AND (b=0)", true},
		// Anything that could start a literal, comment, cast or parameter
		// has no key.
		{"SELECT a FROM t WHERE a = '5'", "", false},
		{"SELECT a FROM t WHERE a = -5", "", false},
		{"SELECT a FROM t WHERE a = 5 -- x", "", false},
		{"SELECT a FROM t WHERE a = 5 /* x */", "", false},
		{"SELECT a FROM t WHERE a = $1", "", false},
		{"SELECT a::int FROM t", "", false},
		{`SELECT "A" FROM t WHERE a = 5`, "", false},
		{"SELECT a FROM t WHERE a = E\\x", "", false},
		{"SELECT a FROM tä WHERE a = 5", "", false},
	}
	for _, tt := range tests {
		key, ok := LightKey(tt.sql)
		if key != tt.key || ok != tt.ok {
			t.Errorf("LightKey(%q) = %q, %v; want %q, %v", tt.sql, key, ok, tt.key, tt.ok)
		}
	}
}

// FuzzLightKey checks LightKey's promise: a text and its key (itself a
// text of the same family) get the same Light description and the same
// normalised text.
func FuzzLightKey(f *testing.F) {
	for _, s := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
		"select a from t where a>=12 and b<3.25 and c <> 7; select 2 where x=3",
		"SELECT f(x => 5), y FROM t WHERE (a, b) = (1, 2) AND c IN (3, 4) LIMIT 5 OFFSET 9",
		"WITH c AS (SELECT * FROM t WHERE id = 44) SELECT * FROM c, u WHERE u.n > 17.5",
		"SELECT numeric(10, 2) FROM t WHERE float(24) = 3 AND bit(3) > 1",
		"SELECT * FROM t WHERE a=1e5 OR b=0x1F OR c=1_000 OR d=.5 OR e=5.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		key, ok := LightKey(sql)
		if !ok {
			return
		}
		if again, _ := LightKey(key); again != key {
			t.Fatalf("the key of %q is %q, whose key is %q", sql, key, again)
		}
		a, errA := Light(sql)
		b, errB := Light(key)
		if (errA == nil) != (errB == nil) || len(a) != len(b) {
			t.Fatalf("Light(%q) = %+v, %v; Light(key %q) = %+v, %v", sql, a, errA, key, b, errB)
		}
		for i := range a {
			if a[i].Kind != b[i].Kind || a[i].Fingerprint != b[i].Fingerprint || (a[i].Fingerprint == "") != (b[i].Fingerprint == "") {
				t.Fatalf("statement %d: %q is %s %s, its key %q is %s %s", i, a[i].Text, a[i].Kind, a[i].Fingerprint, b[i].Text, b[i].Kind, b[i].Fingerprint)
			}
			if x, y := NormalizedText(a[i].Text), NormalizedText(b[i].Text); x != y {
				t.Fatalf("statement %d normalises to %q, its key's to %q", i, x, y)
			}
		}
	})
}
