// Package ff1 implements the FF1 format-preserving encryption mode of
// NIST SP 800-38G (Algorithms 7 and 8) on top of the standard library's AES.
//
// Why it is in-tree: the established Go implementation
// (github.com/capitalone/fpe/ff1) is not served by the module proxy this
// project builds against. This package is a direct transcription of the
// standard's algorithms — no design of our own — and is checked against
// all nine NIST FF1 sample vectors in ff1_test.go. It exposes the same shape
// (radix, key, tweak, numeral strings) so it can be swapped for a library
// implementation without touching callers.
//
// Numerals are bytes holding digit values (0..radix-1), not ASCII.
package ff1

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"sync"
)

const rounds = 10

// Errors returned by Cipher.
var (
	// ErrRadix is returned for a radix outside [2, 256].
	ErrRadix = errors.New("ff1: radix must be in [2, 256]")
	// ErrLength is returned when radix^len(x) < MinDomain or the input is
	// longer than this package supports.
	ErrLength = errors.New("ff1: numeral string length out of range")
	// ErrNumeral is returned when a numeral is not below the radix.
	ErrNumeral = errors.New("ff1: numeral not in radix")
	// ErrTweak is returned for a tweak longer than MaxTweak bytes.
	ErrTweak = errors.New("ff1: tweak too long")
)

// MinDomain is the smallest domain (radix^n) the cipher accepts: NIST SP
// 800-38G Rev. 1 (second public draft) raised FF1's minimum from 100 to
// one million values, because on smaller domains a deterministic
// permutation's codebook is cheap to build and the known small-domain
// attacks on its Feistel rounds apply.
const MinDomain = 1_000_000

// MaxTweak bounds the tweak length; callers use short domain tags.
const MaxTweak = 64

// maxLen bounds the numeral string length (the standard allows up to 2^32;
// callers chunk longer inputs).
const maxLen = 4096

// Cipher is FF1 for one AES key and radix. It is safe for concurrent use.
type Cipher struct {
	block cipher.Block
	radix uint64
	// minLen is the smallest n with radix^n >= MinDomain.
	minLen int
	pool   sync.Pool // *scratch, so the hot path does not allocate
}

type scratch struct {
	buf [16 + MaxTweak + 16 + 16 + 32]byte
	y   [32]byte
	p0  [16]byte
}

// New returns an FF1 cipher for an AES key (16, 24 or 32 bytes) and radix.
func New(key []byte, radix int) (*Cipher, error) {
	if radix < 2 || radix > 256 {
		return nil, ErrRadix
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ff1: %w", err)
	}
	c := &Cipher{block: b, radix: uint64(radix)}
	for n, p := 1, uint64(radix); ; n, p = n+1, p*uint64(radix) {
		if p >= MinDomain {
			c.minLen = max(n, 2)
			break
		}
	}
	c.pool.New = func() any { return new(scratch) }
	return c, nil
}

// MinLen is the shortest numeral string the cipher accepts.
func (c *Cipher) MinLen() int { return c.minLen }

// Encrypt writes FF1.Encrypt(x, tweak) into dst (len(dst) >= len(x)); dst
// and x may alias.
func (c *Cipher) Encrypt(dst, x, tweak []byte) error { return c.crypt(dst, x, tweak, true) }

// Decrypt writes FF1.Decrypt(x, tweak) into dst; dst and x may alias.
func (c *Cipher) Decrypt(dst, x, tweak []byte) error { return c.crypt(dst, x, tweak, false) }

func (c *Cipher) crypt(dst, x, tweak []byte, enc bool) error {
	n := len(x)
	if n < c.minLen || n > maxLen || len(dst) < n {
		return ErrLength
	}
	if len(tweak) > MaxTweak {
		return ErrTweak
	}
	for _, d := range x {
		if uint64(d) >= c.radix {
			return ErrNumeral
		}
	}
	u := n / 2
	v := n - u
	mu, okU := pow(c.radix, u)
	mv, okV := pow(c.radix, v)
	if okU && okV {
		c.fast(dst, x, tweak, enc, u, v, mu, mv)
		return nil
	}
	c.slow(dst, x, tweak, enc, u, v)
	return nil
}

