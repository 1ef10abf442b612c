package policy

import (
	"fmt"
	"path"
	"slices"
)

// RoleFor returns the first role whose users glob matches user or whose
// member_of names a role the user belongs to (memberOf: the user's direct
// and inherited memberships, looked up at login), else the role named
// "default", else ErrNoRole.
func (p *Policy) RoleFor(user string, memberOf []string) (*Role, error) {
	var def *Role
	for _, r := range p.Roles {
		for _, g := range r.Users {
			if ok, _ := path.Match(g, user); ok {
				return r, nil
			}
		}
		for _, m := range r.MemberOf {
			if slices.Contains(memberOf, m) {
				return r, nil
			}
		}
		if r.Name == "default" {
			def = r
		}
	}
	if def != nil {
		return def, nil
	}
	return nil, fmt.Errorf("%w %q", ErrNoRole, user)
}

// NeedsMembership reports whether any role matches on role membership, so
// the proxy knows whether to look memberships up at login.
func (p *Policy) NeedsMembership() bool {
	for _, r := range p.Roles {
		if len(r.MemberOf) > 0 {
			return true
		}
	}
	return false
}

// Column returns the classification of a column, or nil when the policy
// does not name it (directly or with "*").
func (p *Policy) Column(t TableName, column string) *Column {
	tp := p.tables[t]
	if tp == nil {
		return nil
	}
	if c := tp.columns[column]; c != nil {
		return c
	}
	if w := tp.wildcard; w != nil && w.implicitDomain && w.Spec.Kind != "" {
		// Each column the wildcard covers is its own token domain: equal
		// values in two of them must not get equal tokens.
		c := *w
		c.Spec.Domain = implicitDomain(t, column)
		return &c
	}
	return tp.wildcard
}

// Protects reports whether role r receives any column of table t other
// than in clear. The order of such a table's rows (physical, or an
// index's) can follow the clear values, so results over it are reordered
// by the proxy's keyed digest.
func (p *Policy) Protects(r *Role, t TableName) bool {
	if t.Schema == "pg_catalog" || t.Schema == "information_schema" {
		return false // the catalogs describe the database, not people
	}
	tp := p.tables[t]
	if tp == nil {
		return r.Unclassified != Allow
	}
	if tp.wildcard != nil && r.action(tp.wildcard.Category) != Allow {
		return true
	}
	for _, c := range tp.columns {
		if r.action(c.Category) != Allow {
			return true
		}
	}
	return r.Unclassified != Allow // columns the policy does not name
}

// Tables lists the classified tables.
func (p *Policy) Tables() []TableName {
	out := make([]TableName, 0, len(p.tables))
	for t := range p.tables {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b TableName) int {
		if a.Schema != b.Schema {
			return compare(a.Schema, b.Schema)
		}
		return compare(a.Table, b.Table)
	})
	return out
}

// Columns lists a table's explicitly named columns (not "*").
func (p *Policy) Columns(t TableName) []*Column {
	tp := p.tables[t]
	if tp == nil {
		return nil
	}
	out := make([]*Column, 0, len(tp.columns))
	for _, c := range tp.columns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Column) int { return compare(a.Name, b.Name) })
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// action is the role's action for a category; categories the role does
// not mention are blocked (fail closed), and special-category data is
// blocked unless explicitly allowed (load checked the legal basis).
func (r *Role) action(category string) Action {
	if a, ok := r.Actions[category]; ok {
		return a
	}
	if r.Default != "" && category != CategorySpecial {
		return r.Default
	}
	return Block
}

// Restricted reports whether the role can see anything other than clear
// values: such sessions get row rewriting and request analysis.
func (r *Role) Restricted() bool {
	if r.Unclassified != Allow {
		return true
	}
	cats := r.categories
	if cats == nil {
		cats = builtinCategories
	}
	for _, c := range cats {
		if r.action(c) != Allow {
			return true
		}
	}
	for _, a := range r.Actions {
		if a != Allow {
			return true
		}
	}
	return false
}

