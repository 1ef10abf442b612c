package scan

import (
	"testing"
	"time"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		name string
		ok   func(string) bool
		good []string
		bad  []string
	}{
		{"email", IsEmail,
			[]string{"anna.mueller.7@example-mail.de", "x+tag@sub.example.org", "a@b.co", "émilie.weiß.3@example-mail.de"},
			[]string{"anna.mueller", "@example.de", "a@b", "a@b.c", "a b@example.de", "a@-b.de", "Anna <a@b.de>"}},
		{"iban", IsIBAN,
			[]string{"DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "AT611904300234573201"},
			[]string{"DE89370400440532013001", "DE8937040044053201300", "DE00370400440532013000", "XX89370400440532013000", "de89"}},
		{"german tax id", IsGermanTaxID,
			[]string{"86095742719", "47036892816", "65929970489", "57549285017", "25768131411"},
			[]string{"86095742718", "06095742719", "1234567890", "11111111111", "12345678901", "8609574271a"}},
		{"card", IsCardNumber,
			[]string{"4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"},
			[]string{"4111111111111112", "411111111111", "41111111111111111111", "4111x11111111111", "1234567812345678"}},
		{"phone", IsPhone,
			[]string{"+49 151 20000001", "030 20000003", "+49 30 901820", "0151/23456789", "+1 202-555-0147", "(030) 1234567"},
			[]string{"10115", "12345678901", "+49 1", "DE89370400440532013000", "hello", "2024-01-01", "0049"}},
		{"ip", IsIP,
			[]string{"10.0.0.7", "192.0.2.1", "2001:db8::1", "::1"},
			[]string{"10.0.0", "256.1.1.1", "10.0.0.7/24", "host.example", "2001:db8:::1"}},
		{"icd10", IsICD10,
			[]string{"E11.9", "J45", "F32.1", "I10", "M54.5"},
			[]string{"e11.9", "U07.1", "E1", "E11.12345", "SKU-123", "123"}},
		{"health vocabulary", IsHealthVocabulary,
			[]string{"Diabetes mellitus Typ 2", "Asthma bronchiale", "Migräne", "Erdnussallergie", "Laktoseintoleranz"},
			[]string{"Bio-Kaffee 500 g", "Rückfrage zu Bestellung", "shipped", "Hauptstraße 12"}},
		{"religion vocabulary", IsReligionVocabulary,
			[]string{"römisch-katholisch", "evangelisch", "muslimisch", "jüdisch", "Buddhist", "konfessionslos"},
			[]string{"Berlin", "paid", "Regenjacke", "Anna Müller"}},
		{"contact in free text", ContainsContact,
			[]string{"Hallo, hier ist Anna (anna@example.de). Bitte rufen Sie an.", "Bitte rufen Sie mich unter +49 151 20000001 an."},
			[]string{"Rückfrage zu Bestellung 12345", "Lieferung am 2024-01-02 um 10:00", "Artikel 4000013"}},
	}
	for _, tt := range tests {
		for _, v := range tt.good {
			if !tt.ok(v) {
				t.Errorf("%s: %q rejected", tt.name, v)
			}
		}
		for _, v := range tt.bad {
			if tt.ok(v) {
				t.Errorf("%s: %q accepted", tt.name, v)
			}
		}
	}
}

func TestPlausibleBirthDate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want bool
	}{
		{"1980-05-17", true},
		{"1900-01-01", true},
		{"2012-05-31 10:00:00+00", true},
		{"2012-06-02", false}, // younger than 14
		{"1899-12-31", false},
		{"2025-01-01 12:00:00+01", false},
		{"17.05.1980", false}, // not DateStyle ISO
		{"", false},
	}
	for _, tt := range tests {
		if _, got := PlausibleBirthDate(tt.v, now); got != tt.want {
			t.Errorf("PlausibleBirthDate(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
