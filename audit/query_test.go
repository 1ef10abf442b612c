package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// knownLog writes sampleEvents plus a support user's statement and returns
// the file and the records as read back.
func knownLog(t *testing.T) (string, []Record) {
	t.Helper()
	cfg := testConfig(t.TempDir())
	w := newTestWriter(t, cfg, seams{})
	evs := sampleEvents()
	carol := stmt(3)
	carol.Session = Session{ConnID: 9, User: "carol", Role: "support", Database: "shop"}
	carol.Relations = []string{"public.customers", "crm.tickets"}
	carol.Columns = []ColumnDecision{
		{Table: "public.customers", Column: "email", Class: "personal", Decision: DecisionAllowed},
		{Table: "crm.tickets", Column: "phone", Class: "personal", Decision: DecisionMasked, Transformer: "mask"},
		{Table: "crm.tickets", Column: "diagnosis", Class: "health", Decision: DecisionNulled},
	}
	evs = append(evs, carol)
	for _, ev := range evs {
		if err := w.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var recs []Record
	if err := ReadRecords(context.Background(), []string{cfg.Path}, func(r *Record) error {
		recs = append(recs, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return cfg.Path, recs
}

func TestQueryFilters(t *testing.T) {
	path, recs := knownLog(t)
	// recs: 1 file_start, 2 the opening checkpoint, 3 policy_load,
	// 4 connection_start, 5 auth_failure, 6 statement, 7 refused statement,
	// 8 connection_end, 9 key_rotation, 10 detokenize, 11 carol's
	// statement, 12 final checkpoint
	if len(recs) != 12 {
		t.Fatalf("%d records", len(recs))
	}
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"user", Filter{User: "alice"}, []uint64{4, 6, 7, 8}},
		{"auth failure user", Filter{User: "bob"}, []uint64{5}},
		{"detokenize actor", Filter{User: "dpo"}, []uint64{10}},
		{"role", Filter{Role: "support"}, []uint64{11}},
		{"table unqualified", Filter{Table: "customers"}, []uint64{6, 7, 11}},
		{"table qualified relation", Filter{Table: "crm.tickets"}, []uint64{11}},
		{"column", Filter{Column: "phone"}, []uint64{11}},
		{"column and decision on the same column", Filter{Column: "email", Decision: DecisionAllowed}, []uint64{11}},
		{"decision", Filter{Decision: DecisionTokenized}, []uint64{6, 7}},
		{"qualified column", Filter{Column: "public.customers.id"}, []uint64{6, 7}},
		{"outcome", Filter{Outcome: OutcomeRefused}, []uint64{7}},
		{"since until", Filter{Since: recs[5].Time, Until: recs[7].Time}, []uint64{6, 7}},
		{"type", Filter{Types: []Type{TypeKeyRotation, TypePolicyLoad}}, []uint64{3, 9}},
		// The sample's statements are on conn_id 2, whose start is not in
		// the log: only connection 1's start and end come from 10.0.0.7.
		{"client address: a connection's records", Filter{Client: netip.MustParsePrefix("10.0.0.7/32")}, []uint64{4, 8}},
		{"client prefix", Filter{Client: netip.MustParsePrefix("10.0.0.0/8")}, []uint64{4, 8}},
		{"client of an auth failure", Filter{Client: netip.MustParsePrefix("2001:db8::/32")}, []uint64{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			ReadRecords(context.Background(), []string{path}, func(r *Record) error {
				if tt.f.Match(r) {
					got = append(got, r.Seq)
				}
				return nil
			})
			if !equalU(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func equalU(a, b []uint64) bool { return slices.Equal(a, b) }

func TestQueryFormats(t *testing.T) {
	_, recs := knownLog(t)
	sel := []Record{recs[5], recs[6], recs[10]} // the statements
	render := func(format string) string {
		var b bytes.Buffer
		rw, err := NewRecordWriter(&b, format)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sel {
			if err := rw.Write(&sel[i]); err != nil {
				t.Fatal(err)
			}
		}
		rw.Flush()
		return b.String()
	}
	t.Run("json", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(render(FormatJSON)), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines", len(lines))
		}
		for i, l := range lines {
			var r Record
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Seq != sel[i].Seq || r.Hash != sel[i].Hash || r.Statement.Fingerprint != sel[i].Statement.Fingerprint {
				t.Fatalf("line %d: %v %+v", i, err, r)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		rows, err := csv.NewReader(strings.NewReader(render(FormatCSV))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
			t.Fatalf("rows %q", rows)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		r := rows[2]
		if r[col["user"]] != "alice" || r[col["outcome"]] != "refused" || r[col["sqlstate"]] != "42501" ||
			r[col["refusal_rule"]] != "pseudonymised-compared" || r[col["columns"]] != "public.customers.email=tokenized;public.customers.id=allowed" {
			t.Fatalf("row %q", r)
		}
		if rows[3][col["role"]] != "support" || rows[3][col["relations"]] != "public.customers;crm.tickets" {
			t.Fatalf("row %q", rows[3])
		}
	})
	t.Run("table", func(t *testing.T) {
		out := render(FormatTable)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[2], "rule=pseudonymised-compared") ||
			!strings.Contains(lines[3], "crm.tickets.phone=masked") {
			t.Fatalf("table:\n%s", out)
		}
	})
	if _, err := NewRecordWriter(&bytes.Buffer{}, "xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestReport(t *testing.T) {
	path, recs := knownLog(t)
	rp := NewReport(time.Time{}, time.Time{})
	ReadRecords(context.Background(), []string{path}, func(r *Record) error { rp.Add(r); return nil })
	var b bytes.Buffer
	if err := rp.WriteTo(&b, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	cols := func(us []*ColumnUse) string {
		var s []string
		for _, u := range us {
			s = append(s, u.Column+"="+string(u.Decision))
		}
		return strings.Join(s, ",")
	}
	if len(got.Subjects) != 3 {
		t.Fatalf("subjects %+v", got.Subjects)
	}
	bob, alice, carol := got.Subjects[0], got.Subjects[1], got.Subjects[2]
	if bob.User != "bob" || bob.AuthFailures != 1 || bob.Statements != 0 {
		t.Errorf("bob %+v", bob)
	}
	if alice.Role != "analyst" || alice.Statements != 2 || cols(alice.Clear) != "public.customers.id=allowed" ||
		cols(alice.Pseudonymised) != "public.customers.email=tokenized" || len(alice.Refusals) != 1 ||
		alice.Refusals[0].Rule != "pseudonymised-compared" || alice.Refusals[0].Seq != 7 || alice.Clear[0].Rows != 7 {
		t.Errorf("alice %+v", alice)
	}
	if carol.Role != "support" || cols(carol.Clear) != "public.customers.email=allowed" ||
		cols(carol.Pseudonymised) != "crm.tickets.phone=masked" || cols(carol.Withheld) != "crm.tickets.diagnosis=nulled" {
		t.Errorf("carol %+v", carol)
	}
	if len(got.Detokens) != 1 || got.Detokens[0].Actor != "dpo" || got.Detokens[0].Tokens != 3 {
		t.Errorf("detokenizations %+v", got.Detokens)
	}
	// The same uses per table and per classification.
	readers := func(gs []*Group, name string) string {
		for _, g := range gs {
			if g.Name == name {
				var s []string
				for _, r := range g.Readers {
					s = append(s, r.User+":"+r.Column+"="+string(r.Decision))
				}
				return strings.Join(s, ",")
			}
		}
		return "(none)"
	}
	if r := readers(got.Tables, "crm.tickets"); r != "carol:crm.tickets.diagnosis=nulled,carol:crm.tickets.phone=masked" {
		t.Errorf("readers of crm.tickets: %s", r)
	}
	if r := readers(got.Tables, "public.customers"); r != "alice:public.customers.email=tokenized,carol:public.customers.email=allowed,alice:public.customers.id=allowed" {
		t.Errorf("readers of public.customers: %s", r)
	}
	if r := readers(got.Categories, "health"); r != "carol:crm.tickets.diagnosis=nulled" {
		t.Errorf("readers of health data: %s", r)
	}

	// a window that excludes alice's statements
	rp = NewReport(recs[7].Time, time.Time{})
	ReadRecords(context.Background(), []string{path}, func(r *Record) error { rp.Add(r); return nil })
	b.Reset()
	rp.WriteTo(&b, FormatTable)
	if out := b.String(); strings.Contains(out, "alice") || !strings.Contains(out, "role support, user carol") ||
		!strings.Contains(out, "crm.tickets.diagnosis") || !strings.Contains(out, "dpo") || !strings.Contains(out, "by category:") {
		t.Fatalf("windowed table:\n%s", out)
	}
	b.Reset()
	rp.WriteTo(&b, FormatCSV)
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 1+3+1 {
		t.Fatalf("csv %v %q", err, rows)
	}
}

// TestQueryClientFollowsConnections: a client filter takes a connection's
// statements by its conn_id, from its start on.
func TestQueryClientFollowsConnections(t *testing.T) {
	cfg := testConfig(t.TempDir())
	w := newTestWriter(t, cfg, seams{})
	other := connStart()
	other.Session.ConnID, other.ClientAddr = 2, netip.MustParseAddrPort("192.0.2.9:5000")
	mine, theirs := stmt(0), stmt(1) // conn_ids 1 and 2
	for _, ev := range []Event{connStart(), other, mine, theirs} {
		if err := w.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	f := Filter{Client: netip.MustParsePrefix("10.0.0.7/32"), Types: []Type{TypeStatement}}
	var got []uint64
	if err := ReadRecords(context.Background(), []string{cfg.Path}, func(r *Record) error {
		if f.Match(r) {
			got = append(got, r.Statement.Session.ConnID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !equalU(got, []uint64{1}) {
		t.Fatalf("statements of 10.0.0.7's connections: conn_ids %v, want [1]", got)
	}
}

// TestQueryShowsStatementText: statements are shown by their text; in
// JSON the statement_text record comes once, before its first statement.
func TestQueryShowsStatementText(t *testing.T) {
	const fp = "a0ead580058af585"
	text := &Record{Seq: 2, Type: TypeStatementText, StatementText: &StatementText{Fingerprint: fp, Text: "SELECT email FROM customers WHERE id = $1"}}
	s1 := stmt(1)
	s1.Fingerprint = fp
	st := &Record{Seq: 3, Type: TypeStatement, Statement: &s1}
	unknown := stmt(2)
	unknown.Fingerprint = "ffffffffffffffff"
	other := &Record{Seq: 4, Type: TypeStatement, Statement: &unknown}
	render := func(format string) string {
		var b bytes.Buffer
		rw, _ := NewRecordWriter(&b, format)
		for _, r := range []*Record{text, st, st, other} {
			if err := rw.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		rw.Flush()
		return b.String()
	}
	js := render(FormatJSON)
	if strings.Count(js, `"type":"statement_text"`) != 1 || strings.Index(js, `"statement_text"`) > strings.Index(js, `"type":"statement"`) || strings.Count(js, "\n") != 4 {
		t.Errorf("json:\n%s", js)
	}
	tab := render(FormatTable)
	if strings.Count(tab, "WHERE id = $1") != 2 || !strings.Contains(tab, "ffffffffffffffff") || strings.Contains(tab, "statement_text") {
		t.Errorf("table:\n%s", tab)
	}
	if c := render(FormatCSV); !strings.Contains(c, ",statement\n") || strings.Count(c, "WHERE id = $1") != 2 {
		t.Errorf("csv:\n%s", c)
	}
}

// TestReportUnanalysedStatements: a role that sees everything is not
// analysed, so the report cannot say which columns it received: it says
// so, per subject and in the per-table section, instead of listing none.
func TestReportUnanalysedStatements(t *testing.T) {
	rp := NewReport(time.Time{}, time.Time{})
	admin := Statement{Session: Session{ConnID: 1, User: "dba", Role: "admin", Database: "shop"}, Fingerprint: "a0ead580058af585",
		Kind: "select", Outcome: OutcomeOK, Rows: 3, Unanalysed: true}
	for range 2 {
		rp.Add(&Record{Seq: 1, Type: TypeStatement, Statement: &admin})
	}
	var b bytes.Buffer
	rp.WriteTo(&b, FormatTable)
	if out := b.String(); !strings.Contains(out, "not analysed: 2 statements") || !strings.Contains(out, "any:  role admin, user dba  2 statements not analysed") {
		t.Errorf("table:\n%s", out)
	}
	b.Reset()
	rp.WriteTo(&b, FormatJSON)
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got.Subjects) != 1 || got.Subjects[0].Unanalysed != 2 {
		t.Errorf("json %v: %s", err, b.String())
	}
	b.Reset()
	rp.WriteTo(&b, FormatCSV)
	if !strings.Contains(b.String(), "admin,dba,unanalysed,*") {
		t.Errorf("csv: %s", b.String())
	}
}

// TestTextOutputEscapesNames: a client-chosen name (an authentication
// failure's user) cannot add lines to the table or the report.
func TestTextOutputEscapesNames(t *testing.T) {
	evil := "x\nrole analyst, user bob: 1 statements\n  in clear:\n\x1b[2K"
	r := &Record{Seq: 1, Type: TypeAuthFailure, AuthFailure: &AuthFailure{User: evil, Database: "shop", AuthMethod: "scram-sha-256", Reason: "bad_password"}}
	var b bytes.Buffer
	rw, _ := NewRecordWriter(&b, FormatTable)
	rw.Write(r)
	rw.Flush()
	if strings.Count(b.String(), "\n") != 2 || strings.Contains(b.String(), "\x1b") {
		t.Errorf("table: %q", b.String())
	}
	rp := NewReport(time.Time{}, time.Time{})
	rp.Add(r)
	b.Reset()
	rp.WriteTo(&b, FormatTable)
	if strings.Contains(b.String(), "\nrole analyst, user bob") || strings.Contains(b.String(), "\x1b") {
		t.Errorf("report: %q", b.String())
	}
}
