package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Change is one difference between two policies for one role: at the
// role level (Column empty: the role was added or removed, matches other
// users, moved in the first-match order, or treats unclassified columns
// otherwise) or for one column.
type Change struct {
	Role string
	// Table and Column name the column ("*": the table's wildcard, every
	// column the table does not list).
	Table  TableName
	Column string
	// What is "role", "match", "order", "unclassified" or "column".
	What     string
	Old, New string
}

// String formats a change as "role R: what: old → new".
func (c Change) String() string {
	subject := c.What
	if c.What == "column" {
		subject = c.Table.String() + "." + quoteIdent(c.Column)
	}
	return fmt.Sprintf("role %s: %s: %s → %s", c.Role, subject, c.Old, c.New)
}

// Diff lists, role by role, what changes from old to new: for every
// column either policy classifies, and with the database's tables (nil:
// without) for every column the database has, the one each role's
// decision covers.
func Diff(old, new *Policy, tables []DBTable) []Change {
	var out []Change
	roleNames := func(p *Policy) []string {
		names := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			names[i] = r.Name
		}
		return names
	}
	oldNames, newNames := roleNames(old), roleNames(new)
	names := append(slices.Clone(oldNames), newNames...)
	slices.Sort(names)
	names = slices.Compact(names)
	cols := diffColumns(old, new, tables)
	for _, name := range names {
		oi, ni := slices.Index(oldNames, name), slices.Index(newNames, name)
		switch {
		case oi < 0:
			out = append(out, Change{Role: name, What: "role", Old: "absent", New: "added (" + describeMatch(new.Roles[ni]) + ")"})
			continue
		case ni < 0:
			out = append(out, Change{Role: name, What: "role", Old: "present (" + describeMatch(old.Roles[oi]) + ")", New: "removed: its users match a later role or none"})
			continue
		}
		or, nr := old.Roles[oi], new.Roles[ni]
		if m1, m2 := describeMatch(or), describeMatch(nr); m1 != m2 {
			out = append(out, Change{Role: name, What: "match", Old: m1, New: m2})
		}
		if oi != ni {
			// The first role that matches wins: a move changes who gets it.
			out = append(out, Change{Role: name, What: "order", Old: fmt.Sprintf("position %d", oi+1), New: fmt.Sprintf("position %d", ni+1)})
		}
		if or.Unclassified != nr.Unclassified {
			out = append(out, Change{Role: name, What: "unclassified", Old: string(or.Unclassified), New: string(nr.Unclassified)})
		}
		for _, c := range cols {
			d1, d2 := old.Decide(or, c.Table, c.Column), new.Decide(nr, c.Table, c.Column)
			s1, s2 := describeDecision(d1), describeDecision(d2)
			if s1 == s2 && (d1.Action == Tokenize || d1.Action == Mask) && d1.Spec != d2.Spec {
				s2 += " with other transform options"
			}
			if s1 != s2 {
				out = append(out, Change{Role: name, Table: c.Table, Column: c.Column, What: "column", Old: s1, New: s2})
			}
		}
	}
	return out
}

// diffColumns is every column Diff compares, sorted: the classified ones
// of both policies (and their wildcards as "*") and the database's.
func diffColumns(old, new *Policy, tables []DBTable) []Change {
	seen := map[Change]bool{}
	var out []Change
	add := func(t TableName, c string) {
		k := Change{Table: t, Column: c}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, p := range []*Policy{old, new} {
		for _, t := range p.Tables() {
			for _, c := range p.Columns(t) {
				add(t, c.Name)
			}
		}
	}
	for _, t := range tables {
		for _, c := range t.Columns {
			add(t.Name, c.Name)
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		return strings.Compare(a.Table.String()+"\x00"+a.Column, b.Table.String()+"\x00"+b.Column)
	})
	return out
}

func describeMatch(r *Role) string {
	var parts []string
	if len(r.Users) > 0 {
		parts = append(parts, "users "+strings.Join(r.Users, ", "))
	}
	if len(r.MemberOf) > 0 {
		parts = append(parts, "member_of "+strings.Join(r.MemberOf, ", "))
	}
	if len(parts) == 0 {
		return "matches no user by name"
	}
	return strings.Join(parts, "; ")
}

// describeDecision says what a column becomes: the action, the category
// and, for tokenize and mask, the transform and its domain.
func describeDecision(d Decision) string {
	s := string(d.Action)
	if t := d.TransformName(); t != "" {
		s += " (" + t + ")"
	}
	if d.Category == "" {
		return s + " [unclassified]"
	}
	return s + " [" + d.Category + "]"
}

// TransformName names a tokenized or masked decision's transform and its
// token domain ("email, domain email"; "token, its own domain" for a
// column without one), "" for the other actions.
func (d Decision) TransformName() string {
	if d.Action != Tokenize && d.Action != Mask {
		return ""
	}
	s := string(d.Spec.Kind)
	if _, _, implicit := parseImplicitDomain(d.Spec.Domain); implicit {
		s += ", its own domain"
	} else if d.Spec.Domain != "" {
		s += ", domain " + d.Spec.Domain
	}
	return s
}
