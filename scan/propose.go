package scan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
)

// Confidence of a proposal.
type Confidence string

// Confidences: high when name and values agree (or a foreign key ties the
// column to a personal key), medium on one of them, low on weak evidence
// (dates that look like birth dates, a primary key of a personal table).
const (
	High   Confidence = "high"
	Medium Confidence = "medium"
	Low    Confidence = "low"
)

// Proposal is one column's proposed classification.
type Proposal struct {
	Table      policy.TableName `json:"-"`
	Column     string           `json:"column"`
	Type       string           `json:"type"`
	Kind       Kind             `json:"kind"`
	Category   string           `json:"category"`
	Transform  string           `json:"transform,omitempty"`
	Domain     string           `json:"domain,omitempty"`
	Confidence Confidence       `json:"confidence"`
	// Reasons cite the rules and validators with their hit rates; never
	// a value.
	Reasons []string `json:"reasons"`

	col Column
}

// tableSample is what sampling a table found.
type tableSample struct {
	stats  map[string]*stats
	method sampleMethod
	rows   int
}

type colKey struct {
	t policy.TableName
	c string
}

// propose classifies every column of s from names, sampled values,
// primary and foreign keys. It is pure: the scanner's decisions can be
// tested without a database.
func propose(s *Schema, samples map[policy.TableName]tableSample) []Proposal {
	props := map[colKey]*Proposal{}
	tables := map[policy.TableName]*Table{}
	for i := range s.Tables {
		t := &s.Tables[i]
		tables[t.Name] = t
		smp := samples[t.Name]
		for _, c := range t.Columns {
			if p := classifyColumn(t, c, smp); p != nil {
				props[colKey{t.Name, c.Name}] = p
			}
		}
	}
	// A table holds personal data when a column of it is classified (keys
	// aside), or its name says it is special (health_records).
	personal := map[policy.TableName]bool{}
	for k, p := range props {
		if p.Category != "key" {
			personal[k.t] = true
		}
	}
	for _, t := range s.Tables {
		if _, ok := SpecialTable(t.Name); ok {
			personal[t.Name] = true
		}
	}
	domains := &domainNames{used: map[string]bool{}}
	keyed := linkForeignKeys(s, tables, props, personal, domains)

	// A single-column primary key of a personal table no foreign key
	// references: rows about a person can still be linked by it.
	for _, t := range s.Tables {
		if !personal[t.Name] || len(t.PrimaryKey) != 1 {
			continue
		}
		k := colKey{t.Name, t.PrimaryKey[0]}
		if props[k] != nil || keyed[k] {
			continue
		}
		c, _ := column(&t, t.PrimaryKey[0])
		p := &Proposal{Table: t.Name, Column: c.Name, Type: c.TypeName, Kind: KindKey, Category: "key", Confidence: Low, col: c,
			Reasons: []string{"primary key of a table holding personal data (its rows can be linked by it)"}}
		p.Domain = domains.name(t.Name, c.Name)
		props[k] = p
	}
	// The other columns of a table whose name says it is special.
	for _, t := range s.Tables {
		m, ok := SpecialTable(t.Name)
		if !ok {
			continue
		}
		for _, c := range t.Columns {
			if k := (colKey{t.Name, c.Name}); props[k] == nil {
				props[k] = &Proposal{Table: t.Name, Column: c.Name, Type: c.TypeName, Kind: m.Kind, Category: policy.CategorySpecial,
					Confidence: Medium, col: c, Reasons: []string{m.Rule + ": every column not a key is special"}}
			}
		}
	}

	out := make([]Proposal, 0, len(props))
	for _, t := range s.Tables {
		for _, c := range t.Columns {
			p := props[colKey{t.Name, c.Name}]
			if p == nil {
				continue
			}
			p.Transform = transformFor(p.Kind, p.col)
			if p.Transform == "" {
				p.Domain = "" // special data is never tokenized
			}
			out = append(out, *p)
		}
	}
	return out
}

