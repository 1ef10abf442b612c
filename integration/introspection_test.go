package integration

import (
	"strings"
	"testing"
	"time"
)

// TestPsqlIntrospection: psql's schema browsing (\dt, \d customers,
// \d+ customers, \dv, \df) works for a restricted role through the proxy:
// catalog queries are recognised and nothing in their output is withheld.
func TestPsqlIntrospection(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	env := libpqEnv(p.port, userBI, samplePass, dbKunden)
	for _, tt := range []struct{ cmd, want string }{
		{`\dt`, "support_tickets"},
		{`\d customers`, "customers_email_key"},
		{`\d+ customers`, "Access method"},
		{`\d orders`, "orders_customer_id_fkey"},
		{`\dn`, "public"},
		{`\df`, "List of functions"},
		{`\l`, "kunden"},
	} {
		out, errOut, err := runTool(t, time.Minute, "psql", env, "-X", "-c", tt.cmd)
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", tt.cmd, err, errOut)
		}
		if !strings.Contains(out, tt.want) || strings.Contains(errOut, "withheld") {
			t.Fatalf("psql %s: output lacks %q or values were withheld:\n%s\n%s", tt.cmd, tt.want, out, errOut)
		}
	}
}