// Decide says what happens to values of column of table t for role r.
// Decisions are cached: the proxy asks for every column of every result.
func (p *Policy) Decide(r *Role, t TableName, column string) Decision {
	k := decisionKey{role: r, table: t, column: column}
	if d, ok := p.decisions.Load(k); ok {
		return d.(Decision)
	}
	d := p.decide(r, t, column)
	p.decisions.Store(k, d)
	return d
}

type decisionKey struct {
	role   *Role
	table  TableName
	column string
}

func (p *Policy) decide(r *Role, t TableName, column string) Decision {
	c := p.Column(t, column)
	if c == nil {
		return Decision{Action: r.Unclassified, Column: column, Rule: fmt.Sprintf("unclassified columns are %s for role %q", verb(r.Unclassified), r.Name)}
	}
	a := r.action(c.Category)
	d := Decision{Action: a, Category: c.Category, Column: column,
		Rule: fmt.Sprintf("category %q is %s for role %q", c.Category, verb(a), r.Name)}
	if c.Category == CategorySpecial && a == Allow {
		d.Rule += " (legal basis: " + r.LegalBasis + ")"
	}
	switch a {
	case Tokenize:
		d.Spec = c.Spec
	case Mask:
		d.Spec = c.MaskSpec
	}
	return d
}

func verb(a Action) string {
	switch a {
	case Allow:
		return "allowed"
	case Tokenize:
		return "tokenized"
	case Mask:
		return "masked"
	case Null:
		return "nulled"
	}
	return "blocked"
}

// TokenDomain is the token domain of a column: equal clear values in one
// domain give equal tokens, so equality (joins) is only meaningful within
// one. A column without a domain is its own.
func (p *Policy) TokenDomain(t TableName, column string) string {
	if c := p.Column(t, column); c != nil && c.Spec.Domain != "" {
		return c.Spec.Domain
	}
	return implicitDomain(t, column)
}

// MatviewRule is why a materialized view's column the policy does not
// classify is blocked for restricted roles: its rows are a copy made when
// it was last refreshed, from a definition (and views below it) that may
// have been replaced since, so what it holds cannot be traced.
const MatviewRule = "a materialized view's rows are a copy whose origin pgpseudo cannot trace; classify its columns in the policy"

// DecideMatview is Decide for a column of a materialized view.
func (p *Policy) DecideMatview(r *Role, t TableName, column string) Decision {
	if p.Column(t, column) == nil && r.Restricted() {
		return Decision{Action: Block, Column: column, Rule: MatviewRule}
	}
	return p.Decide(r, t, column)
}

// Tokenizes reports whether any role tokenizes anything, i.e. whether the
// proxy needs keys.
func (p *Policy) Tokenizes() bool {
	for _, r := range p.Roles {
		if r.Default == Tokenize {
			return true
		}
		for _, a := range r.Actions {
			if a == Tokenize {
				return true
			}
		}
	}
	return false
}

// DomainColumns lists the classified columns with a transform in token
// domain d, in table and column order; for a column's implicit domain
// (perhaps one a "*" entry covers) the column itself.
func (p *Policy) DomainColumns(d string) []*Column {
	if t, col, ok := parseImplicitDomain(d); ok {
		if c := p.Column(t, col); c != nil && c.Spec.Domain == d && c.Spec.Kind != "" {
			named := *c
			named.Name = col
			return []*Column{&named}
		}
		return nil
	}
	var out []*Column
	for _, t := range p.Tables() {
		cols := p.tables[t].all()
		slices.SortFunc(cols, func(a, b *Column) int { return compare(a.Name, b.Name) })
		for _, c := range cols {
			if c.Spec.Domain == d && c.Spec.Kind != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// ReversibleDomains lists the reversible token domains the policy's
// columns use, sorted: the domains whose tokens a drill-down decodes.
func (p *Policy) ReversibleDomains() []string {
	var out []string
	for _, t := range p.Tables() {
		for _, c := range p.tables[t].all() {
			if c.Spec.Reversible && c.Spec.Domain != "" && !slices.Contains(out, c.Spec.Domain) {
				out = append(out, c.Spec.Domain)
			}
		}
	}
	slices.Sort(out)
	return out
}
