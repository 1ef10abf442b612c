package scram

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
)

// makeVerifier builds a verifier the way PostgreSQL does for a password.
func makeVerifier(t *testing.T, password string) (*Verifier, []byte) {
	t.Helper()
	salt := []byte("0123456789abcdef")
	salted, err := pbkdf2.Key(sha256.New, password, salt, 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := hmacSum(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := hmacSum(salted, "Server Key")
	s := fmt.Sprintf("SCRAM-SHA-256$4096:%s$%s:%s", base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(stored[:]), base64.StdEncoding.EncodeToString(serverKey))
	v, err := ParseVerifier(s)
	if err != nil {
		t.Fatal(err)
	}
	return v, clientKey
}

func exchange(srv *Server, cli *Client) error {
	mech, first, err := cli.ClientFirst(srv.Mechanisms())
	if err != nil {
		return err
	}
	sf, err := srv.ClientFirst(mech, first)
	if err != nil {
		return err
	}
	cf, err := cli.ServerFirst(sf)
	if err != nil {
		return err
	}
	final, err := srv.ClientFinal(cf)
	if err != nil {
		return err
	}
	return cli.ServerFinal(final)
}

func TestExchange(t *testing.T) {
	v, key := makeVerifier(t, "secret")
	_, otherKey := makeVerifier(t, "wrong")
	cb := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name            string
		srvCB, cliCB    []byte
		clientKey       []byte
		verifier        *Verifier
		want            error
		wantMechanismCB bool
	}{
		{"plain", nil, nil, key, v, nil, false},
		{"channel binding", cb, cb, key, v, nil, true},
		{"wrong password", nil, nil, otherKey, v, ErrAuthFailed, false},
		{"wrong password with binding", cb, cb, otherKey, v, ErrAuthFailed, true},
		{"binding mismatch", cb, bytes.Repeat([]byte{8}, 32), key, v, ErrChannelBinding, true},
		{"unknown user", nil, nil, key, nil, ErrAuthFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer(tt.verifier, tt.srvCB, []byte("seed"))
			cliV := v
			if tt.verifier == nil {
				cliV = srv.v // the mock's salt, as a real client would see it
			}
			err := exchange(srv, NewClient(cliV, tt.clientKey, tt.cliCB))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && !bytes.Equal(srv.ClientKey(), key) {
				t.Fatal("recovered ClientKey differs")
			}
		})
	}
}

func TestDowngradeRefused(t *testing.T) {
	v, key := makeVerifier(t, "secret")
	srv := NewServer(v, []byte("cb"), nil)
	// A client that can bind ("y") while the server offered PLUS: a
	// man in the middle stripped the offer.
	cli := NewClient(v, key, []byte("cb"))
	_, first, err := cli.ClientFirst([]string{SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ClientFirst(SHA256, first); !errors.Is(err, ErrChannelBinding) {
		t.Fatalf("err = %v, want ErrChannelBinding", err)
	}
}

func TestParseVerifier(t *testing.T) {
	for _, s := range []string{
		"", "md5abcdef", "SCRAM-SHA-256$", "SCRAM-SHA-256$x:c2FsdA==$a:b",
		"SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
	} {
		if _, err := ParseVerifier(s); !errors.Is(err, ErrVerifier) {
			t.Errorf("ParseVerifier(%q) = %v, want ErrVerifier", s, err)
		}
	}
}

func TestMalformedMessages(t *testing.T) {
	v, _ := makeVerifier(t, "secret")
	for _, m := range []string{"", "n", "n,,", "n,,r", "x,,n=,r=abc", "n,a=b,n=,r=abc", "n,,n=,r=a,m=x"} {
		srv := NewServer(v, nil, nil)
		if _, err := srv.ClientFirst(SHA256, []byte(m)); err == nil {
			t.Errorf("ClientFirst(%q) accepted", m)
		}
	}
	srv := NewServer(v, nil, nil)
	if _, err := srv.ClientFirst(SHA256, []byte("n,,n=,r=abc")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"", "c=biws,r=x", "c=biws,r=x,p=!!", "p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := srv.ClientFinal([]byte(m)); err == nil {
			t.Errorf("ClientFinal(%q) accepted", m)
		}
	}
}

func TestVerifierStringRedacted(t *testing.T) {
	v, _ := makeVerifier(t, "secret")
	if s := fmt.Sprint(v); bytes.Contains([]byte(s), []byte(base64.StdEncoding.EncodeToString(v.StoredKey))) {
		t.Fatal("verifier printed its key")
	}
}
