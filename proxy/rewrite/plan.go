// Package rewrite applies column plans to what the server sends a
// restricted session: DataRow, RowDescription and COPY data. It does no
// I/O; the proxy builds the plans (docs/security.md, "Response side").
package rewrite

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
)

// Col is what happens to one result column, decided once per result.
type Col struct {
	Action policy.Action
	// Tr rewrites the value (tokenize, mask, or the NOT NULL stand-in of a
	// withheld value); nil with action allow copies the raw bytes.
	Tr crypto.Transformer
	// Null writes SQL NULL for every value.
	Null bool
}

// Plan is the column plan of one result set: built once from its
// RowDescription (or COPY column list), applied to every row.
type Plan struct {
	Cols []Col
	// Passthrough is true when every column is allowed: rows are copied.
	Passthrough bool
	// Withheld names the columns whose values do not leave, with the rule,
	// for the one NoticeResponse per result (encoded once).
	Withheld    []string
	noticeFrame []byte
	// TypmodReset marks columns whose TypeModifier must become -1 because a
	// token may not fit varchar(n)/char(n).
	TypmodReset []bool
	// Types are the type OIDs the client is told for columns the proxy
	// computes itself (0: the column's own).
	Types []uint32
	// Generation is the policy generation the plan was made under.
	Generation uint64
	// DateStyle is the session's DateStyle the plan's date columns are
	// read and written in: a plan serves only while it stays the same.
	DateStyle string
	// Audit holds the decisions on classified or rewritten columns, and
	// Relations the tables the result's columns come from.
	Audit     []audit.ColumnDecision
	Relations []string
	// Shadow is what the shadow candidate policy would send otherwise,
	// column by column (the proxy's shadow mode); reported, never applied.
	Shadow []audit.ShadowDifference
}

// TextLike are types that can carry arbitrary text or bytes: a column of
// such a type with no provable origin is never forwarded raw.
func TextLike(oid uint32) bool {
	switch oid {
	case 16, 20, 21, 23, 26, 700, 701, 1700, 1082, 1083, 1114, 1184, 1186, 1266, 790:
		// bool, int8, int2, int4, oid, float4, float8, numeric, date, time,
		// timestamp, timestamptz, interval, timetz, money
		return false
	}
	return true
}

// Note records a column's decision for the audit record.
func (p *Plan) Note(origin policy.TableName, d policy.Decision, cp Col) {
	if origin.Table == "" {
		return
	}
	table := origin.Schema + "." + origin.Table
	if !slices.Contains(p.Relations, table) {
		p.Relations = append(p.Relations, table)
	}
	if d.Category == "" && cp.Action == policy.Allow {
		return
	}
	cd := audit.ColumnDecision{Table: table, Column: d.Column, Class: d.Category, Decision: DecisionOf(cp.Action)}
	if cp.Action == policy.Tokenize || cp.Action == policy.Mask {
		cd.Transformer, cd.Domain = string(d.Spec.Kind), d.Spec.Domain
		if cp.Tr != nil {
			cd.KeyVersion = cp.Tr.KeyVersion()
		}
	}
	if cd.Class == "" {
		cd.Class = "unclassified"
	}
	p.Audit = append(p.Audit, cd)
}

// FormatFor applies Bind's result-format rules: none ⇒ text, one ⇒ all,
// else per column. fallback is used when formats is nil (simple query).
func FormatFor(formats []int16, i int, fallback int16) int16 {
	switch {
	case formats == nil:
		return fallback
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

// Notice returns the NoticeResponse naming the withheld columns, encoded
// once per plan (a prepared statement's plan serves every execution).
func (p *Plan) Notice() []byte {
	if len(p.Withheld) == 0 {
		return nil
	}
	if p.noticeFrame == nil {
		p.noticeFrame, _ = (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000",
			Message: "pgpseudo: values withheld for " + strings.Join(p.Withheld, "; ")}).Encode(nil)
	}
	return p.noticeFrame
}

// DecisionOf maps a policy action to the audit vocabulary.
func DecisionOf(a policy.Action) audit.Decision {
	switch a {
	case policy.Allow:
		return audit.DecisionAllowed
	case policy.Tokenize:
		return audit.DecisionTokenized
	case policy.Mask:
		return audit.DecisionMasked
	case policy.Null:
		return audit.DecisionNulled
	}
	return audit.DecisionBlocked
}
