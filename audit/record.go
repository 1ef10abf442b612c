package audit

import (
	"net/netip"
	"regexp"
	"time"
	"unicode/utf8"
)

// Type names a record type; it is the record's "type" field.
type Type string

// Record types. FileStart and Checkpoint are written by the Writer itself;
// the others are Events handed to Write.
const (
	TypeFileStart       Type = "file_start"
	TypeCheckpoint      Type = "checkpoint"
	TypeConnectionStart Type = "connection_start"
	TypeAuthFailure     Type = "auth_failure"
	TypeConnectionEnd   Type = "connection_end"
	TypeStatement       Type = "statement"
	TypePolicyLoad      Type = "policy_load"
	TypeKeyRotation     Type = "key_rotation"
	TypeDetokenize      Type = "detokenize"
	TypeStatementText   Type = "statement_text"
	TypeShadow          Type = "shadow"
)

// Types lists every record type.
func Types() []Type {
	return []Type{TypeFileStart, TypeCheckpoint, TypeConnectionStart, TypeAuthFailure,
		TypeConnectionEnd, TypeStatement, TypePolicyLoad, TypeKeyRotation, TypeDetokenize, TypeStatementText, TypeShadow}
}

// Record is one line of the audit log. Exactly one of the payload pointers
// is set, the one named by Type. The Writer fills Seq, Time, Prev and Hash.
type Record struct {
	// Seq numbers records from 1, across rotated files.
	Seq uint64 `json:"seq"`
	// Time is when the record was written (UTC, microseconds).
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	// Prev is the Hash of the previous record (hex), "" for record 1.
	Prev string `json:"prev"`

	FileStart       *FileStart       `json:"file_start,omitempty"`
	Checkpoint      *Checkpoint      `json:"checkpoint,omitempty"`
	ConnectionStart *ConnectionStart `json:"connection_start,omitempty"`
	AuthFailure     *AuthFailure     `json:"auth_failure,omitempty"`
	ConnectionEnd   *ConnectionEnd   `json:"connection_end,omitempty"`
	Statement       *Statement       `json:"statement,omitempty"`
	PolicyLoad      *PolicyLoad      `json:"policy_load,omitempty"`
	KeyRotation     *KeyRotation     `json:"key_rotation,omitempty"`
	Detokenize      *Detokenize      `json:"detokenize,omitempty"`
	StatementText   *StatementText   `json:"statement_text,omitempty"`
	Shadow          *Shadow          `json:"shadow,omitempty"`

	// Hash is SHA-256 (hex) over the line up to this field (see
	// docs/audit.md). It is always the last field of the line.
	Hash string `json:"hash,omitempty"`
}

// Event is a record payload the proxy or CLI writes with Writer.Write. It
// is implemented only by this package's event types (ConnectionStart,
// AuthFailure, ConnectionEnd, Statement, PolicyLoad, KeyRotation,
// Detokenize, Shadow), as values or pointers.
type Event interface {
	recordType() Type
	validate() error
	attach(r *Record)
}

// Session identifies the person and connection a record is about.
type Session struct {
	// ConnID is the proxy's identifier of the client connection.
	ConnID uint64 `json:"conn_id"`
	// User is the identity pgpseudo authenticated.
	User string `json:"user"`
	// Role is the policy role the user was mapped to.
	Role     string `json:"role"`
	Database string `json:"database"`
}

// ConnectionStart records an authenticated client connection.
type ConnectionStart struct {
	Session Session `json:"session"`
	// ClientAddr is the client's address (zero for Unix sockets).
	ClientAddr netip.AddrPort `json:"client_addr"`
	// ApplicationName is the client's application_name startup parameter.
	ApplicationName string `json:"application_name"`
	// TLSVersion is crypto/tls.VersionName of the client connection's
	// version ("TLS 1.3"), "" without TLS.
	TLSVersion string `json:"tls_version"`
	// AuthMethod is how the user was authenticated (e.g. "scram-sha-256",
	// "cert", "passthrough").
	AuthMethod string `json:"auth_method"`
}

