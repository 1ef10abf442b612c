package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestVarcharJoinOnTokens: two varchar columns of one token domain join
// (the server's plan compares them as (a)::text = (b)::text); a cast that
// changes what equality means (a length that cuts values, name) or a
// function of the column is still refused.
func TestVarcharJoinOnTokens(t *testing.T) {
	shop(t)
	p := startProxy(t, policyConfig(t, shopPolicy))
	c := connect(t, p.dsn(userDev, samplePass, dbShop))
	ctx := context.Background()
	var n, direct int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON c.email = n.email").Scan(&n); err != nil {
		t.Fatalf("join on two varchar columns of one domain: %v", err)
	}
	d := connect(t, directDSN(userDev, samplePass, dbShop))
	if err := d.QueryRow(ctx, "SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON c.email = n.email").Scan(&direct); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != direct {
		t.Fatalf("the join through the proxy counted %d rows, directly %d", n, direct)
	}
	for _, q := range []string{
		"SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON c.email::varchar(3) = n.email::varchar(3)",
		"SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON c.email::name = n.email::name",
		"SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON left(c.email, 3) = left(n.email, 3)",
		"SELECT count(*) FROM newsletter_subscriptions n JOIN customers c ON c.email::bpchar = n.email::bpchar",
		"SELECT count(*) FROM customers c WHERE c.email::text = 'someone@example.org'",
	} {
		_, err := c.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: %v, want 42501", q, err)
		}
	}
}
