package scan

import (
	"strings"
	"unicode"

	"github.com/pgpseudo/pgpseudo/policy"
)

// Kind is what a column holds, finer than a policy category: it decides
// the proposed transform (an e-mail address gets the email transform, a
// phone number digits).
type Kind string

// Kinds of personal data the scanner tells apart.
const (
	KindName        Kind = "name"
	KindEmail       Kind = "e-mail"
	KindPhone       Kind = "phone number"
	KindIBAN        Kind = "IBAN"
	KindBIC         Kind = "BIC"
	KindAccount     Kind = "account number"
	KindCard        Kind = "card number"
	KindBirth       Kind = "date of birth"
	KindStreet      Kind = "street"
	KindAddress     Kind = "address"
	KindPostcode    Kind = "postcode"
	KindCity        Kind = "city"
	KindCountry     Kind = "country"
	KindTaxID       Kind = "tax ID"
	KindSocialSec   Kind = "social security number"
	KindIDDocument  Kind = "ID document number"
	KindIP          Kind = "IP address"
	KindGender      Kind = "gender"
	KindNationality Kind = "nationality"
	KindFreeText    Kind = "free text naming a person"
	KindReligion    Kind = "religion"
	KindHealth      Kind = "health"
	KindEthnic      Kind = "ethnic origin"
	KindUnion       Kind = "trade union membership"
	KindPolitical   Kind = "political opinion"
	KindSexual      Kind = "sex life or orientation"
	KindBiometric   Kind = "biometric data"
	KindGenetic     Kind = "genetic data"
	KindKey         Kind = "key"
)

// Category is the policy category of a kind.
func (k Kind) Category() string {
	switch k {
	case KindName, KindBirth, KindTaxID, KindSocialSec, KindIDDocument, KindGender, KindNationality, KindFreeText:
		return "identity"
	case KindEmail, KindPhone:
		return "contact"
	case KindIBAN, KindBIC, KindAccount, KindCard:
		return "financial"
	case KindStreet, KindAddress, KindPostcode, KindCity, KindCountry:
		return "location"
	case KindIP:
		return "online"
	case KindReligion, KindHealth, KindEthnic, KindUnion, KindPolitical, KindSexual, KindBiometric, KindGenetic:
		return policy.CategorySpecial
	case KindKey:
		return "key"
	}
	return ""
}

// nameRule matches a phrase of identifier tokens. With prefix, the last
// word only has to begin the token ("allerg" matches "allergies").
type nameRule struct {
	words  []string
	prefix bool
	kind   Kind
}

// nameRules are the German and English dictionaries, most specific first:
// the first rule that matches decides, so "ip_address" is an IP address
// and "email_address" an e-mail before either is an address.
func nameRules() []nameRule {
	r := func(kind Kind, prefix bool, phrases ...string) []nameRule {
		var out []nameRule
		for _, p := range phrases {
			out = append(out, nameRule{words: strings.Fields(p), prefix: prefix, kind: kind})
		}
		return out
	}
	var rules []nameRule
	for _, group := range [][]nameRule{
		// Art. 9 first: "sex life" before "sex", "health insurance
		// number" is health data before it is a number.
		r(KindReligion, true, "religi", "konfession", "kirchensteuer", "denomination", "glaubens"),
		r(KindHealth, true, "gesundheit", "health", "diagnos", "krankheit", "disease", "illness", "medical", "medizin",
			"medication", "medikament", "allerg", "disabilit", "behinderung", "icd", "symptom", "befund", "therap",
			"blutgruppe", "blood type", "schwanger", "pregnan", "patient", "unvertraeglich", "intoleran"),
		r(KindEthnic, true, "ethni", "rasse"),
		r(KindEthnic, false, "race"),
		r(KindUnion, true, "gewerkschaft", "trade union"),
		r(KindUnion, false, "union"),
		r(KindPolitical, true, "politic", "politisch", "partei"),
		r(KindSexual, true, "sexual", "sexuell", "sex life", "sex leben"),
		r(KindBiometric, true, "biometri", "fingerprint", "fingerabdruck"),
		r(KindGenetic, true, "genet", "genom"),
		r(KindGenetic, false, "dna"),
		r(KindIP, false, "ip", "ip address", "ip addr", "ipaddress", "ipaddr", "ipv4", "ipv6", "remote addr"),
		r(KindEmail, false, "email", "e mail", "mail", "emailadresse", "mailadresse"),
		r(KindPhone, true, "telefon", "phone", "handy", "mobil", "fax", "rufnummer"),
		r(KindPhone, false, "tel"),
		r(KindIBAN, false, "iban"),
		r(KindBIC, false, "bic", "swift", "blz", "bankleitzahl"),
		r(KindCard, true, "card number", "card no", "credit card", "kreditkart", "creditcard", "cc number", "kartennummer"),
		r(KindAccount, true, "konto", "account number", "account no", "bank account"),
		r(KindTaxID, true, "steuer id", "steuerid", "steuernummer", "steuer nr", "steuerident", "tax id", "taxid", "tax number"),
		r(KindTaxID, false, "tin"),
		r(KindSocialSec, true, "svnr", "sv nummer", "sozialversicherung", "versicherungsnummer", "rvnr", "ssn", "social security"),
		r(KindIDDocument, true, "ausweis", "personalausweis", "passport", "reisepass", "id card", "fuehrerschein", "driver licen", "drivers licen"),
		r(KindBirth, true, "birth", "geburt"),
		r(KindBirth, false, "dob", "born"),
		r(KindStreet, true, "strasse", "street", "hausnummer", "house number"),
		r(KindPostcode, false, "plz", "postleitzahl", "zip", "zipcode", "zip code", "postcode", "post code", "postal code", "postalcode"),
		r(KindCity, false, "ort", "wohnort", "city", "stadt", "town"),
		r(KindCountry, false, "country", "land"),
		r(KindAddress, true, "address", "adresse", "anschrift"),
		r(KindGender, false, "gender", "geschlecht", "sex", "anrede", "salutation"),
		r(KindNationality, true, "nationalit", "staatsangehoerigkeit", "citizenship"),
		r(KindName, false, "vorname", "nachname", "familienname", "firstname", "lastname", "fullname", "surname",
			"givenname", "nickname", "geburtsname", "rufname", "vollname"),
	} {
		rules = append(rules, group...)
	}
	return rules
}