// pow returns r^k when it fits in a uint64.
func pow(r uint64, k int) (uint64, bool) {
	p := uint64(1)
	for range k {
		hi, lo := bits.Mul64(p, r)
		if hi != 0 {
			return 0, false
		}
		p = lo
	}
	return p, true
}

// byteLen is b = ceil(ceil(v*log2(radix))/8) of the standard, computed
// exactly as the byte length of radix^v - 1.
func byteLen(mv uint64) int { return (bits.Len64(mv-1) + 7) / 8 }

// header builds P (16 bytes) and the fixed part of Q (tweak and zero pad);
// it returns the length of Q.
func (c *Cipher) header(buf []byte, tweak []byte, u, n, b int) int {
	t := len(tweak)
	p := buf[:16]
	p[0], p[1], p[2] = 1, 2, 1
	p[3] = byte(c.radix >> 16)
	p[4] = byte(c.radix >> 8)
	p[5] = byte(c.radix)
	p[6] = 10
	p[7] = byte(u)
	binary.BigEndian.PutUint32(p[8:], uint32(n))
	binary.BigEndian.PutUint32(p[12:], uint32(t))
	pad := (16 - (t+b+1)%16) % 16
	qLen := t + pad + 1 + b
	q := buf[16 : 16+qLen]
	copy(q, tweak)
	clear(q[t : t+pad])
	return qLen
}

// prf computes R = PRF(P || Q): CBC-MAC under AES with a zero IV.
func (c *Cipher) prf(r, pq []byte) {
	clear(r[:16])
	for i := 0; i < len(pq); i += 16 {
		subtleXOR16(r, pq[i:i+16])
		c.block.Encrypt(r, r)
	}
}

func subtleXOR16(dst, src []byte) {
	binary.NativeEndian.PutUint64(dst, binary.NativeEndian.Uint64(dst)^binary.NativeEndian.Uint64(src))
	binary.NativeEndian.PutUint64(dst[8:], binary.NativeEndian.Uint64(dst[8:])^binary.NativeEndian.Uint64(src[8:]))
}

// expand fills s (d bytes) from R: R || CIPH(R^[1]) || CIPH(R^[2]) ...
func (c *Cipher) expand(s, r []byte, d int) {
	copy(s, r[:16])
	for j := 1; j*16 < d; j++ {
		blk := s[j*16 : j*16+16]
		copy(blk, r[:16])
		var ctr [16]byte
		binary.BigEndian.PutUint64(ctr[8:], uint64(j))
		subtleXOR16(blk, ctr[:])
		c.block.Encrypt(blk, blk)
	}
}

// fast runs FF1 with both halves held in uint64s (radix^v < 2^64), where
// NUM_radix of a half is its integer value.
func (c *Cipher) fast(dst, x, tweak []byte, enc bool, u, v int, mu, mv uint64) {
	a, b := c.rounds(num(x[:u], c.radix), num(x[u:], c.radix), tweak, enc, u, v, mu, mv)
	str(dst[:u], a, c.radix)
	str(dst[u:u+v], b, c.radix)
}

// EncryptValue encrypts the numeral string of length n whose value
// NUM_radix is x (so x < radix^n) and returns the value of the result.
// It is the allocation- and division-free form used for integers.
func (c *Cipher) EncryptValue(x uint64, n int, tweak []byte) (uint64, error) {
	return c.cryptValue(x, n, tweak, true)
}

// DecryptValue inverts EncryptValue.
func (c *Cipher) DecryptValue(x uint64, n int, tweak []byte) (uint64, error) {
	return c.cryptValue(x, n, tweak, false)
}

func (c *Cipher) cryptValue(x uint64, n int, tweak []byte, enc bool) (uint64, error) {
	if n < c.minLen || len(tweak) > MaxTweak {
		return 0, ErrLength
	}
	u := n / 2
	v := n - u
	mu, okU := pow(c.radix, u)
	mv, okV := pow(c.radix, v)
	if !okU || !okV {
		return 0, ErrLength
	}
	if x/mv >= mu {
		return 0, ErrNumeral
	}
	a, b := c.rounds(x/mv, x%mv, tweak, enc, u, v, mu, mv)
	return a*mv + b, nil
}

