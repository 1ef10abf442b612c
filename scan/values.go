package scan

import (
	"fmt"
	"time"
)

// hitRate is the share of a column's non-null sampled values a validator
// must accept for the column to be classified by its values: high enough
// that a few stray matches in free text or codes do not count, low enough
// that a column with some malformed or placeholder values still does.
const hitRate = 0.6

// minBirthSpan is the spread of years a column of plausible birth dates
// must show to count without a birth-like name: order or contract dates
// from long ago cluster within a few years, birth dates do not.
const minBirthSpan = 15

// validator is one value check, in order of specificity: on equal hit
// counts the earlier wins (an IBAN before a free-text match).
type validator struct {
	kind  Kind
	label string
	ok    func(string) bool
}

func validators() []validator {
	return []validator{
		{KindIBAN, "IBAN with valid mod-97 check digits", IsIBAN},
		{KindTaxID, "German tax ID with valid MOD 11,10 check digit", IsGermanTaxID},
		{KindCard, "card number passing Luhn", IsCardNumber},
		{KindEmail, "e-mail address", IsEmail},
		{KindIP, "IPv4 or IPv6 address", IsIP},
		{KindPhone, "phone number (libphonenumber, German or E.164)", IsPhone},
		{KindHealth, "ICD-10 code", IsICD10},
		{KindHealth, "Art. 9 vocabulary (diagnoses)", IsHealthVocabulary},
		{KindReligion, "Art. 9 vocabulary (religions)", IsReligionVocabulary},
		{KindFreeText, "free text containing an e-mail address or phone number", ContainsContact},
	}
}

// stats accumulate one column's validator hits over the sample; values
// themselves are never kept.
type stats struct {
	nonNull int
	hits    []int // per validators() entry
	// Dates of birth: plausible values and their range of years.
	birth            int
	minYear, maxYear int
}

func newStats() *stats { return &stats{hits: make([]int, len(validators()))} }

func (s *stats) add(col Column, v string, vs []validator, now time.Time) {
	s.nonNull++
	if col.dateLike() {
		if y, ok := PlausibleBirthDate(v, now); ok {
			if s.birth == 0 || y < s.minYear {
				s.minYear = y
			}
			if s.birth == 0 || y > s.maxYear {
				s.maxYear = y
			}
			s.birth++
		}
		return
	}
	for i, val := range vs {
		if val.ok(v) {
			s.hits[i]++
		}
	}
}

// valueMatch is a classification by sampled values.
type valueMatch struct {
	Kind Kind
	// Rate is the share of non-null sampled values that matched.
	Rate float64
	// Sampled is the number of non-null sampled values.
	Sampled int
	// Weak: dates of birth told by their values alone.
	Weak bool
	// Rule names the validator and the hit rate, never a value.
	Rule string
}

// classify picks the validator with the most hits when it reaches
// hitRate; birthName says the column's name already suggests a birth
// date, which lifts the spread requirement.
func (s *stats) classify(col Column, birthName bool) (valueMatch, bool) {
	if s == nil || s.nonNull == 0 {
		return valueMatch{}, false
	}
	if col.dateLike() {
		rate := float64(s.birth) / float64(s.nonNull)
		if rate < hitRate || (!birthName && (s.maxYear-s.minYear < minBirthSpan || s.nonNull < 5)) {
			return valueMatch{}, false
		}
		return valueMatch{Kind: KindBirth, Rate: rate, Sampled: s.nonNull, Weak: !birthName,
			Rule: fmt.Sprintf("values: plausible dates of birth (1900 to 14 years ago, spread over %d+ years) in %s", minBirthSpan, percent(rate, s.nonNull))}, true
	}
	best := -1
	for i, h := range s.hits {
		if best < 0 || h > s.hits[best] {
			best = i
		}
	}
	rate := float64(s.hits[best]) / float64(s.nonNull)
	if rate < hitRate {
		return valueMatch{}, false
	}
	v := validators()[best]
	return valueMatch{Kind: v.kind, Rate: rate, Sampled: s.nonNull, Rule: "values: " + v.label + " in " + percent(rate, s.nonNull)}, true
}

func percent(rate float64, n int) string {
	return fmt.Sprintf("%.0f%% of %d sampled non-null values", rate*100, n)
}
