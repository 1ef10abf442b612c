package sample

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgpseudo/pgpseudo/policy"
)

func TestShopDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	if err := WriteShop(&a, 50, 7); err != nil {
		t.Fatal(err)
	}
	WriteShop(&b, 50, 7)
	WriteShop(&c, 50, 8)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different output")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("different seeds, same output")
	}
	// Every seeded personal value is in the script the database loads.
	for _, v := range ShopPersonalValues(50, 7) {
		if !strings.Contains(a.String(), v) {
			t.Fatalf("personal value %q is not in the script", v)
		}
	}
}

func TestShopPolicyLoads(t *testing.T) {
	p, err := policy.Load("shop-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Tables()); got != 8 {
		t.Errorf("%d classified tables, want 8", got)
	}
}
