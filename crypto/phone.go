package crypto

import "fmt"

// Fake phone numbers (phone): valid numbers from the ranges regulators
// keep free for films and books ("drama numbers"), which are never given
// to a subscriber, so a dump dials nobody:
//
//   - de: the Bundesnetzagentur's 5 × 1,000 numbers (Amtsblatt 7/2021,
//     Mitteilung 148/2021): (0)30 23125 000–999 Berlin, (0)69 90009
//     Frankfurt, (0)40 66969 Hamburg, (0)221 4710 Köln, (0)89 99998
//     München;
//   - en: Ofcom's UK drama ranges 020 7946 0000–0999 London and 0113 496,
//     0117 496, 0121 496, 0161 496 0000–0999 (not Ofcom's mobile 07700
//     900xxx: libphonenumber does not count it as a valid number).
//
// The number follows the input's shape: +CC… when it starts with '+',
// 00CC… with "00", else national 0…; the input's first separator (space,
// '-', '/', '.') separates the groups, none when it has none. The keyed
// PRF of fake.go picks the number, so equal inputs of a domain give equal
// numbers; with 5,000 numbers per locale the outputs are not
// unique (unique is refused) and reveal nothing of the input.

// dramaRange is a thousand numbers: area code, then sub and 3 digits;
// a space in sub is where the groups split.
type dramaRange struct{ area, sub string }

var (
	dramaDE = [...]dramaRange{{"30", "23125"}, {"69", "90009"}, {"40", "66969"}, {"221", "4710"}, {"89", "99998"}}
	dramaEN = [...]dramaRange{{"20", "7946 0"}, {"113", "496 0"}, {"117", "496 0"}, {"121", "496 0"}, {"161", "496 0"}}
)

type phoneT struct {
	column
	redacted
	mac    *macPool
	cc     string
	ranges []dramaRange
}

func newPhone(spec Spec, ks *Keyset, c column) (Transformer, error) {
	t := &phoneT{column: c, cc: "49", ranges: dramaDE[:]}
	switch spec.Locale {
	case "", LocaleDE:
	case LocaleEN:
		t.cc, t.ranges = "44", dramaEN[:]
	default:
		_, err := localeFor(spec.Locale)
		return nil, err
	}
	if spec.MaxLen > 0 {
		// Every shape must fit: the longest is 00CC, a separator, the
		// area code, separators and the subscriber number.
		longest := 0
		for _, r := range t.ranges {
			longest = max(longest, 2+len(t.cc)+1+len(r.area)+1+len(r.sub)+3)
		}
		if longest > spec.MaxLen {
			return nil, fmt.Errorf("%w: a phone number may need %d characters, the column holds %d", ErrDoesNotFit, longest, spec.MaxLen)
		}
	}
	key, err := ks.derive(c.version, purposeFakePhone, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	t.mac = newMACPool(key)
	return t, nil
}

// phoneContainMin: an input of at least this many characters must not
// occur in its fake; shorter ones ("+49", "030") are parts of every number.
const phoneContainMin = 8

// Transform implements Transformer.
func (t *phoneT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	trimmed := trimSpaceBytes(in)
	var prefix string
	switch {
	case len(trimmed) > 0 && trimmed[0] == '+':
		prefix = "+"
	case len(trimmed) > 1 && trimmed[0] == '0' && trimmed[1] == '0':
		prefix = "00"
	}
	var sep byte
	for _, c := range trimmed {
		if c == ' ' || c == '-' || c == '/' || c == '.' {
			sep = c
			break
		}
	}
	s := t.mac.get()
	defer t.mac.put(s)
	var seed [32]byte
	fakeSeed(s, in, &seed)
	start := len(dst)
	for j := range fakeAttempts {
		blk := fakeBlock(s, &seed, j)
		n := pick(blk, 0, len(t.ranges)*1000)
		r := t.ranges[n/1000]
		out := dst[:start]
		if prefix != "" {
			out = append(out, prefix...)
			out = append(out, t.cc...)
			switch sep {
			case 0:
			case '/':
				out = append(out, ' ')
			default:
				out = append(out, sep)
			}
		} else {
			out = append(out, '0')
		}
		out = append(out, r.area...)
		if sep != 0 {
			out = append(out, sep)
		}
		for i := 0; i < len(r.sub); i++ {
			switch c := r.sub[i]; {
			case c != ' ':
				out = append(out, c)
			case sep != 0:
				out = append(out, sep)
			}
		}
		d := n % 1000
		out = append(out, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
		if !leaks(out[start:], in, phoneContainMin) {
			return out, nil
		}
		dst = out[:start]
	}
	return dst[:start], fmt.Errorf("%w: every fake number drawn shows the value", ErrUnchanged)
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
