package crypto

import (
	"fmt"
	"testing"
)

// BenchmarkTransform measures every transformer in text and binary format
// on a typical value, writing into a reused buffer (the proxy's pattern).
func BenchmarkTransform(b *testing.B) {
	ks, err := NewKeyset(testNow)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range typicalInputs() {
		for _, f := range []int16{FormatText, FormatBinary} {
			in := c.input(f)
			name := fmt.Sprintf("%s/%s/oid=%d", c.spec.Kind, formatName(f), c.oid)
			if c.spec.Reversible {
				name = "token-reversible/" + formatName(f)
			}
			b.Run(name, func(b *testing.B) {
				tr, err := New(c.spec, ks, c.oid, f)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, 256)
				b.ReportAllocs()
				for b.Loop() {
					if dst, err = tr.Transform(dst[:0], in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func mustNumeric(s string) []byte {
	b, err := appendNumericBinary(nil, []byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

// typicalInput is one transformer with a typical value in both formats.
type typicalInput struct {
	spec Spec
	oid  uint32
	text string
	bin  []byte
}

// typicalInputs are the values the per-value benchmark and the
// concurrency test transform: a 13-character name, a 25-character email,
// a phone number, a German IBAN, a card, int4/int8, a uuid, dates, numbers.
func typicalInputs() []typicalInput {
	return []typicalInput{
		{Spec{Kind: KindToken, Domain: "d"}, OIDText, "Alice Example", nil},
		{Spec{Kind: KindToken, Domain: "d", Reversible: true}, OIDText, "Alice Example", nil},
		{Spec{Kind: KindEmail, Domain: "d"}, OIDText, "alice.example@example.com", nil},
		{Spec{Kind: KindDigits, Domain: "d", KeepPrefix: 3}, OIDText, "+49 170 1234567", nil},
		{Spec{Kind: KindIBAN, Domain: "d"}, OIDText, "DE89 3704 0044 0532 0130 00", nil},
		{Spec{Kind: KindCard, Domain: "d", KeepPrefix: 6}, OIDText, "4111 1111 1111 1111", nil},
		{Spec{Kind: KindInt, Domain: "d"}, OIDInt4, "123456", []byte{0, 1, 0xe2, 0x40}},
		{Spec{Kind: KindInt, Domain: "d"}, OIDInt8, "1234567890123", []byte{0, 0, 1, 0x1f, 0x71, 0xfb, 0x04, 0xcb}},
		{Spec{Kind: KindUUID, Domain: "d"}, OIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", []byte("0123456789abcdef")},
		{Spec{Kind: KindYear}, OIDDate, "2024-02-29", []byte{0, 0, 0x22, 0x79}},
		{Spec{Kind: KindMonth}, OIDTimestampTZ, "2024-02-29 13:45:00.123+01", []byte{0, 2, 0xb5, 0x3c, 0x18, 0x3a, 0xe5, 0x80}},
		{Spec{Kind: KindShift, Domain: "d", Days: 30}, OIDDate, "2024-02-29", []byte{0, 0, 0x22, 0x79}},
		{Spec{Kind: KindRound, Digits: 1}, OIDNumeric, "12345.6789", mustNumeric("12345.6789")},
		{Spec{Kind: KindRound, Bucket: "10"}, OIDInt4, "37", []byte{0, 0, 0, 37}},
		{Spec{Kind: KindRound, Digits: 2}, OIDFloat8, "3.14159", []byte{0x40, 0x09, 0x21, 0xf9, 0xf0, 0x1b, 0x86, 0x6e}},
		{Spec{Kind: KindMask, KeepLast: 4}, OIDText, "DE89370400440532013000", nil},
		{Spec{Kind: KindHash, Domain: "d"}, OIDText, "Alice Example", nil},
		{Spec{Kind: KindFullName, Domain: "d", Unique: true}, OIDText, "Alice Example", nil},
		{Spec{Kind: KindEmail, Domain: "d", Style: StyleName}, OIDText, "alice.example@example.com", nil},
		{Spec{Kind: KindPhone, Domain: "d"}, OIDText, "+49 170 1234567", nil},
		{Spec{Kind: KindPostcode, Domain: "d"}, OIDText, "10115", nil},
		{Spec{Kind: KindRedact}, OIDText, "Alice Example", nil},
		{Spec{Kind: KindNull}, OIDText, "Alice Example", nil},
	}
}

// input is the value in format f.
func (c typicalInput) input(f int16) []byte {
	if f == FormatBinary && c.bin != nil {
		return c.bin
	}
	return []byte(c.text)
}