// AuthFailure records a failed authentication.
type AuthFailure struct {
	// User is the user name the client asked for.
	User            string         `json:"user"`
	Database        string         `json:"database"`
	ClientAddr      netip.AddrPort `json:"client_addr"`
	ApplicationName string         `json:"application_name"`
	TLSVersion      string         `json:"tls_version"`
	AuthMethod      string         `json:"auth_method"`
	// Reason is a short code, e.g. "bad_password", "unknown_user",
	// "cert_rejected", "no_role", "timeout".
	Reason string `json:"reason"`
}

// ConnectionEnd records the end of a connection with its totals.
type ConnectionEnd struct {
	Session  Session       `json:"session"`
	Duration time.Duration `json:"duration_ns"`
	// Statements counts the statements the client sent.
	Statements uint64 `json:"statements"`
	// Rows and Bytes count result rows and message bytes sent to the client.
	Rows  uint64 `json:"rows"`
	Bytes uint64 `json:"bytes"`
}

// Decision is what a role's policy did with a classified column.
type Decision string

// Decisions.
const (
	DecisionAllowed   Decision = "allowed"   // sent in clear
	DecisionTokenized Decision = "tokenized" // replaced by a keyed pseudonym
	DecisionMasked    Decision = "masked"    // masked, generalised or redacted
	DecisionNulled    Decision = "nulled"    // sent as NULL
	DecisionBlocked   Decision = "blocked"   // use refused
)

// Decisions lists every Decision.
func Decisions() []Decision {
	return []Decision{DecisionAllowed, DecisionTokenized, DecisionMasked, DecisionNulled, DecisionBlocked}
}

// Outcome is how a statement or operation ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK        Outcome = "ok"
	OutcomeRefused   Outcome = "refused"   // refused by pgpseudo, never sent upstream
	OutcomeError     Outcome = "error"     // failed upstream or in the proxy
	OutcomeCancelled Outcome = "cancelled" // cancelled or connection lost
)

// Outcomes lists every Outcome.
func Outcomes() []Outcome {
	return []Outcome{OutcomeOK, OutcomeRefused, OutcomeError, OutcomeCancelled}
}

