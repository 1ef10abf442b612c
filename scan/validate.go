package scan

import (
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Validators decide whether one sampled value is of a kind. They look at
// the value only inside the scanner: no validator's verdict, reason or
// error carries the value itself.

var (
	// emailRE is an address as mail systems accept it in practice: a
	// dot-atom local part, a host name with a top-level domain of letters.
	// Letters beyond ASCII are allowed (RFC 6531 addresses: émilie@…).
	emailRE = regexp.MustCompile("^[\\p{L}\\p{N}!#$%&'*+/=?^_`{|}~-]+(\\.[\\p{L}\\p{N}!#$%&'*+/=?^_`{|}~-]+)*@([\\p{L}\\p{N}]([\\p{L}\\p{N}-]{0,61}[\\p{L}\\p{N}])?\\.)+[A-Za-z]{2,63}$")
	// emailInTextRE and phoneInTextRE find an address or a phone number
	// inside free text.
	emailInTextRE = regexp.MustCompile(`[\p{L}\p{N}._%+-]+@([\p{L}\p{N}-]+\.)+[A-Za-z]{2,}`)
	phoneInTextRE = regexp.MustCompile(`(\+|\b0)[0-9][0-9 /()-]{6,18}[0-9]`)
	ibanRE        = regexp.MustCompile(`^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$`)
	// icd10RE is an ICD-10 code: a letter (U is reserved), two digits and
	// an optional subdivision, e.g. E11.9 or J45.
	icd10RE = regexp.MustCompile(`^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$`)
)

// IsEmail reports whether v is an e-mail address.
func IsEmail(v string) bool { return len(v) <= 254 && emailRE.MatchString(v) }

// IsIBAN reports whether v is an IBAN with valid check digits (ISO 13616,
// mod 97 = 1); spaces are allowed, as printed IBANs have them.
func IsIBAN(v string) bool {
	s := strings.ToUpper(strings.ReplaceAll(v, " ", ""))
	if !ibanRE.MatchString(s) {
		return false
	}
	if n, ok := ibanLength(s[:2]); ok && len(s) != n {
		return false
	}
	rearranged := s[4:] + s[:4]
	rem := 0
	for _, c := range rearranged {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		default:
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return rem == 1
}

// ibanLength is the fixed length of some countries' IBANs, to reject a
// value that passes mod 97 by chance but has the wrong length.
func ibanLength(country string) (int, bool) {
	switch country {
	case "DE":
		return 22, true
	case "AT":
		return 20, true
	case "CH", "LI":
		return 21, true
	case "NL":
		return 18, true
	case "BE":
		return 16, true
	case "FR", "MC", "IT":
		return 27, true
	case "ES", "SE":
		return 24, true
	case "GB", "IE":
		return 22, true
	case "PL":
		return 28, true
	case "LU":
		return 20, true
	case "DK", "FI":
		return 18, true
	}
	return 0, false
}

// IsPhone reports whether v is a phone number: written like one (an
// international + or a national 0, then digits and the usual separators,
// at least 7 digits) and valid, or at least possible, for its country by
// libphonenumber's metadata (German numbers when there is no +).
// Possible numbers count because libphonenumber's validity lags behind
// number plans; the shape rule keeps postcodes and tax IDs out.
func IsPhone(v string) bool {
	s := strings.TrimSpace(v)
	if s == "" || (s[0] != '+' && s[0] != '0' && s[0] != '(') {
		return false
	}
	digits := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' || c == ' ' || c == '-' || c == '/' || c == '(' || c == ')' || c == '.':
		default:
			return false
		}
	}
	if digits < 7 || digits > 15 {
		return false
	}
	num, err := phonenumbers.Parse(s, "DE")
	if err != nil {
		return false
	}
	return phonenumbers.IsValidNumber(num) || phonenumbers.IsPossibleNumber(num)
}

// IsGermanTaxID reports whether v is a German tax identification number
// (Steueridentifikationsnummer): 11 digits, no leading 0; in the first
// ten exactly one digit occurs twice or three times (three times never
// in a row) and the others at most once; the last is the ISO 7064
// MOD 11,10 check digit of the first ten.
func IsGermanTaxID(v string) bool {
	s := strings.ReplaceAll(strings.TrimSpace(v), " ", "")
	if len(s) != 11 || s[0] == '0' {
		return false
	}
	var count [10]int
	for i := 0; i < 11; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 10 {
			count[s[i]-'0']++
		}
	}
	repeated, missing := 0, 0
	for d, c := range count {
		switch {
		case c == 0:
			missing++
		case c == 2 || c == 3:
			repeated++
			if c == 3 && strings.Contains(s[:10], strings.Repeat(string(rune('0'+d)), 3)) {
				return false
			}
		case c > 3:
			return false
		}
	}
	if repeated != 1 || (missing != 1 && missing != 2) {
		return false
	}
	product := 10
	for i := 0; i < 10; i++ {
		sum := (int(s[i]-'0') + product) % 10
		if sum == 0 {
			sum = 10
		}
		product = (sum * 2) % 11
	}
	check := 11 - product
	if check == 10 {
		check = 0
	}
	return check == int(s[10]-'0')
}

