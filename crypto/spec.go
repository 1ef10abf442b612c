package crypto

import (
	"fmt"
	"slices"
	"strings"
)

// Kind names a transformer.
type Kind string

// Transformer kinds.
const (
	KindToken  Kind = "token"  // opaque (or reversible AES-SIV) text token
	KindEmail  Kind = "email"  // email-shaped token
	KindDigits Kind = "digits" // FF1 over the digits, separators kept
	KindIBAN   Kind = "iban"   // FF1 over the BBAN digits, valid check digits
	KindCard   Kind = "card"   // FF1 over the digits, Luhn-valid
	KindInt    Kind = "int"    // FF1 bijection over the integer type's range
	KindUUID   Kind = "uuid"   // AES bijection over the 128-bit value
	KindYear   Kind = "year"   // date/timestamp truncated to 1 January
	KindMonth  Kind = "month"  // date/timestamp truncated to the 1st of the month
	KindShift  Kind = "shift"  // date/timestamp moved by a keyed offset within ±Days
	KindRound  Kind = "round"  // number rounded to Digits or floored to a Bucket
	KindMask   Kind = "mask"   // keep first/last characters, rest '*'
	KindHash   Kind = "hash"   // keyed hash, hex
	KindNull   Kind = "null"   // SQL NULL
	KindRedact Kind = "redact" // a constant

	// Realistic fakes (fake.go): keyed picks from built-in dictionaries.
	KindFirstName Kind = "first_name" // a given name
	KindLastName  Kind = "last_name"  // a surname
	KindFullName  Kind = "full_name"  // given name and surname
	KindStreet    Kind = "street"     // street name and house number
	KindCity      Kind = "city"       // a city
	KindCompany   Kind = "company"    // surname, trade and legal form
	KindPhone     Kind = "phone"      // a drama number in the input's shape (phone.go)
	KindPostcode  Kind = "postcode"   // keyed characters in the input's shape (postcode.go)
)

// Injective reports whether equal outputs of a transform come only from
// equal inputs (tokens, format-preserving encryption, keyed hashes), as
// opposed to transforms that merge values (truncation, rounding, masks,
// shifts, constants). Only an injective output shows no more than its
// input's equality.
func (k Kind) Injective() bool {
	switch k {
	case "", KindToken, KindEmail, KindDigits, KindIBAN, KindCard, KindInt, KindUUID, KindHash:
		return true
	}
	return false
}

// Untagged reports whether a keyed kind's outputs carry no key version
// (type-preserving bijections, shift, the realistic fakes; also email
// with style name, see Spec.untagged): they are made with one version for
// good, the domain's pinned key_version or else the keyset's first, and a
// rotation does not change them (docs/keys.md).
func (k Kind) Untagged() bool {
	switch k {
	case KindInt, KindUUID, KindDigits, KindIBAN, KindCard, KindShift,
		KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany, KindPhone, KindPostcode:
		return true
	}
	return false
}

// untagged is Kind.Untagged for the spec: email addresses made with style
// name carry no version either.
func (s Spec) untagged() bool {
	return s.Kind.Untagged() || s.Kind == KindEmail && s.Style == StyleName
}

