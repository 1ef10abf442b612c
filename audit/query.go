package audit

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Filter selects records. Empty fields match everything; set fields must
// all match. Table, Column and Decision must match the same column entry
// of a statement (Table alone also matches its relations).
type Filter struct {
	// User matches the session user, the user of an auth failure, or the
	// actor of a detokenize or key rotation.
	User string
	// Role matches the session role.
	Role string
	// Table is "name" or "schema.name".
	Table string
	// Column is "column", "table.column" or "schema.table.column".
	Column   string
	Decision Decision
	// Outcome matches statements, policy loads, key rotations and
	// detokenizations.
	Outcome Outcome
	// Types restricts record types.
	Types []Type
	// Since (inclusive) and Until (exclusive) bound the record time.
	Since, Until time.Time
	// Client matches connections from addresses in the prefix (a single
	// address is a /32 or /128): connection starts and auth failures by
	// their address, a connection's statements and end through its
	// conn_id, once its start has been read.
	Client netip.Prefix

	clientConns map[uint64]bool // conn_ids whose start matched Client
}

// Match reports whether r passes the filter. Records must be given in log
// order (a client filter follows connections from their start).
func (f *Filter) Match(r *Record) bool {
	if f.Client.IsValid() && !f.matchClient(r) {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	if len(f.Types) > 0 && !contains(f.Types, r.Type) {
		return false
	}
	if f.User != "" && userOf(r) != f.User {
		return false
	}
	if f.Role != "" && (sessionOf(r) == nil || sessionOf(r).Role != f.Role) {
		return false
	}
	if f.Outcome != "" && outcomeOf(r) != f.Outcome {
		return false
	}
	if f.Table == "" && f.Column == "" && f.Decision == "" {
		return true
	}
	s := r.Statement
	if s == nil {
		return false
	}
	for _, c := range s.Columns {
		if (f.Table == "" || tableMatch(f.Table, c.Table)) &&
			(f.Column == "" || columnMatch(f.Column, c)) &&
			(f.Decision == "" || c.Decision == f.Decision) {
			return true
		}
	}
	if f.Column == "" && f.Decision == "" {
		for _, rel := range s.Relations {
			if tableMatch(f.Table, rel) {
				return true
			}
		}
	}
	return false
}

// matchClient applies the Client filter, remembering matched connections.
func (f *Filter) matchClient(r *Record) bool {
	switch {
	case r.FileStart != nil && (r.FileStart.Reason == ReasonNew || r.FileStart.Reason == ReasonResume):
		// A writer (re)started: the proxy numbers connections from 1
		// again, so earlier conn_ids name other connections from now on.
		clear(f.clientConns)
		return false
	case r.ConnectionStart != nil:
		// Every start decides for its conn_id, matched or not: a restarted
		// proxy numbers connections from 1 again without a file_start.
		ok := f.Client.Contains(r.ConnectionStart.ClientAddr.Addr().Unmap())
		if f.clientConns == nil {
			f.clientConns = map[uint64]bool{}
		}
		f.clientConns[r.ConnectionStart.Session.ConnID] = ok
		return ok
	case r.AuthFailure != nil:
		return f.Client.Contains(r.AuthFailure.ClientAddr.Addr().Unmap())
	}
	if s := sessionOf(r); s != nil {
		return f.clientConns[s.ConnID]
	}
	return false
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func tableMatch(q, qualified string) bool {
	if q == qualified {
		return true
	}
	return !strings.Contains(q, ".") && strings.HasSuffix(qualified, "."+q)
}

func columnMatch(q string, c ColumnDecision) bool {
	full := c.Table + "." + c.Column
	return q == c.Column || q == full || strings.HasSuffix(full, "."+q)
}

func sessionOf(r *Record) *Session {
	switch {
	case r.Statement != nil:
		return &r.Statement.Session
	case r.ConnectionStart != nil:
		return &r.ConnectionStart.Session
	case r.ConnectionEnd != nil:
		return &r.ConnectionEnd.Session
	case r.Shadow != nil:
		return &r.Shadow.Session
	}
	return nil
}

func userOf(r *Record) string {
	if s := sessionOf(r); s != nil {
		return s.User
	}
	switch {
	case r.AuthFailure != nil:
		return r.AuthFailure.User
	case r.Detokenize != nil:
		return r.Detokenize.Actor
	case r.KeyRotation != nil:
		return r.KeyRotation.Actor
	}
	return ""
}

func outcomeOf(r *Record) Outcome {
	switch {
	case r.Statement != nil:
		return r.Statement.Outcome
	case r.PolicyLoad != nil:
		return r.PolicyLoad.Outcome
	case r.KeyRotation != nil:
		return r.KeyRotation.Outcome
	case r.Detokenize != nil:
		return r.Detokenize.Outcome
	}
	return ""
}

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// RecordWriter writes query results.
type RecordWriter interface {
	// Write writes r. Hand it every statement_text record read, matching
	// or not: they are not written as such, but give the statements
	// written after them their normalised text.
	Write(r *Record) error
	// Flush writes buffered output (the table is aligned on Flush).
	Flush() error
}

// NewRecordWriter returns a writer for format: table (aligned text, a
// statement shown by its normalised text when known), json (JSON Lines,
// the records as stored, each statement_text record before the first
// statement written that it explains) or csv (one row per record, with a
// header; the statement column holds the normalised text).
func NewRecordWriter(w io.Writer, format string) (RecordWriter, error) {
	tw := &textWriter{texts: map[string]*Record{}, shown: map[string]bool{}}
	switch format {
	case FormatTable:
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(t, "SEQ\tTIME\tTYPE\tUSER\tROLE\tOUTCOME\tROWS\tCOLUMNS\tDETAIL")
		tw.out = &tableWriter{tw: t}
	case FormatJSON:
		tw.out, tw.replay = &jsonWriter{enc: json.NewEncoder(w)}, true
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return nil, err
		}
		tw.out = &csvWriter{cw: cw}
	default:
		return nil, fmt.Errorf("unknown format %q (want table, json or csv)", format)
	}
	return tw, nil
}

// formatWriter writes one record in a format, with its statement's text
// ("" when unknown).
type formatWriter interface {
	write(r *Record, text string) error
	Flush() error
}

// textWriter joins statements to their statement_text records.
type textWriter struct {
	out    formatWriter
	texts  map[string]*Record // fingerprint → its statement_text record
	shown  map[string]bool    // statement_text records already written (json)
	replay bool               // write statement_text records (json)
}

func (t *textWriter) Write(r *Record) error {
	if st := r.StatementText; st != nil {
		c := *r
		t.texts[st.Fingerprint] = &c
		return nil
	}
	text := ""
	if r.Statement != nil {
		if tr := t.texts[r.Statement.Fingerprint]; tr != nil {
			text = tr.StatementText.Text
			if t.replay && !t.shown[r.Statement.Fingerprint] {
				t.shown[r.Statement.Fingerprint] = true
				if err := t.out.write(tr, ""); err != nil {
					return err
				}
			}
		}
	}
	return t.out.write(r, text)
}

func (t *textWriter) Flush() error { return t.out.Flush() }

var csvHeader = []string{"seq", "time", "type", "conn_id", "user", "role", "database", "kind",
	"fingerprint", "relations", "columns", "rows", "bytes", "duration_ns", "outcome", "sqlstate",
	"refusal_rule", "detail", "statement"}

type jsonWriter struct{ enc *json.Encoder }

func (j *jsonWriter) write(r *Record, _ string) error { return j.enc.Encode(r) }
func (j *jsonWriter) Flush() error                    { return nil }

type csvWriter struct{ cw *csv.Writer }

func (c *csvWriter) write(r *Record, text string) error {
	row := []string{strconv.FormatUint(r.Seq, 10), r.Time.Format(time.RFC3339Nano), string(r.Type)}
	var connID, user, role, db string
	if s := sessionOf(r); s != nil {
		connID, user, role, db = strconv.FormatUint(s.ConnID, 10), s.User, s.Role, s.Database
	} else {
		user = userOf(r)
	}
	row = append(row, connID, user, role, db)
	if s := r.Statement; s != nil {
		rule := ""
		if s.Refusal != nil {
			rule = s.Refusal.Rule
		}
		row = append(row, s.Kind, s.Fingerprint, strings.Join(s.Relations, ";"), columnsCell(s.Columns),
			strconv.FormatUint(s.Rows, 10), strconv.FormatUint(s.Bytes, 10), strconv.FormatInt(int64(s.Duration), 10),
			string(s.Outcome), s.SQLState, rule, "", text)
	} else {
		row = append(row, "", "", "", "", "", "", "", string(outcomeOf(r)), "", "", detail(r), "")
	}
	return c.cw.Write(row)
}

func (c *csvWriter) Flush() error { c.cw.Flush(); return c.cw.Error() }

type tableWriter struct{ tw *tabwriter.Writer }

func (t *tableWriter) write(r *Record, text string) error {
	role, rows, cols, det := "", "", "", detail(r)
	if s := sessionOf(r); s != nil {
		role = s.Role
	}
	if s := r.Statement; s != nil {
		rows, cols = strconv.FormatUint(s.Rows, 10), columnsCell(s.Columns)
		det = clip(cmp.Or(text, s.Fingerprint), 80)
		if s.Refusal != nil {
			det = "rule=" + s.Refusal.Rule + " " + det
		}
	}
	_, err := fmt.Fprintf(t.tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("2006-01-02T15:04:05.000Z"),
		r.Type, dash(userOf(r)), dash(role), dash(string(outcomeOf(r))), dash(rows), dash(cols), dash(det))
	return err
}

func (t *tableWriter) Flush() error { return t.tw.Flush() }

// columnsCell renders decisions as "schema.table.column=decision;…".
func columnsCell(cs []ColumnDecision) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Table + "." + c.Column + "=" + string(c.Decision)
	}
	return strings.Join(parts, ";")
}

