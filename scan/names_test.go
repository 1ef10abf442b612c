package scan

import (
	"slices"
	"testing"

	"github.com/pgpseudo/pgpseudo/configs/sample"
	"github.com/pgpseudo/pgpseudo/policy"
)

func TestTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"customer_id", []string{"customer", "id"}},
		{"customerEMailAddress2", []string{"customer", "e", "mail", "address", "2"}},
		{"IPAddress", []string{"ip", "address"}},
		{"Straße", []string{"strasse"}},
		{"e-mail", []string{"e", "mail"}},
		{"Geburtsdatum", []string{"geburtsdatum"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Tokens(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Tokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassifyName(t *testing.T) {
	customers := policy.TableName{Schema: "public", Table: "customers"}
	products := policy.TableName{Schema: "public", Table: "products"}
	tests := []struct {
		table  policy.TableName
		column string
		kind   Kind // "" for no hit
	}{
		{customers, "full_name", KindName},
		{customers, "first_name", KindName},
		{customers, "lastName", KindName},
		{customers, "Vorname", KindName},
		{customers, "nachname", KindName},
		{customers, "name", KindName},
		{customers, "recipient_name", KindName},
		{customers, "email", KindEmail},
		{customers, "e_mail", KindEmail},
		{customers, "email_address", KindEmail},
		{customers, "mail", KindEmail},
		{customers, "telefon", KindPhone},
		{customers, "phone_number", KindPhone},
		{customers, "handy", KindPhone},
		{customers, "mobile", KindPhone},
		{customers, "fax", KindPhone},
		{customers, "iban", KindIBAN},
		{customers, "kontonummer", KindAccount},
		{customers, "bic", KindBIC},
		{customers, "card_number", KindCard},
		{customers, "geburtsdatum", KindBirth},
		{customers, "birth_date", KindBirth},
		{customers, "date_of_birth", KindBirth},
		{customers, "dob", KindBirth},
		{customers, "strasse", KindStreet},
		{customers, "Straße", KindStreet},
		{customers, "street", KindStreet},
		{customers, "address", KindAddress},
		{customers, "plz", KindPostcode},
		{customers, "zip", KindPostcode},
		{customers, "postcode", KindPostcode},
		{customers, "postal_code", KindPostcode},
		{customers, "ort", KindCity},
		{customers, "city", KindCity},
		{customers, "country", KindCountry},
		{customers, "steuer_id", KindTaxID},
		{customers, "tax_id", KindTaxID},
		{customers, "svnr", KindSocialSec},
		{customers, "sozialversicherungsnummer", KindSocialSec},
		{customers, "ausweisnummer", KindIDDocument},
		{customers, "passport_no", KindIDDocument},
		{customers, "ip", KindIP},
		{customers, "ip_address", KindIP},
		{customers, "lastLoginIP", KindIP},
		{customers, "religion", KindReligion},
		{customers, "konfession", KindReligion},
		{customers, "gesundheitszustand", KindHealth},
		{customers, "diagnose", KindHealth},
		{customers, "diagnosis", KindHealth},
		{customers, "health_note", KindHealth},
		{customers, "allergies", KindHealth},
		{customers, "ethnie", KindEthnic},
		{customers, "ethnic_origin", KindEthnic},
		{customers, "gewerkschaft", KindUnion},
		{customers, "union_member", KindUnion},
		{customers, "partei", KindPolitical},
		{customers, "political_views", KindPolitical},
		{customers, "sexual_orientation", KindSexual},
		{customers, "biometric_template", KindBiometric},
		{customers, "genetic_profile", KindGenetic},
		// Not personal: no false positives on these.
		{customers, "customer_id", ""},
		{customers, "amount", ""},
		{customers, "status", ""},
		{customers, "ordered_at", ""},
		{customers, "created_at", ""},
		{customers, "quantity", ""},
		{customers, "sku", ""},
		{customers, "product_name", ""},
		{customers, "total", ""},
		{customers, "currency", ""},
		{customers, "address_id", ""},
		{customers, "email_count", ""},
		{customers, "sort_order", ""},
		{customers, "login_ref", ""},
		{customers, "newsletter", ""},
		{customers, "tracking_no", ""},
		{customers, "carrier", ""},
		{customers, "line_no", ""},
		{customers, "unit_price", ""},
		{customers, "description", ""},
		{customers, "timestamp", ""},
		{customers, "shipped_at", ""},
		{products, "name", ""},
		{products, "file_name", ""},
	}
	for _, tt := range tests {
		m, ok := ClassifyName(tt.table, tt.column)
		switch {
		case tt.kind == "" && ok:
			t.Errorf("%s.%s: classified as %s (%s), want no hit", tt.table, tt.column, m.Kind, m.Rule)
		case tt.kind != "" && !ok:
			t.Errorf("%s.%s: no hit, want %s", tt.table, tt.column, tt.kind)
		case ok && m.Kind != tt.kind:
			t.Errorf("%s.%s: %s (%s), want %s", tt.table, tt.column, m.Kind, m.Rule, tt.kind)
		}
	}
}

func TestSpecialTable(t *testing.T) {
	for _, tt := range []struct {
		table string
		want  bool
	}{{"health_records", true}, {"diagnosen", true}, {"orders", false}, {"loyalty_survey", false}, {"customers", false}} {
		if _, got := SpecialTable(policy.TableName{Schema: "public", Table: tt.table}); got != tt.want {
			t.Errorf("SpecialTable(%s) = %v, want %v", tt.table, got, tt.want)
		}
	}
}

// TestShopSampleValidates checks the validators against the generated
// shop: every seeded IBAN, tax ID, card number, phone and e-mail must be
// recognised, or the sample would not exercise them.
func TestShopSampleValidates(t *testing.T) {
	for _, c := range sample.ShopCustomers(200, 42) {
		for _, check := range []struct {
			what string
			ok   bool
		}{
			{"iban", IsIBAN(c.IBAN)}, {"tax id", IsGermanTaxID(c.TaxID)}, {"card", IsCardNumber(c.CardNumber)},
			{"phone", IsPhone(c.Phone)}, {"email", IsEmail(c.Email)}, {"login_ref", IsEmail(c.LoginRef)},
		} {
			if !check.ok {
				t.Errorf("customer %d: generated %s is not valid", c.ID, check.what)
			}
		}
	}
}
