package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// macPool hands out HMAC-SHA256 states keyed with one derived subkey, so the
// hot path neither allocates nor shares mutable state between goroutines.
type macPool struct {
	redacted
	pool sync.Pool
}

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
	buf [64]byte // scratch for normalised input
}

func newMACPool(key secret) *macPool {
	p := &macPool{}
	p.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return p
}

func (p *macPool) get() *macState {
	s := p.pool.Get().(*macState)
	s.h.Reset()
	return s
}

func (p *macPool) put(s *macState) { p.pool.Put(s) }

// sum finishes the MAC into s.sum.
func (s *macState) finish() []byte { return s.h.Sum(s.sum[:0]) }

// writeLower feeds ASCII-lowercased b into the MAC without allocating.
func (s *macState) writeLower(b []byte) {
	for len(b) > 0 {
		n := copy(s.buf[:], b)
		for i := range n {
			if c := s.buf[i]; c >= 'A' && c <= 'Z' {
				s.buf[i] = c + 32
			}
		}
		s.h.Write(s.buf[:n])
		b = b[n:]
	}
}
