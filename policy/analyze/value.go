package analyze

import (
	"fmt"

	"github.com/pgpseudo/pgpseudo/policy"
)

// use is what a position in a statement does with a value.
type use uint8

const (
	// usePass: a derived table's output (subquery, CTE, view); it is
	// checked where the enclosing query uses it.
	usePass use = iota
	// useOutput: a bare column of the statement's result.
	useOutput
	// useGroup: GROUP BY, DISTINCT, PARTITION BY.
	useGroup
	// useCount: the argument of count() or IS [NOT] NULL: null-ness
	// shows in bare output.
	useCount
	// useSort: a sort key of the statement's own result, which the
	// proxy's digest ordering sorts by a keyed digest of the value.
	useSort
	// useCountDistinct: the argument of count(DISTINCT), which compares
	// values as a grouping does.
	useCountDistinct
	// useCountRows: the argument of count() without DISTINCT, where a
	// whole-row reference counts rows (a row that exists is never NULL).
	useCountRows
	// useOther: everything else — predicates, expressions, function
	// arguments, ORDER BY, casts.
	useOther
)

// ctx is the position an expression is analysed in.
type ctx struct {
	clause string // "WHERE", "the select list", …
	how    string // "as an argument of lower()", …
	use    use
}

// with describes a nested position: anything below it is no longer bare.
func (c ctx) with(how string) ctx {
	if c.how != "" && c.how != how {
		how += " " + c.how
	}
	return ctx{clause: c.clause, how: how, use: useOther}
}

func (c ctx) other() ctx { return ctx{clause: c.clause, how: c.how, use: useOther} }

func (c ctx) pass() ctx { return ctx{clause: c.clause, how: c.how, use: usePass} }

// source is a protected base-table column (its action is not allow) whose
// values flow unchanged into a value.
type source struct {
	table  policy.TableName
	column string
	dec    policy.Decision
	domain string
}

// originKind is how PostgreSQL's RowDescription will report a result
// column, which decides whether the response side can rewrite it.
type originKind uint8

const (
	// originNone: no table column (expressions, set operations, scalar
	// subqueries, VALUES, recursive CTEs).
	originNone originKind = iota
	// originBase: a base table column, also through subqueries, CTEs and
	// joins.
	originBase
	// originView: a view's or materialized view's column.
	originView
)

// value is what the analysis knows of a column or expression: which
// protected columns flow into it unchanged and where it will appear to
// come from.
type value struct {
	srcs   []*source
	origin originKind
	// view and viewCol are set for originView; viewMat for a
	// materialized view's column.
	view    policy.TableName
	viewCol string
	viewMat bool
	// taint is set for a view column computed from protected data: any
	// use is refused with it.
	taint *Refusal
	// unresolved names a reference the analysis could not resolve; srcs
	// then hold the strictest data in scope.
	unresolved string
	// wholeRow names the relation of a whole-row reference.
	wholeRow string
	// via says why a value has no origin ("a set operation", …).
	via string
	// mixed: the value combines protected values with values of another
	// token domain or unprotected ones (UNION ALL with a literal), so
	// comparing it would probe protected values.
	mixed bool
}

// merge combines values whose data mixes (set operations, VALUES rows,
// ambiguous names): the result has no origin, and is mixed when it
// combines protected values with others.
func merge(vs ...value) value {
	var out value
	// The same column counts once, however often it was resolved.
	type key struct {
		table          policy.TableName
		column, domain string
	}
	seen := map[key]bool{}
	clean, protected := false, false
	for _, v := range vs {
		if len(v.srcs) == 0 && v.taint == nil {
			clean = true
		} else {
			protected = true
		}
		for _, s := range v.srcs {
			if k := (key{s.table, s.column, s.domain}); !seen[k] {
				seen[k] = true
				out.srcs = append(out.srcs, s)
			}
		}
		if out.taint == nil {
			out.taint = v.taint
		}
		if out.unresolved == "" {
			out.unresolved = v.unresolved
		}
		if out.wholeRow == "" {
			out.wholeRow = v.wholeRow
		}
		if out.via == "" {
			out.via = v.via
		}
		out.mixed = out.mixed || v.mixed
	}
	if clean && protected {
		out.mixed = true
	}
	for _, s := range out.srcs {
		if s.domain != out.srcs[0].domain {
			out.mixed = true
		}
	}
	return out
}