// ValidDomainName reports whether n may name a declared token domain: 1 to
// 63 letters, digits, '_', '.' or '-', starting with a letter or digit and
// not with "x-". Such a name is one plain Vault path segment; "x-" starts
// the hex-encoded names of the others (a column's implicit domain, which
// has ':' and the column's names in it, so no declared name equals it).
func ValidDomainName(n string) bool {
	if n == "" || len(n) > 63 || strings.HasPrefix(n, "x-") {
		return false
	}
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Wire format codes as in Bind/RowDescription.
const (
	FormatText   int16 = 0
	FormatBinary int16 = 1
)

// PostgreSQL built-in type OIDs the transformers know.
const (
	OIDBool        uint32 = 16
	OIDName        uint32 = 19
	OIDInt8        uint32 = 20
	OIDInt2        uint32 = 21
	OIDInt4        uint32 = 23
	OIDText        uint32 = 25
	OIDFloat4      uint32 = 700
	OIDFloat8      uint32 = 701
	OIDBPChar      uint32 = 1042
	OIDVarchar     uint32 = 1043
	OIDDate        uint32 = 1082
	OIDTimestamp   uint32 = 1114
	OIDTimestampTZ uint32 = 1184
	OIDNumeric     uint32 = 1700
	OIDUUID        uint32 = 2950
)

// Spec is one column's transformation as the policy states it.
type Spec struct {
	// Kind selects the transformer.
	Kind Kind `yaml:"kind"`
	// Domain is the token domain: equal values in the same domain give equal
	// outputs across tables and columns; different domains are unlinkable.
	Domain string `yaml:"domain"`
	// Reversible makes token use deterministic AEAD (AES-SIV) so the value
	// can be detokenised. int, uuid, digits, iban and card are always
	// reversible bijections.
	Reversible bool `yaml:"reversible"`
	// KeyVersion pins a key version; 0 means the keyset's primary version.
	KeyVersion uint32 `yaml:"key_version"`
	// KeepDomain keeps the domain part of an email address.
	KeepDomain bool `yaml:"keep_domain"`
	// KeepPrefix keeps the first N digits in clear (digits, card; for iban
	// the first N BBAN digits).
	KeepPrefix int `yaml:"keep_prefix"`
	// Days bounds the shift offset to ±Days.
	Days int `yaml:"days"`
	// KeepTime keeps a shifted timestamp's time of day (else midnight).
	KeepTime bool `yaml:"keep_time"`
	// Digits is round's number of decimal digits (negative rounds to tens,
	// hundreds…); used when Bucket is empty.
	Digits int `yaml:"digits"`
	// Bucket, a positive decimal, makes round floor values to a multiple of it.
	Bucket string `yaml:"bucket"`
	// KeepFirst and KeepLast are mask's clear characters at each end.
	KeepFirst int `yaml:"keep_first"`
	KeepLast  int `yaml:"keep_last"`
	// Constant is redact's replacement value, in PostgreSQL text form.
	Constant string `yaml:"constant"`
	// MaxLen is the column's declared length in characters (varchar(n),
	// char(n)), 0 for none. The proxy sets it from the result's type
	// modifier, never the policy: every output then fits the column, so a
	// dump restores (see fit.go).
	MaxLen int `yaml:"-"`
	// Locale selects the fakes' dictionaries and phone ranges: "de"
	// (default) or "en" (first_name, last_name, full_name, street, city,
	// company, phone, email with style name).
	Locale string `yaml:"locale"`
	// Unique appends a 60-bit keyed code to a fake name, street, city or
	// company, so distinct inputs keep distinct outputs (fake.go).
	Unique bool `yaml:"unique"`
	// Style "name" makes email write first.last.code@example.com
	// addresses from the fake names (fake_email.go).
	Style string `yaml:"style"`
}

// Transformer rewrites one column's values. Implementations are safe for
// concurrent use and hold their derived keys (computed once in New).
type Transformer interface {
	// Transform appends the transformed value of src (one column value in
	// the wire format given to New, never NULL) to dst and returns it. It
	// does not allocate when the output fits in dst's capacity (except where
	// documented). dst's spare capacity must not overlap src: several
	// transformers work on the copy in place and compare it with src. On
	// error nothing is appended, and the caller must not forward src
	// (ErrUnchanged: the transform could not change it; ErrInvalidValue:
	// it could not read it).
	Transform(dst, src []byte) ([]byte, error)
	// ReturnsNull reports that every output is SQL NULL: the caller writes
	// length -1 instead of calling Transform.
	ReturnsNull() bool
	// KeyVersion is the key version the outputs are made with (0 for
	// unkeyed transformers), for the audit record.
	KeyVersion() uint32
}

// Reverser is implemented by transformers whose outputs can be mapped back
// to the input (reversible token, int, uuid, digits, iban, card).
type Reverser interface {
	// Reverse appends the original value of a transformed value to dst.
	Reverse(dst, src []byte) ([]byte, error)
}

// support lists, per kind, the type OIDs it accepts; every listed type is
// supported in both text and binary format.
func support(k Kind) []uint32 {
	text := []uint32{OIDText, OIDVarchar, OIDBPChar, OIDName}
	dates := []uint32{OIDDate, OIDTimestamp, OIDTimestampTZ}
	switch k {
	case KindToken, KindEmail, KindDigits, KindIBAN, KindCard, KindMask, KindHash,
		KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany, KindPhone, KindPostcode:
		return text
	case KindInt:
		// Not int2: 65,536 values are below FF1's minimum domain of 10^6.
		return []uint32{OIDInt4, OIDInt8}
	case KindUUID:
		return []uint32{OIDUUID}
	case KindYear, KindMonth, KindShift:
		return dates
	case KindRound:
		return []uint32{OIDInt2, OIDInt4, OIDInt8, OIDNumeric, OIDFloat4, OIDFloat8}
	case KindRedact:
		return append(text, OIDBool, OIDInt2, OIDInt4, OIDInt8, OIDUUID, OIDNumeric, OIDFloat4, OIDFloat8, OIDDate, OIDTimestamp, OIDTimestampTZ)
	}
	return nil
}

// Supports reports whether New accepts kind for the type and format. null
// accepts every type.
func Supports(kind Kind, typeOID uint32, format int16) bool {
	if format != FormatText && format != FormatBinary {
		return false
	}
	if kind == KindNull {
		return true
	}
	return slices.Contains(support(kind), typeOID)
}

// New builds the transformer for one column: spec applied to values of
// typeOID in the given wire format. Every unsupported combination or bad
// option is reported here (wrapping ErrUnsupported or ErrInvalidSpec), so
// it surfaces at policy load. ks may be nil for unkeyed kinds.
func New(spec Spec, ks *Keyset, typeOID uint32, format int16) (Transformer, error) {
	if spec.Kind == KindInt && typeOID == OIDInt2 {
		return nil, fmt.Errorf("%w: int on smallint: FF1 needs a domain of at least 10^6 values and smallint has 65,536 (use round, redact or null, or widen the column)", ErrUnsupported)
	}
	if !Supports(spec.Kind, typeOID, format) {
		return nil, fmt.Errorf("%w: %s on type oid %d in %s format", ErrUnsupported, spec.Kind, typeOID, formatName(format))
	}
	if spec.Reversible && spec.Kind != KindToken {
		switch spec.Kind {
		case KindInt, KindUUID, KindDigits, KindIBAN, KindCard:
			// Always reversible.
		default:
			return nil, fmt.Errorf("%w: %s cannot be reversible", ErrUnsupported, spec.Kind)
		}
	}
	if err := checkFakeOptions(spec); err != nil {
		return nil, err
	}
	var version uint32
	if keyed(spec.Kind) {
		if ks == nil {
			return nil, fmt.Errorf("%w: %s needs a keyset", ErrInvalidSpec, spec.Kind)
		}
		if spec.Domain == "" {
			return nil, fmt.Errorf("%w: %s needs a token domain", ErrInvalidSpec, spec.Kind)
		}
		want := spec.KeyVersion
		if want == 0 && spec.untagged() && len(ks.versions) > 0 {
			// Outputs without room for a version tag use one version for
			// good: the domain's pinned one, else the keyset's first. With
			// the primary, a rotation would give one person's old token to
			// another person (bijections), let detokenize reverse with the
			// wrong key, and move every shifted day again.
			want = ks.versions[0].Version
		}
		v, err := ks.resolve(want)
		if err != nil {
			return nil, err
		}
		version = v
	}
	c := column{oid: typeOID, binary: format == FormatBinary, version: version}
	t, err := build(spec, ks, c)
	if err != nil || spec.MaxLen <= 0 {
		return t, err
	}
	return fit(t, spec)
}

// build makes the transformer of spec's kind for column c.
func build(spec Spec, ks *Keyset, c column) (Transformer, error) {
	switch spec.Kind {
	case KindToken:
		return newToken(spec, ks, c)
	case KindEmail:
		if spec.Style == StyleName {
			return newFakeEmail(spec, ks, c)
		}
		return newEmail(spec, ks, c)
	case KindFirstName, KindLastName, KindFullName, KindStreet, KindCity, KindCompany:
		return newFake(spec, ks, c)
	case KindPhone:
		return newPhone(spec, ks, c)
	case KindPostcode:
		return newPostcode(spec, ks, c)
	case KindDigits, KindIBAN, KindCard:
		return newDigits(spec, ks, c)
	case KindInt:
		return newInt(spec, ks, c)
	case KindUUID:
		return newUUID(spec, ks, c)
	case KindYear, KindMonth:
		return newTruncate(spec, c)
	case KindShift:
		return newShift(spec, ks, c)
	case KindRound:
		return newRound(spec, c)
	case KindMask:
		return newMask(spec, c)
	case KindHash:
		return newHash(spec, ks, c)
	case KindNull:
		return nullT{}, nil
	case KindRedact:
		return newRedact(spec, c)
	}
	return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidSpec, spec.Kind)
}