// personQualifiers make a "name" token a person's name ("first_name",
// "customer_name", "recipient_name"); any other company ("product_name",
// "file_name") leaves it alone.
func personQualifiers() []string {
	return []string{"first", "last", "full", "given", "family", "sur", "middle", "maiden", "nick",
		"customer", "kunde", "kunden", "contact", "kontakt", "person", "user", "recipient", "empfaenger",
		"holder", "inhaber", "owner", "employee", "mitarbeiter", "patient", "member", "mitglied", "vor", "nach",
		"account", "cardholder", "sender", "absender", "buyer", "kaeufer", "guest", "gast", "student", "parent", "child"}
}

// personTables are table words under which a bare "name" column is a
// person's name.
func personTables() []string {
	return []string{"customer", "customers", "kunde", "kunden", "person", "persons", "people", "personen", "user", "users",
		"employee", "employees", "mitarbeiter", "patient", "patients", "member", "members", "mitglied", "mitglieder",
		"contact", "contacts", "kontakt", "kontakte", "client", "clients", "guest", "guests", "student", "students",
		"recipient", "recipients", "account", "accounts"}
}

// surrogateSuffixes end a column name that identifies a row of another
// kind: "address_id" is a key, not an address.
func surrogateSuffixes() []string {
	return []string{"id", "uuid", "key", "pk", "fk", "ref", "count", "anzahl", "flag"}
}

// NameMatch is a name hit.
type NameMatch struct {
	Kind Kind
	// Rule describes the match without quoting the value, e.g.
	// `name matches e-mail ("email")`.
	Rule string
}

// ClassifyName classifies a column by its name (and, for a bare "name",
// its table's): the dictionaries match identifier tokens, so customer_id,
// amount, status or ordered_at are never hits.
func ClassifyName(table policy.TableName, column string) (NameMatch, bool) {
	toks := Tokens(column)
	if len(toks) == 0 {
		return NameMatch{}, false
	}
	for _, rule := range nameRules() {
		at, ok := matchPhrase(toks, rule)
		if !ok {
			continue
		}
		end := at + len(rule.words)
		if end < len(toks) && contains(surrogateSuffixes(), toks[len(toks)-1]) {
			// "email_id", "address_ref": the phrase is followed by a
			// suffix saying the column refers to one, not holds one.
			continue
		}
		word := strings.Join(rule.words, " ")
		if rule.prefix && !contains(toks, rule.words[len(rule.words)-1]) {
			word += "…"
		}
		return NameMatch{Kind: rule.kind, Rule: "name matches " + string(rule.kind) + " (" + word + ")"}, true
	}
	if i := indexOf(toks, "name"); i >= 0 {
		others := append(append([]string(nil), toks[:i]...), toks[i+1:]...)
		if len(others) == 0 {
			for _, t := range Tokens(table.Table) {
				if contains(personTables(), t) {
					return NameMatch{Kind: KindName, Rule: "name matches a person's name (name in a table of persons)"}, true
				}
			}
			return NameMatch{}, false
		}
		for _, o := range others {
			if contains(personQualifiers(), o) {
				return NameMatch{Kind: KindName, Rule: "name matches a person's name (" + o + " name)"}, true
			}
		}
	}
	return NameMatch{}, false
}

// SpecialTable reports whether a table's own name says it holds special
// category data ("health_records"): its columns then are special unless
// they are keys.
func SpecialTable(table policy.TableName) (NameMatch, bool) {
	m, ok := ClassifyName(policy.TableName{}, table.Table)
	if !ok || m.Kind.Category() != policy.CategorySpecial {
		return NameMatch{}, false
	}
	return NameMatch{Kind: m.Kind, Rule: "table name matches " + string(m.Kind)}, true
}

func matchPhrase(toks []string, rule nameRule) (int, bool) {
	n := len(rule.words)
	for i := 0; i+n <= len(toks); i++ {
		ok := true
		for j, w := range rule.words {
			t := toks[i+j]
			if j == n-1 && rule.prefix {
				ok = strings.HasPrefix(t, w)
			} else {
				ok = t == w
			}
			if !ok {
				break
			}
		}
		if ok {
			return i, true
		}
	}
	return 0, false
}

// Tokens splits an identifier into lower-case words: on anything but
// letters and digits, at camelCase and letter/digit boundaries
// ("customerEMailAddress2" → customer, e, mail, address, 2). German
// umlauts and ß are spelt out (ae, oe, ue, ss) so one dictionary entry
// serves both spellings.
func Tokens(ident string) []string {
	var toks []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, fold(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(ident)
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if len(cur) > 0 {
			prev := cur[len(cur)-1]
			switch {
			case unicode.IsDigit(r) != unicode.IsDigit(prev):
				flush()
			case unicode.IsUpper(r) && unicode.IsLower(prev):
				flush()
			case unicode.IsUpper(r) && unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
				// "IPAddress": the A begins a new word.
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return toks
}

// fold lower-cases a word and spells out German letters.
func fold(s string) string {
	return strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss").Replace(strings.ToLower(s))
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
