package crypto

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Realistic fakes (first_name, last_name, full_name, street, city,
// company): a keyed PRF over the value as stored picks entries of a
// built-in dictionary (fake_dict_de.go, fake_dict_en.go), so a dump reads
// like real data while showing nothing of the input but equality within
// its domain. The PRF is HMAC-SHA256 with a subkey per kind and domain:
//
//	seed     = HMAC(k, 0x00 || value)
//	block(j) = HMAC(k, 0x01 || j || seed)   attempt j = 0, 1, …
//
// Attempt j reads three 64-bit numbers from block(j) (dictionary indexes
// and the house number, reduced mod the list's size: a bias below 2^-54)
// and, with unique, a 60-bit code from its last 8 bytes. An attempt is
// taken unless its output is longer than the column or equals the input
// (or contains it, case folded, for inputs of at least fakeContainMin
// characters): no transform returns its input. After fakeAttempts the
// shortest entries alone are tried, which New checks fit; a value no
// attempt serves is withheld (ErrUnchanged).
//
// Fakes are not unique: two customers can both become "Anna Schmidt".
// With unique, a code of fakeCodeChars base32 characters (60 bits) is
// appended, e.g. "Anna Schmidt K7QZ2M4XPA3B": distinct inputs of a domain
// collide with probability below n²/2^61, 2^-21 for a million values.
//
// Fakes carry no key version (Kind.Untagged): they are made with the
// domain's pinned version, else the keyset's first, and survive rotation.

// Subkey purposes of the fake kinds.
const (
	purposeFakeFirst    = "fake-first-name"
	purposeFakeLast     = "fake-last-name"
	purposeFakeFull     = "fake-full-name"
	purposeFakeStreet   = "fake-street"
	purposeFakeCity     = "fake-city"
	purposeFakeCompany  = "fake-company"
	purposeFakeEmail    = "fake-email"
	purposeFakePhone    = "fake-phone"
	purposeFakePostcode = "fake-postcode"
)

const (
	// fakeCodeChars is the unique code's length: 60 bits in base32.
	fakeCodeChars = 12
	// fakeAttempts are tried with every entry, then fakeShortAttempts
	// with the shortest entries only.
	fakeAttempts      = 16
	fakeShortAttempts = 8
	// fakeContainMin: an input of at least this many characters must not
	// occur in its fake (case folded); shorter ones only must not equal it.
	fakeContainMin = 3
	// fakeHouseMax bounds house numbers (1 to fakeHouseMax).
	fakeHouseMax = 199
	// nameBytes is what a value of type name holds (NAMEDATALEN - 1):
	// PostgreSQL cuts longer input, which would merge unique fakes.
	nameBytes = 63
)

// StyleName is the email option style: name (fake_email.go).
const StyleName = "name"

// Locales the fake kinds know.
const (
	LocaleDE = "de"
	LocaleEN = "en"
)

// codeAlphabet writes unique codes of names: base32 (RFC 4648) upper case,
// no 0, 1, 8 or 9 to misread.
const codeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// locale holds one language's dictionaries, each deduplicated in file order.
type locale struct {
	first, last, streets, cities, trades, legal []string
	// numberFirst writes "12 High Street" rather than "Hauptstraße 12".
	numberFirst bool
}

// Each locale is parsed once; the lists are shared and never changed.
var (
	localeDE = sync.OnceValue(func() *locale {
		return &locale{first: splitList(deFirstNames), last: splitList(deLastNames), streets: splitList(deStreets),
			cities: splitList(deCities), trades: splitList(deCompanyWords), legal: splitList(deLegalForms)}
	})
	localeEN = sync.OnceValue(func() *locale {
		return &locale{first: splitList(enFirstNames), last: splitList(enLastNames), streets: splitList(enStreets),
			cities: splitList(enCities), trades: splitList(enCompanyWords), legal: splitList(enLegalForms), numberFirst: true}
	})
)

// splitList reads a comma-separated dictionary, dropping repeats (a
// repeated entry would be picked twice as often).
func splitList(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e != "" && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func localeFor(name string) (*locale, error) {
	switch name {
	case "", LocaleDE:
		return localeDE(), nil
	case LocaleEN:
		return localeEN(), nil
	}
	return nil, fmt.Errorf("%w: locale must be %s or %s, got %q", ErrInvalidSpec, LocaleDE, LocaleEN, name)
}

// isFake reports whether k is one of the realistic fake kinds.
func isFake(k Kind) bool {
	switch k {
	case KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany, KindPhone, KindPostcode:
		return true
	}
	return false
}

// checkFakeOptions refuses locale, unique and style on kinds they do not
// apply to, so a policy naming them by mistake fails at load.
func checkFakeOptions(spec Spec) error {
	nameEmail := spec.Kind == KindEmail && spec.Style == StyleName
	if spec.Style != "" {
		if spec.Kind != KindEmail {
			return fmt.Errorf("%w: style applies only to email", ErrInvalidSpec)
		}
		if spec.Style != StyleName {
			return fmt.Errorf("%w: email style must be %q, got %q", ErrInvalidSpec, StyleName, spec.Style)
		}
		if spec.KeepDomain {
			return fmt.Errorf("%w: email style name writes addresses under example.com, .org or .net and cannot keep_domain", ErrInvalidSpec)
		}
	}
	if spec.Locale != "" {
		if spec.Kind == KindPostcode || !isFake(spec.Kind) && !nameEmail {
			return fmt.Errorf("%w: locale applies only to first_name, last_name, full_name, street, city, company, phone and email with style name", ErrInvalidSpec)
		}
		if _, err := localeFor(spec.Locale); err != nil {
			return err
		}
	}
	if spec.Unique {
		switch spec.Kind {
		case KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany:
		case KindEmail:
			return fmt.Errorf("%w: email is always unique; drop unique", ErrInvalidSpec)
		default:
			return fmt.Errorf("%w: unique applies only to first_name, last_name, full_name, street, city and company (a %s has no room for a unique code)", ErrInvalidSpec, spec.Kind)
		}
	}
	return nil
}

// fakePart is one piece of a fake: a literal, a dictionary pick, a house
// number or the unique code.
type fakePart struct {
	lit   string
	dict  []string // every entry
	short []string // the shortest entries that fit (the fallback)
	house bool
	code  bool
}

// minLen and maxLen are a part's shortest and longest outputs in characters.
func (p *fakePart) minLen() int {
	switch {
	case p.house:
		return 1
	case p.code:
		return fakeCodeChars
	case p.dict != nil:
		return runeLen(p.short[0])
	}
	return runeLen(p.lit)
}

type fakeT struct {
	column
	redacted
	mac    *macPool
	parts  []fakePart
	maxLen int
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// shortest returns the entries of d of the least length.
func shortest(d []string) []string {
	var out []string
	n := -1
	for _, e := range d {
		switch l := runeLen(e); {
		case n < 0 || l < n:
			n, out = l, append(out[:0:0], e)
		case l == n:
			out = append(out, e)
		}
	}
	return out
}

func newFake(spec Spec, ks *Keyset, c column) (Transformer, error) {
	loc, err := localeFor(spec.Locale)
	if err != nil {
		return nil, err
	}
	dict := func(d []string) fakePart { return fakePart{dict: d, short: shortest(d)} }
	sp := fakePart{lit: " "}
	var parts []fakePart
	var purpose string
	switch spec.Kind {
	case KindFirstName:
		purpose, parts = purposeFakeFirst, []fakePart{dict(loc.first)}
	case KindLastName:
		purpose, parts = purposeFakeLast, []fakePart{dict(loc.last)}
	case KindFullName:
		purpose, parts = purposeFakeFull, []fakePart{dict(loc.first), sp, dict(loc.last)}
	case KindStreet:
		purpose, parts = purposeFakeStreet, []fakePart{dict(loc.streets), sp, {house: true}}
		if loc.numberFirst {
			parts = []fakePart{{house: true}, sp, dict(loc.streets)}
		}
	case KindCity:
		purpose, parts = purposeFakeCity, []fakePart{dict(loc.cities)}
	case KindCompany:
		purpose, parts = purposeFakeCompany, []fakePart{dict(loc.last), sp, dict(loc.trades), sp, dict(loc.legal)}
	default:
		return nil, fmt.Errorf("%w: %s is not a fake kind", ErrInvalidSpec, spec.Kind)
	}
	if spec.Unique {
		parts = append(parts, sp, fakePart{code: true})
	}
	if spec.MaxLen > 0 {
		total := 0
		for i := range parts {
			total += parts[i].minLen()
		}
		if total > spec.MaxLen {
			return nil, fmt.Errorf("%w: the shortest %s needs %d characters, the column holds %d", ErrDoesNotFit, spec.Kind, total, spec.MaxLen)
		}
	}
	key, err := ks.derive(c.version, purpose, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &fakeT{column: c, mac: newMACPool(key), parts: parts, maxLen: spec.MaxLen}, nil
}

// fakeSeed computes seed = HMAC(k, 0x00 || in) into seed.
func fakeSeed(s *macState, in []byte, seed *[32]byte) {
	s.h.Reset()
	s.buf[0] = 0
	s.h.Write(s.buf[:1])
	s.h.Write(in)
	copy(seed[:], s.finish())
}

// fakeBlock returns block(j) = HMAC(k, 0x01 || j || seed), held in s.sum.
func fakeBlock(s *macState, seed *[32]byte, j int) []byte {
	s.h.Reset()
	s.buf[0] = 1
	binary.BigEndian.PutUint32(s.buf[1:5], uint32(j))
	copy(s.buf[5:37], seed[:])
	s.h.Write(s.buf[:37])
	return s.finish()
}

// appendCode appends the 60-bit unique code of b (8 bytes) in alphabet.
func appendCode(dst, b []byte, alphabet string) []byte {
	v := binary.BigEndian.Uint64(b)
	for i := range fakeCodeChars {
		dst = append(dst, alphabet[v>>(59-5*i)&31])
	}
	return dst
}

// Transform implements Transformer.
func (t *fakeT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	s := t.mac.get()
	defer t.mac.put(s)
	var seed [32]byte
	fakeSeed(s, in, &seed)
	start := len(dst)
	for j := range fakeAttempts + fakeShortAttempts {
		blk := fakeBlock(s, &seed, j)
		out := dst[:start]
		n := 0
		for i := range t.parts {
			p := &t.parts[i]
			switch {
			case p.code:
				out = appendCode(out, blk[24:32], codeAlphabet)
			case p.house:
				hi := fakeHouseMax
				if j >= fakeAttempts {
					hi = 9
				}
				out = appendUint(out, 1+pick(blk, n, hi))
				n++
			case p.dict != nil:
				d := p.dict
				if j >= fakeAttempts {
					d = p.short
				}
				out = append(out, d[pick(blk, n, len(d))]...)
				n++
			default:
				out = append(out, p.lit...)
			}
		}
		if fitsColumn(out[start:], t.oid, t.maxLen) && !leaks(out[start:], in, fakeContainMin) {
			return out, nil
		}
		dst = out[:start]
	}
	return dst[:start], fmt.Errorf("%w: no fake fits the column and differs from the value", ErrUnchanged)
}

// fitsColumn reports whether out fits maxLen characters (0: any) and,
// for type name, its 63 bytes.
func fitsColumn(out []byte, oid uint32, maxLen int) bool {
	if oid == OIDName && len(out) > nameBytes {
		return false
	}
	return maxLen <= 0 || len(out) <= maxLen || utf8.RuneCount(out) <= maxLen
}

// pick reduces the i-th 64-bit number of blk (i < 3) mod n.
func pick(blk []byte, i, n int) int {
	return int(binary.BigEndian.Uint64(blk[8*i:]) % uint64(n))
}

func appendUint(dst []byte, v int) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// leaks reports whether out would show in: equal to it when case is
// folded, or, for inputs of at least minContain characters (0: never),
// containing it case folded.
func leaks(out, in []byte, minContain int) bool {
	if equalFold(out, in) {
		return true
	}
	if minContain <= 0 || utf8.RuneCount(in) < minContain || len(in) > 4*len(out)+4 {
		return false
	}
	for i := 0; i < len(out); {
		if hasPrefixFold(out[i:], in) {
			return true
		}
		_, w := utf8.DecodeRune(out[i:])
		i += w
	}
	return false
}

func equalFold(a, b []byte) bool {
	n, ok := prefixFold(a, b)
	return ok && n == len(a)
}

func hasPrefixFold(s, prefix []byte) bool {
	_, ok := prefixFold(s, prefix)
	return ok
}

// prefixFold reports whether s starts with prefix under simple Unicode
// lower-casing, and how many bytes of s that prefix spans.
func prefixFold(s, prefix []byte) (int, bool) {
	i := 0
	for len(prefix) > 0 {
		if i >= len(s) {
			return 0, false
		}
		a, wa := utf8.DecodeRune(s[i:])
		b, wb := utf8.DecodeRune(prefix)
		if a != b && unicode.ToLower(a) != unicode.ToLower(b) {
			return 0, false
		}
		i += wa
		prefix = prefix[wb:]
	}
	return i, true
}

// FakeWords returns the dictionary words the fakes of locale (de, en; ""
// for de) are made from: given names, surnames, street names and cities.
// A leak check uses it to tell a fake that happens to equal someone's
// real name from that person's value.
func FakeWords(localeName string) ([]string, error) {
	l, err := localeFor(localeName)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, words := range [][]string{l.first, l.last, l.streets, l.cities} {
		out = append(out, words...)
	}
	return out, nil
}
