package crypto

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Fake e-mail addresses (email with style: name):
// <first>.<last>.<code>@example.com, the names from the locale's
// dictionaries in lower-case ASCII (ä → ae, ß → ss, é → e), the code 12
// base32 characters (60 bits) of the keyed PRF, the domain one of the
// three RFC 2606 reserves example.com, example.org and example.net, so no
// address can deliver. The code makes addresses unique: distinct inputs
// of a domain collide with probability below n²/2^61 (2^-21 for a million
// addresses), so a UNIQUE column restores. The PRF is fake.go's, keyed on
// the whole address as stored (case and spaces kept, as for email
// tokens); like every fake the address carries no key version.

// fakeEmailDomains are RFC 2606's reserved second-level domains, all
// 11 characters long.
var fakeEmailDomains = [...]string{"example.com", "example.org", "example.net"}

// fakeEmailFixed is an address's length without its names: two dots,
// the code, '@' and the domain.
const fakeEmailFixed = 2 + fakeCodeChars + 1 + 11

type fakeEmailT struct {
	column
	redacted
	mac         *macPool
	first, last fakePart
	maxLen      int
}

func newFakeEmail(spec Spec, ks *Keyset, c column) (Transformer, error) {
	loc, err := localeFor(spec.Locale)
	if err != nil {
		return nil, err
	}
	first, last := asciiList(loc.first), asciiList(loc.last)
	t := &fakeEmailT{column: c, first: fakePart{dict: first, short: shortest(first)},
		last: fakePart{dict: last, short: shortest(last)}, maxLen: spec.MaxLen}
	if need := fakeEmailFixed + t.first.minLen() + t.last.minLen(); spec.MaxLen > 0 && need > spec.MaxLen {
		return nil, fmt.Errorf("%w: a fake address needs at least %d characters, the column holds %d", ErrDoesNotFit, need, spec.MaxLen)
	}
	key, err := ks.derive(c.version, purposeFakeEmail, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	t.mac = newMACPool(key)
	return t, nil
}

// Transform implements Transformer.
func (t *fakeEmailT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	s := t.mac.get()
	defer t.mac.put(s)
	var seed [32]byte
	fakeSeed(s, in, &seed)
	start := len(dst)
	for j := range fakeAttempts + fakeShortAttempts {
		blk := fakeBlock(s, &seed, j)
		first, last := t.first.dict, t.last.dict
		if j >= fakeAttempts {
			first, last = t.first.short, t.last.short
		}
		out := append(dst[:start], first[pick(blk, 0, len(first))]...)
		out = append(out, '.')
		out = append(out, last[pick(blk, 1, len(last))]...)
		out = append(out, '.')
		out = appendCode(out, blk[24:32], tokenAlphabet32)
		out = append(out, '@')
		out = append(out, fakeEmailDomains[pick(blk, 2, len(fakeEmailDomains))]...)
		if fitsColumn(out[start:], t.oid, t.maxLen) && !leaks(out[start:], in, fakeContainMin) {
			return out, nil
		}
		dst = out[:start]
	}
	return dst[:start], fmt.Errorf("%w: no fake address fits the column and differs from the value", ErrUnchanged)
}

// tokenAlphabet32 is the lower-case base32 alphabet of tokens.
const tokenAlphabet32 = "abcdefghijklmnopqrstuvwxyz234567"

// asciiList returns d's entries as local-part words: lower-case ASCII
// letters, transliterated, other characters dropped; repeats and empty
// words removed.
func asciiList(d []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range d {
		w := asciiWord(e)
		if w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// translit spells the letters of the dictionaries in ASCII as German and
// French addresses do.
var translit = strings.NewReplacer(
	"ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "Ä", "ae", "Ö", "oe", "Ü", "ue",
	"é", "e", "è", "e", "ê", "e", "á", "a", "à", "a", "ó", "o", "ñ", "n", "ç", "c",
)

func asciiWord(s string) string {
	s = translit.Replace(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		case r == '-' && b.Len() > 0:
			b.WriteRune(r)
		case r >= utf8.RuneSelf:
			// A letter translit does not know is dropped, never kept.
		}
	}
	return strings.TrimRight(b.String(), "-")
}