// NewReverser builds the inverse of the transformer New would build; spec
// must name a reversible kind. KeyVersion selects the version the values
// were made with (0: primary).
func NewReverser(spec Spec, ks *Keyset, typeOID uint32, format int16) (Reverser, error) {
	t, err := New(spec, ks, typeOID, format)
	if err != nil {
		return nil, err
	}
	r, ok := t.(Reverser)
	if !ok || (spec.Kind == KindToken && !spec.Reversible) {
		return nil, fmt.Errorf("%w: %s", ErrNotReversible, spec.Kind)
	}
	return r, nil
}

func keyed(k Kind) bool {
	switch k {
	case KindToken, KindEmail, KindDigits, KindIBAN, KindCard, KindInt, KindUUID, KindShift, KindHash:
		return true
	}
	return isFake(k)
}

func formatName(f int16) string {
	switch f {
	case FormatText:
		return "text"
	case FormatBinary:
		return "binary"
	}
	return fmt.Sprintf("unknown(%d)", f)
}

// column carries what every transformer needs about its column.
type column struct {
	oid     uint32
	binary  bool
	version uint32
}

// ReturnsNull implements Transformer.
func (column) ReturnsNull() bool { return false }

// KeyVersion implements Transformer.
func (c column) KeyVersion() uint32 { return c.version }

// nullT is the null transformer.
type nullT struct{}

func (nullT) Transform(dst, _ []byte) ([]byte, error) { return dst, nil }
func (nullT) ReturnsNull() bool                       { return true }
func (nullT) KeyVersion() uint32                      { return 0 }
