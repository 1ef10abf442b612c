package analyze

import (
	"fmt"
	"strings"

	"github.com/pgpseudo/pgpseudo/policy"
)

// Refusal explains why a statement must not run. The proxy sends
// Message() in an ErrorResponse with SQLSTATE 42501.
type Refusal struct {
	// StatementKind is the refused statement's kind (as StatementInfo.Kind),
	// or "unparseable".
	StatementKind string
	// Statement is the 1-based position of the refused statement in a
	// multi-statement string; 0 for a single statement.
	Statement int
	// Table and Column name the protected column, when a column use was
	// refused.
	Table  policy.TableName
	Column string
	// Function names the refused function.
	Function string
	// Relation names a refused relation (statistics views, unknown names).
	Relation string
	// Setting names a setting a restricted role may not change.
	Setting string
	// Word is a word the server's grammar reads differently.
	Word string
	// View is set when the refused use is inside a view's definition.
	View policy.TableName
	// Role is the session's policy role.
	Role string
	// Clause is where the use occurred: "WHERE", "JOIN", "GROUP BY",
	// "ORDER BY", "the select list", …
	Clause string
	// How refines Clause: "as an argument of lower()", "in a cast", …
	How string
	// Reason says what the refused thing is, e.g. "is special-category
	// data".
	Reason string
	// Rule is the policy and analysis rule that refuses it.
	Rule string
	// Action and Category are the role's decision for a refused column
	// use (Category empty: the policy does not classify the column).
	Action   policy.Action
	Category string
}

// Error implements error.
func (r *Refusal) Error() string { return r.Message() }

// Message is the text for the client, e.g. `pgpseudo: customers.religion
// is special-category data; role bi_analyst may not use it in WHERE
// (rule: …)`.
func (r *Refusal) Message() string {
	var b strings.Builder
	b.WriteString("pgpseudo: ")
	if r.Statement > 0 {
		fmt.Fprintf(&b, "statement %d: ", r.Statement)
	}
	subject := ""
	switch {
	case r.Column != "":
		subject = columnName(r.Table, r.Column)
	case r.Function != "":
		subject = "function " + r.Function + "()"
	case r.Relation != "":
		subject = "relation " + r.Relation
	case r.Setting != "":
		subject = "setting " + r.Setting
	case r.Word != "":
		subject = "the word " + quoteIdent(r.Word)
	}
	if subject != "" {
		b.WriteString(subject + " " + r.Reason)
	} else {
		b.WriteString(r.Reason)
	}
	b.WriteString("; role " + r.Role)
	if r.Column != "" && r.Clause != "" {
		b.WriteString(" may not use it in " + r.Clause)
	} else if r.Relation != "" && r.Function == "" {
		b.WriteString(" may not read it")
	} else if r.Setting != "" {
		b.WriteString(" may not change it")
	} else if r.Word != "" {
		b.WriteString(" may not use it unquoted")
	} else {
		b.WriteString(" may not run it")
		if r.Clause != "" {
			b.WriteString(" in " + r.Clause)
		}
	}
	if r.How != "" {
		b.WriteString(" (" + r.How + ")")
	}
	if r.View.Table != "" {
		b.WriteString(" in the definition of view " + shortName(r.View))
	}
	b.WriteString(" (rule: " + r.Rule + ")")
	return b.String()
}

// shortName leaves out the schema "public", as most messages are read by
// people who never write it.
func shortName(t policy.TableName) string {
	s := t.String()
	return strings.TrimPrefix(s, "public.")
}

func columnName(t policy.TableName, col string) string {
	if t.Table == "" {
		return quoteIdent(col)
	}
	return shortName(t) + "." + quoteIdent(col)
}

// quoteIdent quotes a name when PostgreSQL would need it.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// ruleUnresolvedRef refuses references the analysis cannot resolve.
const ruleUnresolvedRef = "references pgpseudo cannot resolve are refused for restricted roles"

// Code is a short, stable name for what refused the statement, for the
// audit record's refusal.rule (the message says it in words): the use of
// a column the role may not make that use of (column_blocked,
// column_pseudonymised, column_nulled, column_unclassified), a function,
// a relation, a setting, a statement kind, a word the server reads
// differently, an order the server reads rows in, or SQL pgpseudo cannot
// analyse.
func (r *Refusal) Code() string {
	switch {
	case r.Column != "" && r.Action != "":
		switch {
		case r.Category == "":
			return "column_unclassified"
		case r.Action == policy.Block:
			return "column_blocked"
		case r.Action == policy.Null:
			return "column_nulled"
		case r.Action == policy.Tokenize, r.Action == policy.Mask:
			return "column_pseudonymised"
		}
		return "column_use"
	case r.Rule == ruleUnresolvedRef:
		return "unresolved"
	case r.Column != "":
		return "column_use"
	case r.StatementKind == "unparseable":
		return "unparseable"
	case r.Word != "":
		return "keyword_mismatch"
	case r.Setting != "":
		return "setting"
	case r.Function != "":
		return "function"
	case r.Relation != "":
		return "relation"
	case strings.Contains(r.Reason, "the order in which the server reads them"), strings.Contains(r.Reason, "tie in the server's order"):
		return "read_order"
	case r.StatementKind != "":
		return "statement_kind"
	}
	return "unanalysable"
}
