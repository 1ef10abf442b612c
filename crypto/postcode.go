package crypto

import "fmt"

// Fake postcodes (postcode): the input's shape with keyed characters —
// each ASCII digit becomes a digit, each letter a letter of the same case,
// everything else stays — so "10115" gives five digits that satisfy a
// CHECK '^[0-9]{5}$' and "SW1A 1AA" gives e.g. "OS8J 6CO". The characters come
// from the keyed PRF stream of fake.go over the whole value (block(0),
// block(1), … read byte by byte, with rejection so each digit and letter
// is uniform), so similar postcodes give unrelated ones; an output equal
// to the input is drawn again.
//
// This is a keyed hash into the same shape, not a permutation: it is not
// unique and not reversible, which is why it is allowed on domains
// smaller than FF1's 10^6 values (digits withholds a 5-digit postcode;
// a codebook of a permutation that small is cheap to build, while a hash
// merges values and has no inverse to learn). It reveals the input's
// shape and nothing else but equality within the domain.

// postcodeMax bounds a postcode's length: longer values are no postcodes
// (a free-text column classified by mistake) and are withheld, as their
// shape would show word lengths.
const postcodeMax = 16

type postcodeT struct {
	column
	redacted
	mac *macPool
}

func newPostcode(spec Spec, ks *Keyset, c column) (Transformer, error) {
	key, err := ks.derive(c.version, purposeFakePostcode, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &postcodeT{column: c, mac: newMACPool(key)}, nil
}

// keyStream reads the PRF blocks of one value byte by byte.
type keyStream struct {
	s    *macState
	seed [32]byte
	blk  []byte
	j    int
}

func (k *keyStream) next() byte {
	if len(k.blk) == 0 {
		k.blk = fakeBlock(k.s, &k.seed, k.j)
		k.j++
	}
	b := k.blk[0]
	k.blk = k.blk[1:]
	return b
}

// uniform returns a keyed number in [0, n), n ≤ 256, without modulo bias.
func (k *keyStream) uniform(n int) byte {
	lim := 256 - 256%n
	for {
		if b := int(k.next()); b < lim {
			return byte(b % n)
		}
	}
}

// Transform implements Transformer.
func (t *postcodeT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	if len(in) > postcodeMax {
		return dst, fmt.Errorf("%w: longer than %d characters, not a postcode", ErrUnchanged, postcodeMax)
	}
	alnum := false
	for _, c := range in {
		switch {
		case c >= 0x80 || c < 0x20:
			return dst, fmt.Errorf("%w: a postcode holds only ASCII letters, digits and separators", ErrUnchanged)
		case isLetter(c) || c >= '0' && c <= '9':
			alnum = true
		}
	}
	if !alnum {
		return dst, fmt.Errorf("%w: no digit or letter to replace", ErrUnchanged)
	}
	s := t.mac.get()
	defer t.mac.put(s)
	ks := keyStream{s: s}
	fakeSeed(s, in, &ks.seed)
	start := len(dst)
	for range fakeAttempts {
		out := append(dst[:start], in...)
		for i, c := range out[start:] {
			switch {
			case c >= '0' && c <= '9':
				out[start+i] = '0' + ks.uniform(10)
			case c >= 'a' && c <= 'z':
				out[start+i] = 'a' + ks.uniform(26)
			case c >= 'A' && c <= 'Z':
				out[start+i] = 'A' + ks.uniform(26)
			}
		}
		if !leaks(out[start:], in, 0) {
			return out, nil
		}
		dst = out[:start]
	}
	return dst[:start], fmt.Errorf("%w: every postcode drawn equals the value", ErrUnchanged)
}
