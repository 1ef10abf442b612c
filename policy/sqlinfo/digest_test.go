package sqlinfo

import (
	"strings"
	"testing"
)

const testKey = "00112233445566778899aabbccddeeff"

func TestWithDigestOrder(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT email, count(*) FROM customers GROUP BY email",
			"SELECT * FROM (SELECT email, count(*) FROM customers GROUP BY email) pgpseudo_q ORDER BY pg_catalog.sha256(pg_catalog.convert_to(pgpseudo_q.*::pg_catalog.text, 'UTF8') OPERATOR(pg_catalog.||) E'\\\\x" + testKey + "'::pg_catalog.bytea)"},
		{"SELECT email, count(*) AS n FROM customers GROUP BY email ORDER BY n DESC LIMIT 10",
			"SELECT * FROM (SELECT email, count(*) AS n FROM customers GROUP BY email) pgpseudo_q ORDER BY n DESC, pg_catalog.sha256"},
		{"SELECT email, count(*) FROM customers GROUP BY email ORDER BY count(*) DESC LIMIT 3 OFFSET 1",
			") pgpseudo_q ORDER BY 2 DESC, pg_catalog.sha256"},
		{"SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, email",
			"SELECT * FROM (SELECT DISTINCT ON (city) city, email FROM customers ORDER BY city, email) pgpseudo_q ORDER BY pg_catalog.sha256"},
		{"SELECT email FROM customers UNION SELECT full_name FROM customers ORDER BY 1",
			"SELECT * FROM (SELECT email FROM customers UNION SELECT full_name FROM customers) pgpseudo_q ORDER BY 1, pg_catalog.sha256"},
		{"DECLARE c CURSOR FOR SELECT DISTINCT email FROM customers",
			"DECLARE c CURSOR FOR SELECT * FROM (SELECT DISTINCT email FROM customers) pgpseudo_q ORDER BY"},
	}
	for _, tt := range tests {
		got, err := WithDigestOrder(tt.in, []bool{true}, testKey)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if strings.Contains(tt.in, "LIMIT") && !strings.Contains(got, "LIMIT") {
			t.Errorf("%s: LIMIT lost: %s", tt.in, got)
		}
	}
	if _, err := WithDigestOrder("SELECT 1", []bool{true}, "not-hex"); err == nil {
		t.Error("a key that is not hex was accepted")
	}
	multi, err := WithDigestOrder("SET x = 1; SELECT DISTINCT email FROM customers", []bool{false, true}, testKey)
	if err != nil || !strings.HasPrefix(multi, "SET x TO 1; SELECT * FROM (") {
		t.Errorf("multi: %q %v", multi, err)
	}
}
