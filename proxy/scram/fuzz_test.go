package scram

import "testing"

// FuzzServer feeds arbitrary client messages to the server side, which
// runs before authentication: it must never panic and never accept.
func FuzzServer(f *testing.F) {
	f.Add(SHA256, []byte("n,,n=,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(SHA256Plus, []byte("p=tls-server-end-point,,n=,r=x"), []byte("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=x,p="))
	f.Add(SHA256, []byte("y,,n=u,r=\x00"), []byte(",,,,"))
	f.Add("", []byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, mech string, first, final []byte) {
		v := &Verifier{Iterations: 4096, Salt: []byte("salt"), StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
		for _, cb := range [][]byte{nil, []byte("cbdata")} {
			s := NewServer(v, cb, nil)
			if _, err := s.ClientFirst(mech, first); err != nil {
				continue
			}
			if _, err := s.ClientFinal(final); err == nil {
				t.Fatal("accepted a fuzzed proof")
			}
		}
	})
}