// detail summarises records other than statements.
func detail(r *Record) string {
	switch {
	case r.ConnectionStart != nil:
		c := r.ConnectionStart
		return fmt.Sprintf("db=%s client=%s app=%q tls=%q auth=%s", c.Session.Database, c.ClientAddr, c.ApplicationName, c.TLSVersion, c.AuthMethod)
	case r.AuthFailure != nil:
		a := r.AuthFailure
		return fmt.Sprintf("db=%s client=%s reason=%s auth=%s", a.Database, a.ClientAddr, a.Reason, a.AuthMethod)
	case r.ConnectionEnd != nil:
		c := r.ConnectionEnd
		return fmt.Sprintf("duration=%s statements=%d rows=%d bytes=%d", c.Duration, c.Statements, c.Rows, c.Bytes)
	case r.PolicyLoad != nil:
		p := r.PolicyLoad
		return fmt.Sprintf("file=%s hash=%s roles=%s reload=%t", p.File, p.Hash, strings.Join(p.Roles, ","), p.Reload)
	case r.KeyRotation != nil:
		k := r.KeyRotation
		return fmt.Sprintf("provider=%s version=%d→%d", k.Provider, k.Previous, k.Version)
	case r.Detokenize != nil:
		return fmt.Sprintf("domain=%s tokens=%d", r.Detokenize.Domain, r.Detokenize.Tokens)
	case r.Shadow != nil:
		parts := make([]string, len(r.Shadow.Differences))
		for i, d := range r.Shadow.Differences {
			parts[i] = d.Kind
			if d.Column != "" {
				parts[i] += ":" + d.Table + "." + d.Column + "=" + string(d.Enforced) + "→" + string(d.Candidate)
				if d.EnforcedTransform != d.CandidateTransform {
					parts[i] += "(" + d.EnforcedTransform + "→" + d.CandidateTransform + ")"
				}
			}
		}
		return fmt.Sprintf("shadow_role=%s %s", r.Shadow.ShadowRole, strings.Join(parts, ";"))
	case r.FileStart != nil:
		f := r.FileStart
		return fmt.Sprintf("log=%s file=%s prev_file=%s reason=%s", f.Log, f.File, f.PrevFile, f.Reason)
	case r.Checkpoint != nil:
		c := r.Checkpoint
		return fmt.Sprintf("records=%d file=%s final=%t key_id=%s", c.Records, c.File, c.Final, c.KeyID)
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// dash is a text cell: "-" for nothing, else the value with control and
// other non-graphic characters escaped (tabless), so a client-chosen name
// (an authentication failure's user, a quoted identifier) cannot draw
// lines of its own in the output.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return tabless(s)
}

// tabless escapes a text cell's non-graphic characters (tabs, newlines,
// escape sequences…) as Go does in a quoted string, without the quotes.
func tabless(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