// Statement records one statement a client sent.
type Statement struct {
	Session Session `json:"session"`
	// Fingerprint is the normalised statement (every literal and
	// parameter replaced), computed by the caller and stored as given.
	Fingerprint string `json:"fingerprint"`
	// Kind is the statement kind, e.g. "select", "copy_to", "set".
	Kind string `json:"kind"`
	// Relations are the schema-qualified relations read.
	Relations []string `json:"relations"`
	// Columns has one entry per classified column in the result or
	// referenced by the statement.
	Columns []ColumnDecision `json:"columns"`
	// Rows and Bytes count result rows and message bytes sent to the client.
	Rows     uint64        `json:"rows"`
	Bytes    uint64        `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	Outcome  Outcome       `json:"outcome"`
	// SQLState is the error's SQLSTATE ("" when the outcome is ok).
	SQLState string `json:"sqlstate,omitempty"`
	// Refusal says which rule refused the statement (outcome refused).
	Refusal *Refusal `json:"refusal,omitempty"`
	// Unanalysed marks a statement of a role that sees everything: it was
	// not analysed, so Relations and Columns say nothing of what it read,
	// and it may have received any column in clear.
	Unanalysed bool `json:"unanalysed,omitempty"`
}

// StatementText gives the normalised text of a statement fingerprint:
// literals replaced by $n as pg_stat_statements shows statements, comments
// dropped (the proxy's sqlinfo.NormalizedText). The writer is handed one
// before the first statement record of a fingerprint in each log file
// (Writer.NeedsText), so every file explains its own fingerprints.
type StatementText struct {
	Fingerprint string `json:"fingerprint"`
	Text        string `json:"text"`
}

// ColumnDecision is the policy decision for one classified column.
type ColumnDecision struct {
	// Table is schema-qualified ("public.customers").
	Table  string `json:"table"`
	Column string `json:"column"`
	// Class is the column's classification (e.g. "personal", "health").
	Class    string   `json:"class"`
	Decision Decision `json:"decision"`
	// Transformer is the transformer kind (e.g. "token", "email", "mask").
	Transformer string `json:"transformer,omitempty"`
	// Domain is the token domain, KeyVersion the key version used.
	Domain     string `json:"domain,omitempty"`
	KeyVersion uint32 `json:"key_version,omitempty"`
	// Referred marks a column the statement refers to (WHERE, a join, a
	// subquery) without returning it: nothing of it was received.
	Referred bool `json:"referred,omitempty"`
}

// Refusal names the rule that refused a statement and the column it is
// about, if any.
type Refusal struct {
	Rule   string `json:"rule"`
	Table  string `json:"table,omitempty"`
	Column string `json:"column,omitempty"`
}

// PolicyLoad records a policy load or reload.
type PolicyLoad struct {
	// File is the policy file name, Hash "sha256:<hex>" of its content.
	File string `json:"file"`
	Hash string `json:"hash"`
	// Roles lists the roles the policy defines.
	Roles   []string `json:"roles"`
	Reload  bool     `json:"reload"`
	Outcome Outcome  `json:"outcome"`
}

// KeyRotation records a key rotation.
type KeyRotation struct {
	// Actor is who rotated (operator identity or "pgpseudo").
	Actor    string `json:"actor"`
	Provider string `json:"provider"`
	// Previous and Version are the primary key versions before and after.
	Previous uint32  `json:"previous"`
	Version  uint32  `json:"version"`
	Outcome  Outcome `json:"outcome"`
}

// Detokenize records a detokenization: who, which domain and how many
// tokens — never the tokens or the values.
type Detokenize struct {
	Actor   string  `json:"actor"`
	Domain  string  `json:"domain"`
	Tokens  uint64  `json:"tokens"`
	Outcome Outcome `json:"outcome"`
}

// FileStart is the first record of every log file. It continues the chain
// of the previous file (Record.Prev is that file's last hash).
type FileStart struct {
	// Format is the log format version, "pgpseudo-audit/2".
	Format string `json:"format"`
	// Log identifies the chain (random, chosen when the log was created);
	// every file and checkpoint of the log carries it.
	Log string `json:"log"`
	// File is this file's name when it was created ("-" for stdout).
	File string `json:"file"`
	// PrevFile names the previous file of the chain ("" for the first).
	PrevFile string `json:"prev_file,omitempty"`
	// Reason is new, resume, rotate_size, rotate_time or start (stdout).
	Reason string `json:"reason"`
}

// Checkpoint is a signed statement of the chain's state: record Records of
// log Log has hash Head, and the writer wrote records From to Records. The
// signature covers Log, From, Records, Head, File, SignedAt and Final
// (checkpointMessage). It is written periodically, when the log
// is opened and when it is closed, into the log and into the checkpoint
// file.
type Checkpoint struct {
	// Log is the chain's identity (FileStart.Log).
	Log string `json:"log"`
	// From and Records are the first and last record the checkpoint
	// covers: the writer vouches only for what it wrote itself, so From
	// is the first record of the writer's run (a restarted proxy does not
	// sign what it found at the end of the log). Records precedes the
	// checkpoint record itself.
	From    uint64 `json:"from"`
	Records uint64 `json:"records"`
	// Head is the hash of record Records.
	Head string `json:"head"`
	// File is the active file's name.
	File string `json:"file"`
	// Final marks the checkpoint written when the writer closes; it
	// covers every record before it.
	Final bool `json:"final,omitempty"`
	// SignedAt is when the state was signed.
	SignedAt time.Time `json:"signed_at"`
	// KeyID names the public key that verifies Signature.
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature in standard base64.
	Signature string `json:"signature"`
}

// FormatVersion is written in every FileStart record.
const FormatVersion = "pgpseudo-audit/2"

// FileStart reasons.
const (
	ReasonNew        = "new"
	ReasonResume     = "resume"
	ReasonRotateSize = "rotate_size"
	ReasonRotateTime = "rotate_time"
	ReasonStart      = "start"
)

func (ConnectionStart) recordType() Type { return TypeConnectionStart }
func (AuthFailure) recordType() Type     { return TypeAuthFailure }
func (ConnectionEnd) recordType() Type   { return TypeConnectionEnd }
func (Statement) recordType() Type       { return TypeStatement }
func (PolicyLoad) recordType() Type      { return TypePolicyLoad }
func (KeyRotation) recordType() Type     { return TypeKeyRotation }
func (Detokenize) recordType() Type      { return TypeDetokenize }
func (StatementText) recordType() Type   { return TypeStatementText }

func (e ConnectionStart) attach(r *Record) { r.ConnectionStart = &e }
func (e AuthFailure) attach(r *Record)     { r.AuthFailure = &e }
func (e ConnectionEnd) attach(r *Record)   { r.ConnectionEnd = &e }
func (e Statement) attach(r *Record)       { r.Statement = &e }
func (e PolicyLoad) attach(r *Record)      { r.PolicyLoad = &e }
func (e KeyRotation) attach(r *Record)     { r.KeyRotation = &e }
func (e Detokenize) attach(r *Record)      { r.Detokenize = &e }
func (e StatementText) attach(r *Record)   { r.StatementText = &e }

// Field limits. Names are metadata (identifiers, user names), never data.
const (
	maxName        = 256
	maxFingerprint = 1 << 20
	maxText        = 32 << 10
	maxList        = 10000
)

var hashRe = regexp.MustCompile(`^[a-z0-9-]{1,16}:[0-9a-f]{16,128}$`)

// isCode matches ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$ without a regexp: it
// runs for every statement record.
func isCode(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != ':' && c != '-') {
			return false
		}
	}
	return true
}

// IsSQLState reports a valid SQLSTATE: ^[0-9A-Z]{5}$.
func IsSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < 5; i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func checkName(field, s string) error {
	if len(s) > maxName {
		return invalidf("%s is longer than %d bytes", field, maxName)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

// checkCode checks a short code (kind, rule, reason…); empty is allowed
// only when optional.
func checkCode(field, s string, optional bool) error {
	if s == "" && optional {
		return nil
	}
	if !isCode(s) {
		return invalidf("%s %q is not a short code ([A-Za-z0-9_.:-], at most 64)", field, s)
	}
	return nil
}

func checkTLS(v string) error {
	switch v {
	case "", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3":
		return nil
	}
	return invalidf("tls_version %q is not a crypto/tls version name", v)
}

func checkOutcome(o Outcome) error {
	switch o {
	case OutcomeOK, OutcomeRefused, OutcomeError, OutcomeCancelled:
		return nil
	}
	return invalidf("outcome %q is not ok, refused, error or cancelled", o)
}

func checkNames(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkName(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (s Session) validate() error {
	return checkNames("session.user", s.User, "session.role", s.Role, "session.database", s.Database)
}

func (e ConnectionStart) validate() error {
	if err := e.Session.validate(); err != nil {
		return err
	}
	if err := checkNames("application_name", e.ApplicationName); err != nil {
		return err
	}
	if err := checkTLS(e.TLSVersion); err != nil {
		return err
	}
	return checkCode("auth_method", e.AuthMethod, true)
}

func (e AuthFailure) validate() error {
	if err := checkNames("user", e.User, "database", e.Database, "application_name", e.ApplicationName); err != nil {
		return err
	}
	if err := checkTLS(e.TLSVersion); err != nil {
		return err
	}
	if err := checkCode("auth_method", e.AuthMethod, true); err != nil {
		return err
	}
	return checkCode("reason", e.Reason, false)
}

func (e ConnectionEnd) validate() error { return e.Session.validate() }

func (e Statement) validate() error {
	if err := e.Session.validate(); err != nil {
		return err
	}
	if len(e.Fingerprint) > maxFingerprint || !utf8.ValidString(e.Fingerprint) {
		return invalidf("fingerprint is longer than %d bytes or not UTF-8", maxFingerprint)
	}
	if err := checkCode("kind", e.Kind, false); err != nil {
		return err
	}
	if len(e.Relations) > maxList || len(e.Columns) > maxList {
		return invalidf("more than %d relations or columns", maxList)
	}
	for _, r := range e.Relations {
		if err := checkName("relations[]", r); err != nil {
			return err
		}
	}
	for _, c := range e.Columns {
		if err := c.validate(); err != nil {
			return err
		}
	}
	if err := checkOutcome(e.Outcome); err != nil {
		return err
	}
	if e.SQLState != "" && !IsSQLState(e.SQLState) {
		return invalidf("sqlstate %q is not five characters [0-9A-Z]", e.SQLState)
	}
	if e.Outcome == OutcomeOK && e.SQLState != "" {
		return invalidf("sqlstate set on outcome ok")
	}
	if e.Refusal != nil {
		if err := checkCode("refusal.rule", e.Refusal.Rule, false); err != nil {
			return err
		}
		if err := checkNames("refusal.table", e.Refusal.Table, "refusal.column", e.Refusal.Column); err != nil {
			return err
		}
	}
	if e.Outcome == OutcomeRefused && e.Refusal == nil {
		return invalidf("outcome refused needs a refusal rule")
	}
	return nil
}

func (c ColumnDecision) validate() error {
	if err := checkNames("columns[].table", c.Table, "columns[].column", c.Column, "columns[].domain", c.Domain); err != nil {
		return err
	}
	if c.Table == "" || c.Column == "" {
		return invalidf("columns[] needs table and column")
	}
	if err := checkCode("columns[].class", c.Class, true); err != nil {
		return err
	}
	if err := checkCode("columns[].transformer", c.Transformer, true); err != nil {
		return err
	}
	switch c.Decision {
	case DecisionAllowed, DecisionTokenized, DecisionMasked, DecisionNulled, DecisionBlocked:
		return nil
	}
	return invalidf("columns[].decision %q is not allowed, tokenized, masked, nulled or blocked", c.Decision)
}

func (e PolicyLoad) validate() error {
	if err := checkName("file", e.File); err != nil {
		return err
	}
	if e.Hash != "" && !hashRe.MatchString(e.Hash) {
		return invalidf("hash %q is not algorithm:hex", e.Hash)
	}
	if len(e.Roles) > maxList {
		return invalidf("more than %d roles", maxList)
	}
	for _, r := range e.Roles {
		if err := checkName("roles[]", r); err != nil {
			return err
		}
	}
	return checkOutcome(e.Outcome)
}

func (e KeyRotation) validate() error {
	if err := checkName("actor", e.Actor); err != nil {
		return err
	}
	if err := checkCode("provider", e.Provider, true); err != nil {
		return err
	}
	return checkOutcome(e.Outcome)
}

func (e StatementText) validate() error {
	if err := checkCode("fingerprint", e.Fingerprint, false); err != nil {
		return err
	}
	if len(e.Text) > maxText || !utf8.ValidString(e.Text) {
		return invalidf("statement text is longer than %d bytes or not UTF-8", maxText)
	}
	return nil
}

func (e Detokenize) validate() error {
	if err := checkNames("actor", e.Actor, "domain", e.Domain); err != nil {
		return err
	}
	return checkOutcome(e.Outcome)
}
