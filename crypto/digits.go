package crypto

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/pgpseudo/pgpseudo/crypto/internal/ff1"
)

// Values with more digits than chunkMax are encrypted in chunks of at most
// chunkMax digits, each with its index in the tweak: FF1 stays on its fast
// path and 1 MB values stay linear. (Equal chunks at the same position of
// equally long values then encrypt alike; see docs/keys.md.)
const chunkMax = 32

// maxKeepPrefix bounds keep_prefix: a card's BIN (6) or a German bank
// code (8) may stay; an IBAN's limit is lower, as Dutch and Norwegian
// BBANs hold 10 and 11 digits. More would leave ordinary values with too
// few digits to encrypt, which are then withheld.
const (
	maxKeepPrefix     = 8
	maxKeepPrefixCard = 6
	maxKeepPrefixIBAN = 4
)

// digitsT encrypts the digits of a digit string, card number or IBAN with
// FF1 in radix 10. A value with fewer digits to encrypt (after keep_prefix
// and a card's check digit) than FF1's minimum length (ff.MinLen(): six
// digits, the 10^6 values NIST SP 800-38G Rev. 1 requires) is withheld: a
// permutation of so few values is a codebook, and with the clear prefix in
// the tweak it is the varied-tweak setting of the known small-domain
// attacks.
type digitsT struct {
	column
	redacted
	kind       Kind
	ff         *ff1.Cipher
	keepPrefix int
	pool       sync.Pool // *digitScratch
}

type digitScratch struct {
	pos   []int  // byte offsets of the digits being transformed
	num   []byte // their numeral values
	tweak [ff1.MaxTweak]byte
}