// one returns a single value unchanged (keeping its origin) and merges
// several.
func one(vs []value) value {
	if len(vs) == 1 {
		return vs[0]
	}
	return merge(vs...)
}

// rank orders actions by strictness.
func rank(a policy.Action) int {
	switch a {
	case policy.Allow:
		return 0
	case policy.Tokenize:
		return 1
	case policy.Mask:
		return 2
	case policy.Null:
		return 3
	}
	return 4
}

const (
	ruleBlock      = "blocked columns may only be output bare, where their values leave as NULL"
	rulePseudo     = "pseudonymised columns may only be output bare, grouped, counted, or compared for equality with a column of the same token domain"
	ruleOrigin     = "protected values may only leave as result columns whose origin the proxy can see and rewrite (not through views the policy does not classify, set operations, VALUES or scalar subqueries)"
	ruleWhole      = "a whole-row reference carries every column of its relation, including protected ones"
	ruleUnresolved = "an unresolvable reference counts as the strictest classification of the relations in scope"
	ruleDomain     = "equality on pseudonymised columns is only allowed between columns of the same token domain"
	ruleMerged     = "generalised columns (year, month, round, shift) may only be output bare: the server groups and compares them on the clear value"
)

// check refuses a value used at position c when the policy forbids it.
func (a *analyzer) check(v value, c ctx) error {
	if c.use == usePass {
		return nil
	}
	if c.use == useCountRows {
		if v.wholeRow != "" {
			return nil
		}
		c.use = useCount
	}
	if v.taint != nil {
		r := *v.taint
		return &r
	}
	if len(v.srcs) == 0 {
		return nil
	}
	// Report blocked columns first: they are the more serious finding.
	ordered := make([]*source, 0, len(v.srcs))
	for _, s := range v.srcs {
		if s.dec.Action == policy.Block {
			ordered = append(ordered, s)
		}
	}
	for _, s := range v.srcs {
		if s.dec.Action != policy.Block {
			ordered = append(ordered, s)
		}
	}
	if v.wholeRow != "" {
		s := ordered[0]
		return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause,
			How:    fmt.Sprintf("in the whole-row reference %s", quoteIdent(v.wholeRow)),
			Reason: a.describe(s), Rule: s.dec.Rule + "; " + ruleWhole}
	}
	if v.unresolved != "" {
		s := ordered[0]
		return &Refusal{Column: v.unresolved, Clause: c.clause, How: c.how,
			Reason: fmt.Sprintf("cannot be resolved and counts as %s.%s, which %s", shortName(s.table), quoteIdent(s.column), a.describe(s)),
			Rule:   s.dec.Rule + "; " + ruleUnresolved}
	}
	if v.mixed && c.use != useOutput {
		s := ordered[0]
		return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause,
			How:    joinHow(c.how, "mixed with values outside its token domain (through "+orDefault(v.via, "a set operation")+")"),
			Reason: a.describe(s), Rule: s.dec.Rule + "; " + ruleDomain}
	}
	for _, s := range ordered {
		switch {
		case s.dec.Action == policy.Block:
			if c.use != useOutput {
				return a.refuseSource(s, c, ruleBlock)
			}
		default:
			if c.use != useOutput && c.use != useGroup && c.use != useCount && c.use != useCountDistinct && c.use != useSort {
				return a.refuseSource(s, c, rulePseudo)
			}
			if c.use == useSort && s.dec.Action == policy.Null {
				// Sorted by their digest, equal hidden values would sit
				// together.
				return a.refuseSource(s, c, ruleBlock)
			}
			if (c.use == useGroup || c.use == useSort || c.use == useCountDistinct) && !oneToOne(s.dec) {
				// Grouping happens on the clear value: groups would tell
				// apart what the output merges (two days of one year).
				return a.refuseSource(s, c, ruleMerged)
			}
		}
	}
	if c.use == useGroup {
		// Grouping or de-duplicating sorts or hashes by the clear value:
		// the statement's rows must come back in the proxy's digest order.
		a.digestOrder = true
	}
	if c.use != useOutput {
		return nil
	}
	switch v.origin {
	case originBase:
		return nil
	case originView:
		if a.pol.Column(v.view, v.viewCol) == nil && bareView(v) {
			// A plain view's column over one base column: the response
			// side, told by the server's plan, takes that column's
			// decision.
			return nil
		}
		if col := a.pol.Column(v.view, v.viewCol); col != nil {
			d := a.pol.Decide(a.role, v.view, v.viewCol)
			ok := true
			for _, s := range v.srcs {
				if rank(d.Action) < rank(s.dec.Action) {
					ok = false
				}
			}
			if ok {
				return nil
			}
		}
		s := ordered[0]
		return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause,
			How:    fmt.Sprintf("through view %s, whose column %s the policy does not classify at least as strictly", shortName(v.view), quoteIdent(v.viewCol)),
			Reason: a.describe(s), Rule: s.dec.Rule + "; " + ruleOrigin}
	}
	s := ordered[0]
	how := c.how
	switch {
	case how != "":
	case v.via != "":
		how = "through " + v.via + ", which hides the column's origin"
	default:
		how = "as a computed result column"
	}
	return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause, How: how,
		Reason: a.describe(s), Rule: s.dec.Rule + "; " + ruleOrigin}
}

