package integration

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// The shop sample database, beside kunden, with the same users.
const (
	dbShop     = "shop"
	shopSize   = 60
	shopSeed   = 42
	shopPolicy = "../configs/sample/shop-policy.yaml"
)

var (
	shopOnce sync.Once
	shopErr  error
)

// shop loads the shop sample database once (after kunden, whose users it
// grants SELECT to) and returns its seeded personal values.
func shop(t testing.TB) []string {
	t.Helper()
	kunden(t)
	shopOnce.Do(func() { shopErr = loadShop(shared.stack) })
	if shopErr != nil {
		t.Fatalf("shop database: %v", shopErr)
	}
	return sample.ShopPersonalValues(shopSize, shopSeed)
}

func loadShop(s *stack.Stack) error {
	ctx := context.Background()
	if err := s.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", dbShop, userAlice)); err != nil {
		return err
	}
	var script bytes.Buffer
	if err := sample.WriteShop(&script, shopSize, shopSeed); err != nil {
		return err
	}
	script.WriteString(fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s, %s, %s, %s;\n", userBI, userDev, userCare, userNobody))
	cmd := pgTool(ctx, "psql", nil, "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1", "-h", s.PG.SockDir, "-p", fmt.Sprint(s.PG.Port), "-U", "postgres", "-d", dbShop)
	cmd.Stdin = &script
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load shop: %v\n%s", err, out)
	}
	return nil
}
