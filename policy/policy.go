// Package policy is pgpseudo's policy model: one file classifies columns
// into categories and says, per role, what each category becomes when it
// leaves the proxy (docs/policy.md). It loads and validates the file with
// file:line errors, maps an authenticated identity to a role, and decides
// per (table, column) what the proxy must do. It knows nothing about the
// wire protocol.
package policy

import (
	"errors"
	"sync"

	"github.com/pgpseudo/pgpseudo/crypto"
)

// ErrNoRole is returned when no role matches a user and there is no role
// named "default".
var ErrNoRole = errors.New("no policy role matches the user")

// Action is what happens to a value of a category for a role.
type Action string

// Actions. Their order of strictness: allow < tokenize < mask < null < block.
const (
	Allow    Action = "allow"
	Tokenize Action = "tokenize"
	Mask     Action = "mask"
	Null     Action = "null"
	Block    Action = "block"
)

var actions = []Action{Allow, Tokenize, Mask, Null, Block}

// CategorySpecial is GDPR Art. 9 data: blocked for every role unless the
// role allows it and names a legal basis.
const CategorySpecial = "special"

// builtinCategories may be used without declaring them.
var builtinCategories = []string{"identity", "contact", "financial", "key", "location", "online", "employment", CategorySpecial}

// Policy is a loaded, validated policy file.
type Policy struct {
	// Hash is the SHA-256 of the file, for audit records.
	Hash string
	// Roles in file order: the first match wins.
	Roles   []*Role
	domains map[string]DomainSpec
	tables  map[TableName]*tablePolicy
	// FunctionsAllowed lists user-defined functions restricted roles may call.
	FunctionsAllowed []string
	// decisions caches Decide by (role, table, column); a policy never
	// changes once loaded (a reload makes a new one).
	decisions sync.Map
}

// TableName is a schema-qualified table name exactly as PostgreSQL stores it.
type TableName struct{ Schema, Table string }

// String quotes the parts that need it, as psql would show them.
func (t TableName) String() string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Table) }

// Column is a classified column's settings.
type Column struct {
	Table    TableName
	Name     string // "*" for the table's wildcard
	Category string
	// Spec is the transform used by tokenize (Kind empty: none given).
	Spec crypto.Spec
	// MaskSpec is the transform used by mask.
	MaskSpec crypto.Spec
	line     int
	// implicitDomain: the policy names no domain, so the column is its own.
	implicitDomain bool
}

type tablePolicy struct {
	columns  map[string]*Column
	wildcard *Column
}

// Role is one role of the policy.
type Role struct {
	Name     string
	Users    []string // globs (path.Match syntax)
	MemberOf []string
	Actions  map[string]Action
	// Default is the action of "*": categories the role does not name,
	// except special; empty means block.
	Default      Action
	Unclassified Action
	LegalBasis   string
	// Subset is the condition on each table's rows that the role's dumps
	// keep (SubsetFilter); nil keeps every row.
	Subset map[TableName]string
	// categories are every category of the policy, for Restricted.
	categories []string
}

// Decision is what to do with one column for one role.
type Decision struct {
	Action Action
	// Column is the column the decision is about.
	Column string
	// Category is "" for an unclassified column.
	Category string
	// Spec is the transformer for tokenize and mask.
	Spec crypto.Spec
	// Rule explains the decision for notices, refusals and audit records,
	// e.g. `category "special" is blocked for role "bi_analyst"`.
	Rule string
}