func (c *Cipher) rounds(a, bb uint64, tweak []byte, enc bool, u, v int, mu, mv uint64) (uint64, uint64) {
	sc := c.pool.Get().(*scratch)
	defer c.pool.Put(sc)
	n := u + v
	b := byteLen(mv)
	d := 4*((b+3)/4) + 4 // <= 12, so S is the first d bytes of R
	qLen := c.header(sc.buf[:], tweak, u, n, b)
	q := sc.buf[16 : 16+qLen]
	// P is the same in every round: precompute its CBC-MAC state once.
	p0 := sc.p0[:]
	c.block.Encrypt(p0, sc.buf[:16])
	r := sc.y[:16]
	for k := range rounds {
		i := k
		if !enc {
			i = rounds - 1 - k
		}
		// Q ends with [i] || [NUM(B)]^b (NUM(A) when decrypting).
		src := bb
		if !enc {
			src = a
		}
		q[qLen-b-1] = byte(i)
		putBE(q[qLen-b:], src)
		copy(r, p0)
		for j := 0; j < qLen; j += 16 {
			subtleXOR16(r, q[j:j+16])
			c.block.Encrypt(r, r)
		}
		var hi uint64
		for _, by := range r[:d-8] {
			hi = hi<<8 | uint64(by)
		}
		lo := binary.BigEndian.Uint64(r[d-8 : d])
		m := mu
		if i%2 == 1 {
			m = mv
		}
		y := bits.Rem64(hi, lo, m)
		if enc {
			s, carry := bits.Add64(a, y, 0)
			if carry != 0 || s >= m {
				s -= m
			}
			a, bb = bb, s
		} else {
			var s uint64
			if bb >= y {
				s = bb - y
			} else {
				s = bb + (m - y)
			}
			bb, a = a, s
		}
	}
	return a, bb
}

func num(x []byte, radix uint64) uint64 {
	var v uint64
	for _, d := range x {
		v = v*radix + uint64(d)
	}
	return v
}

func str(dst []byte, v, radix uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(v % radix)
		v /= radix
	}
}

func putBE(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(v)
		v >>= 8
	}
}

// slow is the same algorithm with math/big for halves of any size.
func (c *Cipher) slow(dst, x, tweak []byte, enc bool, u, v int) {
	n := u + v
	radix := new(big.Int).SetUint64(c.radix)
	mu := new(big.Int).Exp(radix, big.NewInt(int64(u)), nil)
	mv := new(big.Int).Exp(radix, big.NewInt(int64(v)), nil)
	b := (new(big.Int).Sub(mv, big.NewInt(1)).BitLen() + 7) / 8
	d := 4*((b+3)/4) + 4
	buf := make([]byte, 16+len(tweak)+16+b)
	qLen := c.header(buf, tweak, u, n, b)
	pq := buf[:16+qLen]
	r := make([]byte, 16)
	s := make([]byte, (d+15)/16*16)

	a := numBig(x[:u], radix)
	bb := numBig(x[u:], radix)
	y := new(big.Int)
	for k := range rounds {
		i := k
		if !enc {
			i = rounds - 1 - k
		}
		src := bb
		if !enc {
			src = a
		}
		pq[16+qLen-b-1] = byte(i)
		src.FillBytes(pq[16+qLen-b:])
		c.prf(r, pq)
		c.expand(s, r, d)
		y.SetBytes(s[:d])
		m := mu
		if i%2 == 1 {
			m = mv
		}
		cc := new(big.Int)
		if enc {
			cc.Add(a, y)
			cc.Mod(cc, m)
			a, bb = bb, cc
		} else {
			cc.Sub(bb, y)
			cc.Mod(cc, m) // Mod is Euclidean: result in [0, m)
			bb, a = a, cc
		}
	}
	strBig(dst[:u], a, radix)
	strBig(dst[u:n], bb, radix)
}

func numBig(x []byte, radix *big.Int) *big.Int {
	v := new(big.Int)
	d := new(big.Int)
	for _, dg := range x {
		v.Mul(v, radix)
		v.Add(v, d.SetUint64(uint64(dg)))
	}
	return v
}

func strBig(dst []byte, v, radix *big.Int) {
	v = new(big.Int).Set(v)
	m := new(big.Int)
	for i := len(dst) - 1; i >= 0; i-- {
		v.QuoRem(v, radix, m)
		dst[i] = byte(m.Uint64())
	}
}