// bareView reports a view column that passes one base column on
// unchanged (not a materialized view's: its plan shows only the view).
func bareView(v value) bool {
	return !v.viewMat && len(v.srcs) == 1 && !v.mixed && v.taint == nil && v.unresolved == "" && v.wholeRow == ""
}

func joinHow(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *analyzer) refuseSource(s *source, c ctx, rule string) *Refusal {
	return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: c.clause, How: c.how,
		Reason: a.describe(s), Rule: s.dec.Rule + "; " + rule}
}

// oneToOne reports a decision that may be grouped and compared: anything
// but a generalising transform (year, month, round, shift), whose output
// deliberately merges clear values that the server's grouping and
// comparison, done on the clear value, would tell apart again. Masked and
// nulled columns keep the policy's token-domain semantics (equal clear
// values within a domain may be joined and grouped, docs/policy.md).
func oneToOne(d policy.Decision) bool {
	return d.Action != policy.Tokenize || d.Spec.Kind.Injective()
}

// describe says what a protected column is, for messages.
func (a *analyzer) describe(s *source) string { return Describe(s.dec) }

// Describe says what a column with decision d is, for refusals: "is
// contact data, pseudonymised (tokenized)".
func Describe(d policy.Decision) string {
	switch {
	case d.Category == policy.CategorySpecial:
		return "is special-category data"
	case d.Action == policy.Block && d.Category == "":
		return "is unclassified and blocked"
	case d.Action == policy.Block:
		return fmt.Sprintf("is %s data and blocked", d.Category)
	case d.Action == policy.Tokenize:
		return fmt.Sprintf("is %s data, pseudonymised (tokenized)", d.Category)
	case d.Action == policy.Mask:
		return fmt.Sprintf("is %s data, pseudonymised (masked)", d.Category)
	case d.Category == "":
		return "is unclassified and nulled"
	}
	return fmt.Sprintf("is %s data, nulled", d.Category)
}

// equality checks values compared with each other for equality (joins,
// IN (subquery), USING, set operations that remove duplicates):
// pseudonymised values may meet only values of the same token domain,
// blocked ones never.
func (a *analyzer) equality(vs []value, c ctx) error {
	c = c.other()
	protected := false
	for _, v := range vs {
		if v.taint != nil || v.unresolved != "" || v.wholeRow != "" {
			if err := a.check(v, c); err != nil {
				return err
			}
		}
		if len(v.srcs) > 0 {
			protected = true
		}
	}
	if !protected {
		return nil
	}
	var first *source
	for _, v := range vs {
		for _, s := range v.srcs {
			if s.dec.Action == policy.Block {
				return a.refuseSource(s, c, ruleBlock)
			}
			if first == nil {
				first = s
			}
		}
	}
	for _, v := range vs {
		for _, s := range v.srcs {
			if !oneToOne(s.dec) {
				return a.refuseSource(s, c, ruleMerged)
			}
		}
	}
	if c.clause == "UNION" || c.clause == "INTERSECT" || c.clause == "EXCEPT" {
		a.digestOrder = true // de-duplicating across the branches
	}
	for _, v := range vs {
		if len(v.srcs) == 0 || v.mixed {
			c.how = joinHow(c.how, "with values outside its token domain")
			return a.refuseSource(first, c, ruleDomain)
		}
		for _, s := range v.srcs {
			if s.domain != first.domain {
				c.how = joinHow(c.how, fmt.Sprintf("with %s.%s (token domain %q, not %q)", shortName(s.table), quoteIdent(s.column), s.domain, first.domain))
				return a.refuseSource(first, c, ruleDomain)
			}
		}
	}
	return nil
}
