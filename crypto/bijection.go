package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/pgpseudo/pgpseudo/crypto/internal/ff1"
)

// intT maps an integer type onto itself with FF1 over radix 2 and exactly
// the type's bit width (16, 32 or 64 numerals): every value of the type is
// a valid input and output, so no cycle walking is needed, and unique keys
// stay unique.
type intT struct {
	column
	redacted
	ff    *ff1.Cipher
	bits  int
	tweak []byte
}

func newInt(spec Spec, ks *Keyset, c column) (Transformer, error) {
	key, err := ks.derive(c.version, purposeInt, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	ff, err := ff1.New(key, 2)
	clear(key) // the AES key schedule holds its own copy
	if err != nil {
		return nil, fmt.Errorf("int: %w", err)
	}
	bits := intBits(c.oid)
	// The width is in the tweak (and in FF1's own header), so int2 and int8
	// columns in one domain get unrelated permutations.
	return &intT{column: c, ff: ff, bits: bits, tweak: []byte(fmt.Sprintf("int%d", bits))}, nil
}

// Transform implements Transformer.
func (t *intT) Transform(dst, src []byte) ([]byte, error) { return t.run(dst, src, true) }

// Reverse implements Reverser.
func (t *intT) Reverse(dst, src []byte) ([]byte, error) { return t.run(dst, src, false) }

func (t *intT) run(dst, src []byte, enc bool) ([]byte, error) {
	v, err := parseInt(src, t.bits, t.binary)
	if err != nil {
		return dst, err
	}
	mask := uint64(1)<<t.bits - 1
	if t.bits == 64 {
		mask = ^uint64(0)
	}
	x := uint64(v) & mask // two's complement bit pattern of the type
	in := x
	if enc {
		x, err = t.ff.EncryptValue(x, t.bits, t.tweak)
	} else {
		x, err = t.ff.DecryptValue(x, t.bits, t.tweak)
	}
	if err != nil {
		return dst, fmt.Errorf("int: %w", err)
	}
	if enc && x == in {
		// A fixed point of the permutation would leave in clear.
		return dst, fmt.Errorf("%w: the permutation maps this value to itself", ErrUnchanged)
	}
	// Sign-extend back to int64.
	shift := 64 - t.bits
	out := int64(x<<shift) >> shift
	return appendInt(dst, out, t.bits, t.binary), nil
}

// uuidT maps uuids onto uuids with AES-256 on the 128-bit value: a keyed
// permutation of all 2^128 values from the standard library's AES (one
// block, so no mode is involved). Outputs are arbitrary 128-bit values;
// PostgreSQL's uuid type accepts any, without version or variant checks.
type uuidT struct {
	column
	redacted
	block cipher.Block
}

func newUUID(spec Spec, ks *Keyset, c column) (Transformer, error) {
	key, err := ks.derive(c.version, purposeUUID, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("uuid: %w", err)
	}
	return &uuidT{column: c, block: b}, nil
}

// Transform implements Transformer.
func (t *uuidT) Transform(dst, src []byte) ([]byte, error) { return t.run(dst, src, true) }

// Reverse implements Reverser.
func (t *uuidT) Reverse(dst, src []byte) ([]byte, error) { return t.run(dst, src, false) }

func (t *uuidT) run(dst, src []byte, enc bool) ([]byte, error) {
	var u [16]byte
	if err := parseUUID(&u, src, t.binary); err != nil {
		return dst, err
	}
	// Encrypt inside dst: a heap buffer, so the interface call does not
	// force a local array to escape.
	start := len(dst)
	dst = append(dst, u[:]...)
	blk := dst[start : start+16]
	if enc {
		t.block.Encrypt(blk, blk)
	} else {
		t.block.Decrypt(blk, blk)
	}
	copy(u[:], blk)
	return appendUUID(dst[:start], &u, t.binary), nil
}