// classifyColumn combines a column's name match and value match.
func classifyColumn(t *Table, c Column, smp tableSample) *Proposal {
	nm, byName := ClassifyName(t.Name, c.Name)
	// An enum is never sampled (its labels are the schema's), so it is
	// classified by name alone: an enum named religion is special all the
	// same.
	vm, byValue := smp.stats[c.Name].classify(c, byName && nm.Kind == KindBirth)
	if byValue {
		vm.Rule += " (" + string(smp.method) + ")"
	}
	p := &Proposal{Table: t.Name, Column: c.Name, Type: c.TypeName, col: c}
	switch {
	case byName && byValue:
		p.Reasons = []string{nm.Rule, vm.Rule}
		nSpecial, vSpecial := nm.Kind.Category() == policy.CategorySpecial, vm.Kind.Category() == policy.CategorySpecial
		switch {
		case nSpecial && vSpecial:
			p.Kind, p.Confidence = nm.Kind, High
		case nSpecial:
			p.Kind, p.Confidence = nm.Kind, Medium // special stays special
		case vSpecial:
			p.Kind, p.Confidence = vm.Kind, Medium
		case nm.Kind.Category() == vm.Kind.Category():
			p.Kind, p.Confidence = vm.Kind, High
			if vm.Kind == KindFreeText {
				p.Kind = nm.Kind
			}
		case vm.Weak:
			p.Kind, p.Confidence = nm.Kind, Medium
		default:
			// The values say what the column holds, whatever it is called.
			p.Kind, p.Confidence = vm.Kind, Medium
		}
	case byName:
		p.Kind, p.Confidence, p.Reasons = nm.Kind, Medium, []string{nm.Rule}
	case byValue:
		p.Kind, p.Confidence, p.Reasons = vm.Kind, Medium, []string{vm.Rule}
		if vm.Weak {
			p.Confidence = Low
		}
	default:
		return nil
	}
	if byValue && vm.Sampled < 5 && p.Confidence == High {
		p.Confidence = Medium // too few values to be sure
	}
	p.Category = p.Kind.Category()
	return p
}

// linkForeignKeys groups columns joined by foreign keys (transitively)
// and gives each group one token domain, so joins keep working on
// tokens: a group holding a personal column takes its classification; a
// group holding the primary key of a personal table becomes keys. It
// returns the columns it made keys or linked.
func linkForeignKeys(s *Schema, tables map[policy.TableName]*Table, props map[colKey]*Proposal, personal map[policy.TableName]bool, domains *domainNames) map[colKey]bool {
	parent := map[colKey]colKey{}
	var find func(colKey) colKey
	find = func(k colKey) colKey {
		p, ok := parent[k]
		if !ok || p == k {
			parent[k] = k
			return k
		}
		r := find(p)
		parent[k] = r
		return r
	}
	referenced := map[colKey]bool{}
	for _, fk := range s.ForeignKeys {
		for i := range fk.FromCols {
			a, b := colKey{fk.From, fk.FromCols[i]}, colKey{fk.To, fk.ToCols[i]}
			referenced[b] = true
			ra, rb := find(a), find(b)
			if ra != rb {
				parent[ra] = rb
			}
		}
	}
	groups := map[colKey][]colKey{}
	for k := range parent {
		r := find(k)
		groups[r] = append(groups[r], k)
	}
	roots := make([]colKey, 0, len(groups))
	for r := range groups {
		roots = append(roots, r)
	}
	sort.Slice(roots, func(i, j int) bool { return keyLess(roots[i], roots[j]) })

	linked := map[colKey]bool{}
	for _, r := range roots {
		members := groups[r]
		sort.Slice(members, func(i, j int) bool { return keyLess(members[i], members[j]) })
		// The group's anchor: a classified personal member, the
		// referenced one first; else a referenced primary key of a
		// personal table.
		var anchor *Proposal
		var anchorKey colKey
		for _, pass := range []bool{true, false} {
			for _, m := range members {
				p := props[m]
				if anchor == nil && p != nil && p.Category != "key" && p.Category != policy.CategorySpecial && referenced[m] == pass {
					anchor, anchorKey = p, m
				}
			}
		}
		if anchor != nil {
			domain := domains.name(anchorKey.t, anchorKey.c)
			for _, m := range members {
				c, ok := column(tables[m.t], m.c)
				if !ok {
					continue
				}
				p := props[m]
				switch {
				case p == nil:
					p = &Proposal{Table: m.t, Column: m.c, Type: c.TypeName, Kind: anchor.Kind, Category: anchor.Category, Confidence: High, col: c,
						Reasons: []string{fmt.Sprintf("foreign key: joined to %s.%s (%s)", anchorKey.t, anchorKey.c, anchor.Kind)}}
					props[m] = p
				case p.Category == policy.CategorySpecial:
					continue
				case m != anchorKey:
					p.Reasons = append(p.Reasons, fmt.Sprintf("foreign key: joined to %s.%s", anchorKey.t, anchorKey.c))
					if p.Kind == anchor.Kind {
						p.Confidence = High // its own evidence and the key agree
					}
				}
				if p.Kind == anchor.Kind {
					p.Domain = domain
					p.Reasons = append(p.Reasons, "shared token domain "+domain+" keeps joins working")
				}
				linked[m] = true
			}
			continue
		}
		var pk colKey
		found := false
		for _, m := range members {
			t := tables[m.t]
			if t != nil && personal[m.t] && len(t.PrimaryKey) == 1 && t.PrimaryKey[0] == m.c && referenced[m] {
				pk, found = m, true
				break
			}
		}
		if !found {
			continue
		}
		domain := domains.name(pk.t, pk.c)
		for _, m := range members {
			if props[m] != nil {
				continue // classified by its own name or values
			}
			c, ok := column(tables[m.t], m.c)
			if !ok {
				continue
			}
			reason := fmt.Sprintf("foreign key: joined to %s.%s, the primary key of a table holding personal data", pk.t, pk.c)
			if m == pk {
				reason = "primary key of a table holding personal data, referenced by foreign keys"
			}
			props[m] = &Proposal{Table: m.t, Column: m.c, Type: c.TypeName, Kind: KindKey, Category: "key", Domain: domain, Confidence: High, col: c,
				Reasons: []string{reason, "shared token domain " + domain + " keeps joins working"}}
			linked[m] = true
		}
	}
	return linked
}