// IsCardNumber reports whether v is a payment card number: 13 to 19
// digits (spaces or dashes between groups allowed) that pass the Luhn
// check.
func IsCardNumber(v string) bool {
	var digits []int
	for _, c := range strings.TrimSpace(v) {
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, int(c-'0'))
		case c == ' ' || c == '-':
		default:
			return false
		}
	}
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	return luhn(digits)
}

func luhn(digits []int) bool {
	sum := 0
	for i := range digits {
		d := digits[len(digits)-1-i]
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// IsIP reports whether v is an IPv4 or IPv6 address.
func IsIP(v string) bool {
	a, err := netip.ParseAddr(strings.TrimSpace(v))
	return err == nil && a.IsValid()
}

// IsICD10 reports whether v is an ICD-10 diagnosis code (E11.9, J45).
func IsICD10(v string) bool { return icd10RE.MatchString(strings.TrimSpace(v)) }

// healthWords are stems of diagnoses and health conditions, German and
// English, matched at the start of a value's words: enough to recognise a
// column of diagnoses, not a medical dictionary.
func healthWords() []string {
	return []string{
		"diabetes", "asthma", "hypertonie", "hypertension", "bluthochdruck", "migraene", "migraine", "depression",
		"rueckenschmerz", "back pain", "krebs", "cancer", "karzinom", "carcinoma", "tumor", "hiv", "aids", "hepatitis",
		"epilepsie", "epilepsy", "demenz", "dementia", "alzheimer", "parkinson", "schizophren", "bipolar", "adhs", "adhd",
		"autismus", "autism", "allergie", "allergy", "allergisch", "allergic", "intoleranz", "intolerance", "unvertraeglich",
		"zoeliakie", "coeliac", "celiac", "neurodermitis", "eczema", "psoriasis", "arthrose", "arthritis", "rheuma",
		"herzinsuffizienz", "heart failure", "schlaganfall", "stroke", "infarkt", "infarction", "covid", "tuberkulose",
		"tuberculosis", "multiple sklerose", "multiple sclerosis", "angststoerung", "anxiety", "burnout", "suchterkrank", "addiction",
		"erdnuss", "peanut", "pollen", "laktose", "lactose", "gluten", "schwanger", "pregnan", "insulin", "chemotherap",
	}
}

// religionWords are stems of religions and denominations.
func religionWords() []string {
	return []string{
		"katholisch", "catholic", "evangelisch", "protestant", "lutherisch", "lutheran", "orthodox", "christlich",
		"christian", "muslimisch", "muslim", "islam", "juedisch", "jewish", "judaism", "judentum", "buddhist",
		"hindu", "sikh", "atheist", "konfessionslos", "freikirch", "baptist", "methodist", "anglican", "alevit",
		"zeugen jehovas", "jehovah", "mormon",
	}
}

// IsHealthVocabulary reports whether a word of v begins with a diagnosis
// stem.
func IsHealthVocabulary(v string) bool { return hasStem(v, healthWords()) }

// IsReligionVocabulary reports whether a word of v begins with a religion
// stem.
func IsReligionVocabulary(v string) bool { return hasStem(v, religionWords()) }

func hasStem(v string, stems []string) bool {
	joined := " " + strings.Join(Tokens(v), " ")
	for _, stem := range stems {
		if strings.Contains(joined, " "+stem) {
			return true
		}
	}
	return false
}

// ContainsContact reports whether free text carries an e-mail address or
// a phone number somewhere inside it.
func ContainsContact(v string) bool {
	if emailInTextRE.MatchString(v) {
		return true
	}
	for _, m := range phoneInTextRE.FindAllString(v, 4) {
		if IsPhone(m) {
			return true
		}
	}
	return false
}

// PlausibleBirthDate reports whether v, a date or timestamp as PostgreSQL
// prints it with DateStyle ISO, lies between 1900 and 14 years before now
// (the youngest age at which a person normally is a customer of
// anything): its year, for the spread check.
func PlausibleBirthDate(v string, now time.Time) (int, bool) {
	if len(v) < 10 {
		return 0, false
	}
	d, err := time.Parse("2006-01-02", v[:10])
	if err != nil {
		return 0, false
	}
	if d.Year() < 1900 || d.After(now.AddDate(-14, 0, 0)) {
		return 0, false
	}
	return d.Year(), true
}