func newDigits(spec Spec, ks *Keyset, c column) (Transformer, error) {
	limit := map[Kind]int{KindDigits: maxKeepPrefix, KindCard: maxKeepPrefixCard, KindIBAN: maxKeepPrefixIBAN}[spec.Kind]
	key, err := ks.derive(c.version, purposeDigits, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	ff, err := ff1.New(key, 10)
	clear(key) // the AES key schedule holds its own copy
	if err != nil {
		return nil, fmt.Errorf("digits: %w", err)
	}
	if spec.KeepPrefix < 0 || spec.KeepPrefix > limit {
		return nil, fmt.Errorf("%w: %s keep_prefix must be in [0, %d] so that ordinary values keep at least %d digits to encrypt",
			ErrInvalidSpec, spec.Kind, limit, ff.MinLen())
	}
	t := &digitsT{column: c, kind: spec.Kind, ff: ff, keepPrefix: spec.KeepPrefix}
	t.pool.New = func() any { return new(digitScratch) }
	return t, nil
}

// Transform implements Transformer.
func (t *digitsT) Transform(dst, src []byte) ([]byte, error) { return t.run(dst, src, true) }

// Reverse implements Reverser. Card and IBAN check digits are validated
// on the way in and recomputed on the way out, in both directions: an
// input whose check digits are wrong is withheld rather than normalised,
// so two inputs differing only in them never share a token.
func (t *digitsT) Reverse(dst, src []byte) ([]byte, error) { return t.run(dst, src, false) }

func (t *digitsT) run(dst, src []byte, enc bool) ([]byte, error) {
	start := len(dst)
	dst = append(dst, src...)
	out := dst[start:]
	sc := t.pool.Get().(*digitScratch)
	defer t.pool.Put(sc)
	var err error
	switch t.kind {
	case KindIBAN:
		cc, bban, ok := ibanShape(out)
		if !ok {
			err = fmt.Errorf("%w: not an IBAN", ErrUnchanged)
			break
		}
		// ISO 13616 check digits are 02 to 98; 00, 01 and 99 pass mod 97
		// like 97, 98 and 02 do, so accepting them would give two inputs
		// one token.
		if ck, valid := ibanCheckDigits(out, cc, bban); !valid || ck < 2 || ck > 98 {
			err = fmt.Errorf("%w: IBAN check digits are invalid", ErrUnchanged)
			break
		}
		err = t.iban(sc, out, cc, bban, enc)
	case KindCard:
		err = t.digits(sc, out, "card", t.keepPrefix, enc, true)
	default:
		err = t.digits(sc, out, "digits", t.keepPrefix, enc, false)
	}
	if err == nil && enc && string(out) == string(src) {
		// A permutation has fixed points (about one value in 10^6 for six
		// digits): such a value would leave in clear, so it is withheld.
		err = fmt.Errorf("%w: the permutation maps this value to itself", ErrUnchanged)
	}
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// digits encrypts, in place, every ASCII digit of out after the first
// keepPrefix digits; with luhn the last digit becomes the Luhn check digit
// of the result.
func (t *digitsT) digits(sc *digitScratch, out []byte, tag string, keepPrefix int, enc, luhn bool) error {
	sc.pos = sc.pos[:0]
	for i, c := range out {
		switch {
		case c >= '0' && c <= '9':
			sc.pos = append(sc.pos, i)
		case isLetter(c) || c >= 0x80:
			// Letters (and any non-ASCII text) would leave in clear: a
			// digit string has only digits and separators.
			return fmt.Errorf("%w: %s values may hold only digits and separators", ErrUnchanged, tag)
		}
	}
	all := sc.pos
	keep := min(keepPrefix, len(all))
	body := all[keep:]
	if luhn {
		if len(all) < 2 || luhnCheck(out, all[:len(all)-1]) != out[all[len(all)-1]] {
			return fmt.Errorf("%w: card number fails the Luhn check", ErrUnchanged)
		}
		body = body[:max(len(body)-1, 0)]
	}
	tw := append(sc.tweak[:0], tag...)
	tw = append(tw, ':')
	for _, p := range all[:keep] {
		tw = append(tw, out[p])
	}
	if err := t.crypt(sc, out, body, tw, enc); err != nil {
		return err
	}
	if luhn && len(all) > keep {
		out[all[len(all)-1]] = luhnCheck(out, all[:len(all)-1])
	}
	return nil
}

// crypt runs FF1 over the digits of out at positions pos.
func (t *digitsT) crypt(sc *digitScratch, out []byte, pos []int, tweak []byte, enc bool) error {
	n := len(pos)
	if n < t.ff.MinLen() {
		return fmt.Errorf("%w: %d digits to encrypt, FF1 needs at least %d (use token or hash for short digit strings)",
			ErrUnchanged, n, t.ff.MinLen())
	}
	sc.num = sc.num[:0]
	for _, p := range pos {
		sc.num = append(sc.num, out[p]-'0')
	}
	num := sc.num
	switch {
	case n <= chunkMax+chunkMax/2:
		if err := t.ffCrypt(num, num, tweak, enc); err != nil {
			return err
		}
	default:
		chunks := (n + chunkMax - 1) / chunkMax
		base := len(tweak)
		for c := range chunks {
			lo, hi := c*n/chunks, (c+1)*n/chunks
			tw := binary.BigEndian.AppendUint32(tweak[:base], uint32(c))
			tw = binary.BigEndian.AppendUint32(tw, uint32(n))
			if err := t.ffCrypt(num[lo:hi], num[lo:hi], tw, enc); err != nil {
				return err
			}
		}
	}
	for i, p := range pos {
		out[p] = '0' + num[i]
	}
	return nil
}

func (t *digitsT) ffCrypt(dst, x, tweak []byte, enc bool) error {
	var err error
	if enc {
		err = t.ff.Encrypt(dst, x, tweak)
	} else {
		err = t.ff.Decrypt(dst, x, tweak)
	}
	if err != nil {
		return fmt.Errorf("digits: %w", err)
	}
	return nil
}

// luhnCheck returns the check digit (ASCII) that makes payload digits at
// pos, followed by it, pass the Luhn test.
func luhnCheck(out []byte, pos []int) byte {
	sum := 0
	double := true // the rightmost payload digit is doubled
	for i := len(pos) - 1; i >= 0; i-- {
		d := int(out[pos[i]] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// ibanShape recognises an IBAN (spaces allowed): 2 letters, 2 digits and
// 11 to 30 alphanumerics. It returns the country code's offsets and the
// BBAN's start offset.
func ibanShape(s []byte) (cc [2]int, bban int, ok bool) {
	n := 0
	for i, c := range s {
		switch {
		case c == ' ':
			continue
		case n < 2:
			if !isLetter(c) {
				return cc, 0, false
			}
			cc[n] = i
		case n < 4:
			if c < '0' || c > '9' {
				return cc, 0, false
			}
		default:
			if !isLetter(c) && (c < '0' || c > '9') {
				return cc, 0, false
			}
			if n == 4 {
				bban = i
			}
		}
		n++
	}
	return cc, bban, n >= 15 && n <= 34
}

func isLetter(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }

// iban encrypts the BBAN digits (letters, e.g. bank codes, stay) and
// recomputes the ISO 13616 check digits so the result validates.
func (t *digitsT) iban(sc *digitScratch, out []byte, cc [2]int, bban int, enc bool) error {
	sc.pos = sc.pos[:0]
	for i := bban; i < len(out); i++ {
		if c := out[i]; c >= '0' && c <= '9' {
			sc.pos = append(sc.pos, i)
		}
	}
	keep := min(t.keepPrefix, len(sc.pos))
	tw := append(sc.tweak[:0], "iban:"...)
	tw = append(tw, upper(out[cc[0]]), upper(out[cc[1]]), ':')
	for _, p := range sc.pos[:keep] {
		tw = append(tw, out[p])
	}
	if err := t.crypt(sc, out, sc.pos[keep:], tw, enc); err != nil {
		return err
	}
	// The check digits (the first two digits after the country code) are
	// 98 - (BBAN || CC || "00" mod 97).
	check := 98 - ibanRemainder(out, cc, bban, '0', '0')
	j := 0
	for i := cc[1] + 1; i < bban && j < 2; i++ {
		if out[i] >= '0' && out[i] <= '9' {
			if j == 0 {
				out[i] = byte('0' + check/10)
			} else {
				out[i] = byte('0' + check%10)
			}
			j++
		}
	}
	return nil
}

// ibanRemainder is ISO 13616's BBAN || CC || c1 c2 mod 97, letters as
// 10..35: 1 when c1 c2 are the IBAN's valid check digits, and 98 minus
// the check digits when c1 c2 are "00".
func ibanRemainder(s []byte, cc [2]int, bban int, c1, c2 byte) int {
	var m int
	add := func(c byte) {
		switch {
		case c >= '0' && c <= '9':
			m = (m*10 + int(c-'0')) % 97
		case isLetter(c):
			m = (m*100 + int(upper(c)-'A'+10)) % 97
		}
	}
	for i := bban; i < len(s); i++ {
		add(s[i])
	}
	add(s[cc[0]])
	add(s[cc[1]])
	add(c1)
	add(c2)
	return m
}

// ibanCheckDigits returns an IBAN's two check digits (the first two digits
// after the country code) and whether they pass mod 97.
func ibanCheckDigits(s []byte, cc [2]int, bban int) (int, bool) {
	var d []byte
	for i := cc[1] + 1; i < bban && len(d) < 2; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i])
		}
	}
	if len(d) != 2 {
		return 0, false
	}
	return int(d[0]-'0')*10 + int(d[1]-'0'), ibanRemainder(s, cc, bban, d[0], d[1]) == 1
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}