func keyLess(a, b colKey) bool {
	if a.t != b.t {
		return a.t.String() < b.t.String()
	}
	return a.c < b.c
}

func column(t *Table, name string) (Column, bool) {
	if t == nil {
		return Column{}, false
	}
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// domainNames hands out token domain names, unique within one proposal.
type domainNames struct{ used map[string]bool }

// name derives a domain from the column a group is anchored at:
// customer_id gives "customer", email "email"; a clash takes the table's
// name too.
func (d *domainNames) name(t policy.TableName, col string) string {
	base := col
	for _, suffix := range []string{"_id", "_uuid", "_key", "id"} {
		if b := strings.TrimSuffix(base, suffix); b != base && b != "" {
			base = b
			break
		}
	}
	candidates := []string{sanitizeDomain(base), sanitizeDomain(t.Table + "_" + base), sanitizeDomain(t.Schema + "." + t.Table + "." + col)}
	for _, c := range candidates {
		if c != "" && !d.used[c] && crypto.ValidDomainName(c) {
			d.used[c] = true
			return c
		}
	}
	for i := 2; ; i++ {
		c := fmt.Sprintf("%s_%d", candidates[0], i)
		if !d.used[c] && crypto.ValidDomainName(c) {
			d.used[c] = true
			return c
		}
	}
}

func sanitizeDomain(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), "_.-")
	if len(out) > 63 {
		out = out[:63]
	}
	if strings.HasPrefix(out, "x-") {
		out = "d" + out
	}
	return out
}

// transformFor proposes the transform for a kind that the column's type
// accepts, checked as the proxy will check it: the kind's own transform,
// else token, else null. Special data gets none: it is never tokenized.
func transformFor(k Kind, c Column) string {
	if k.Category() == policy.CategorySpecial {
		return ""
	}
	var preferred crypto.Kind
	switch k {
	case KindEmail:
		preferred = crypto.KindEmail
	case KindPhone, KindAccount, KindTaxID:
		preferred = crypto.KindDigits
	case KindIBAN:
		preferred = crypto.KindIBAN
	case KindCard:
		preferred = crypto.KindCard
	case KindBirth:
		preferred = crypto.KindYear
	case KindPostcode:
		// A postcode stays a postcode of the same shape (and fits char(5)).
		preferred = crypto.KindPostcode
	case KindKey:
		preferred = crypto.KindInt
		if c.BaseOID == 2950 { // uuid
			preferred = crypto.KindUUID
		}
	default:
		preferred = crypto.KindToken
	}
	// A short code no token fits (char(2), char(5)) keeps its shape with
	// keyed characters (postcode) rather than leave as NULL.
	for _, kind := range []crypto.Kind{preferred, crypto.KindToken, crypto.KindPostcode} {
		if crypto.CheckColumn(crypto.Spec{Kind: kind, Domain: "scan-check", MaxLen: c.MaxLen}, c.BaseOID) == nil {
			return string(kind)
		}
	}
	// No pseudonymising transform fits the type (inet, smallint keys):
	// tokenize then returns NULL.
	return string(crypto.KindNull)
}
