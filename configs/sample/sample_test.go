package sample

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgpseudo/pgpseudo/policy"
)

func TestDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, 50, 7); err != nil {
		t.Fatal(err)
	}
	Write(&b, 50, 7)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different output")
	}
	var c bytes.Buffer
	Write(&c, 50, 8)
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("different seeds, same output")
	}
}

func TestIBANsValid(t *testing.T) {
	for _, c := range Customers(200, 1) {
		s := c.IBAN[4:] + c.IBAN[:4]
		rem := 0
		for _, ch := range s {
			v := int(ch - '0')
			if ch >= 'A' {
				v = int(ch-'A') + 10
				rem = (rem*100 + v) % 97
				continue
			}
			rem = (rem*10 + v) % 97
		}
		if rem != 1 || !strings.HasPrefix(c.IBAN, "DE") || len(c.IBAN) != 22 {
			t.Fatalf("invalid IBAN %s", c.IBAN)
		}
	}
}

func TestPolicyLoads(t *testing.T) {
	if _, err := policy.Load("policy.yaml"); err != nil {
		t.Fatal(err)
	}
}
