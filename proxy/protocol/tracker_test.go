package protocol

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The tests drive the tracker with the byte frames a client and a server
// exchange, in the order they would cross the proxy.

type encoder interface{ Encode([]byte) ([]byte, error) }

func enc(t *testing.T, m encoder) (byte, []byte) {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[0], b[5:]
}

// fixture runs one conversation.
type fixture struct {
	t  *testing.T
	tr *Tracker
}

func newFixture(t *testing.T) *fixture { return &fixture{t: t, tr: New()} }

// send forwards a client message and returns what the tracker recorded.
func (f *fixture) send(m encoder) Sent {
	f.t.Helper()
	return f.sendFx(m, 0)
}

func (f *fixture) sendFx(m encoder, e Effects) Sent {
	f.t.Helper()
	typ, body := enc(f.t, m)
	s, err := f.tr.Send(typ, body, false, nil, e)
	if err != nil {
		f.t.Fatalf("send %q: %v", typ, err)
	}
	return s
}

// recv delivers a server message.
func (f *fixture) recv(m encoder) Reply {
	f.t.Helper()
	typ, body := enc(f.t, m)
	r, err := f.tr.Receive(typ, body)
	if err != nil {
		f.t.Fatalf("receive %q: %v", typ, err)
	}
	return r
}

func (f *fixture) recvErr(m encoder) error {
	f.t.Helper()
	typ, body := enc(f.t, m)
	_, err := f.tr.Receive(typ, body)
	return err
}

func rowDesc(names ...string) *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{}
	for i, n := range names {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(n), TableOID: 1000, TableAttributeNumber: uint16(i + 1), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1})
	}
	return rd
}

func fieldNames(fs []pgproto3.FieldDescription) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Name))
	}
	return out
}

func sameNames(got []pgproto3.FieldDescription, want ...string) bool {
	g := fieldNames(got)
	if len(g) != len(want) {
		return false
	}
	for i := range g {
		if g[i] != want[i] {
			return false
		}
	}
	return true
}

var (
	parseComplete = &pgproto3.ParseComplete{}
	bindComplete  = &pgproto3.BindComplete{}
	closeComplete = &pgproto3.CloseComplete{}
	noData        = &pgproto3.NoData{}
	paramDesc     = &pgproto3.ParameterDescription{}
	rfqIdle       = &pgproto3.ReadyForQuery{TxStatus: 'I'}
	rfqTx         = &pgproto3.ReadyForQuery{TxStatus: 'T'}
	row           = &pgproto3.DataRow{Values: [][]byte{[]byte("x")}}
	sync_         = &pgproto3.Sync{}
)

func complete(tag string) *pgproto3.CommandComplete {
	return &pgproto3.CommandComplete{CommandTag: []byte(tag)}
}

func errResp() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42P01", Message: "boom"}
}

// TestDescribeAnswersTheStatementAsSent is the pipeline of the security
// review: Parse(unnamed, A), Describe(S), Parse(unnamed, B), Bind,
// Execute, Sync. A's description must describe A; B's rows must be planned
// from a description of B.
func TestDescribeAnswersTheStatementAsSent(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT a FROM t"})
	f.send(&pgproto3.Describe{ObjectType: 'S'})
	f.send(&pgproto3.Parse{Query: "SELECT secret FROM t"})
	f.send(&pgproto3.Bind{})
	ex := f.send(&pgproto3.Execute{})
	if ex.Before == nil {
		t.Fatal("Execute of an undescribed portal: no Describe(P) injected")
	}
	f.send(sync_)

	f.recv(parseComplete)
	f.recv(paramDesc)
	rep := f.recv(rowDesc("a"))
	if rep.Stmt == nil || rep.Stmt.SQL != "SELECT a FROM t" || !sameNames(rep.Stmt.Fields, "a") {
		t.Fatalf("Describe(S) reply described %+v", rep.Stmt)
	}
	f.recv(parseComplete)
	f.recv(bindComplete)
	if rep := f.recv(rowDesc("secret")); !rep.Req.Injected {
		t.Fatal("the injected Describe's reply is not marked injected")
	}
	rep = f.recv(row)
	if rep.Result == nil || !rep.Result.Known || !sameNames(rep.Result.Fields, "secret") {
		t.Fatalf("B's rows planned from %v", fieldNames(rep.Result.Fields))
	}
	if rep.Result.Portal == nil || rep.Result.Portal.Stmt.SQL != "SELECT secret FROM t" {
		t.Fatalf("B's rows tied to portal %+v", rep.Result.Portal)
	}
	f.recv(complete("SELECT 1"))
	if rep := f.recv(rfqIdle); !rep.Done || rep.Req.Type != 'S' {
		t.Fatalf("ReadyForQuery answered %+v", rep.Req)
	}
	if f.tr.Pending() != 0 {
		t.Fatalf("%d requests left", f.tr.Pending())
	}
}

// TestFailedParseKeepsTheOldStatement: re-parsing an existing named
// statement fails on the server ("already exists"), which keeps the old
// one; a later Bind uses the old one, whatever the client sent.
func TestFailedParseKeepsTheOldStatement(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Name: "s", Query: "SELECT a FROM t"})
	f.send(&pgproto3.Describe{ObjectType: 'S', Name: "s"})
	f.send(sync_)
	f.send(&pgproto3.Parse{Name: "s", Query: "SELECT secret FROM t"})
	f.send(sync_)
	f.send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s"})
	ex := f.send(&pgproto3.Execute{Portal: "p"})
	f.send(sync_)
	// The second Parse made the projection forget the description, so the
	// tracker asks the server what p returns.
	if ex.Before == nil {
		t.Fatal("no Describe(P) injected after a re-Parse of the statement")
	}

	f.recv(parseComplete)
	f.recv(paramDesc)
	f.recv(rowDesc("a"))
	f.recv(rfqIdle)
	rep := f.recv(errResp())
	if rep.Req == nil || rep.Req.Type != 'P' || !rep.Req.Failed {
		t.Fatalf("error answered %+v", rep.Req)
	}
	f.recv(rfqIdle)
	if st := f.tr.Statement("s"); st == nil || st.SQL != "SELECT a FROM t" {
		t.Fatalf("after the failed Parse, s is %+v", st)
	}
	f.recv(bindComplete)
	f.recv(rowDesc("a"))
	rep = f.recv(row)
	if !sameNames(rep.Result.Fields, "a") || rep.Result.Portal.Stmt.SQL != "SELECT a FROM t" {
		t.Fatalf("rows tied to %v / %q", fieldNames(rep.Result.Fields), rep.Result.Portal.Stmt.SQL)
	}
	f.recv(complete("SELECT 1"))
	f.recv(rfqIdle)
}

// TestDescribedStatementNeedsNoInjection: with Describe(S) known, Bind and
// Execute use the statement's description and Bind's formats.
func TestDescribedStatementNeedsNoInjection(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Name: "s", Query: "SELECT a FROM t"})
	f.send(&pgproto3.Describe{ObjectType: 'S', Name: "s"})
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(paramDesc)
	f.recv(rowDesc("a"))
	f.recv(rfqIdle)
	for i := 0; i < 3; i++ {
		f.send(&pgproto3.Bind{PreparedStatement: "s", ResultFormatCodes: []int16{1}})
		if ex := f.send(&pgproto3.Execute{}); ex.Before != nil {
			t.Fatalf("execution %d: Describe injected for a described statement", i)
		}
		f.send(sync_)
		f.recv(bindComplete)
		rep := f.recv(row)
		if !sameNames(rep.Result.Fields, "a") || len(rep.Result.Formats) != 1 || rep.Result.Formats[0] != 1 {
			t.Fatalf("execution %d: result %+v", i, rep.Result)
		}
		f.recv(complete("SELECT 1"))
		f.recv(rfqIdle)
	}
}

// TestErrorSkipsToSync: after an error the server answers nothing but the
// batch's Sync, simple queries included.
func TestErrorSkipsToSync(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT nope"})
	f.send(&pgproto3.Bind{})
	f.send(&pgproto3.Execute{})
	if f.tr.Skipping() {
		t.Fatal("skipping before any error")
	}
	rep := f.recv(errResp())
	if len(rep.Skipped) != 3 { // the injected Describe, Bind... and Execute
		t.Fatalf("skipped %d requests", len(rep.Skipped))
	}
	if !f.tr.Skipping() {
		t.Fatal("the server skips the rest of the batch; the tracker does not know")
	}
	// Sent after the error and before Sync: the server ignores them.
	f.send(&pgproto3.Query{String: "SELECT 1"})
	f.send(&pgproto3.Parse{Query: "SELECT 2"})
	f.send(sync_)
	if f.tr.Skipping() {
		t.Fatal("messages after the Sync are not skipped")
	}
	f.send(&pgproto3.Query{String: "SELECT 3"})
	rep = f.recv(rfqIdle)
	if rep.Req.Type != 'S' || len(rep.Skipped) != 2 {
		t.Fatalf("ReadyForQuery answered %q, skipped %d", rep.Req.Type, len(rep.Skipped))
	}
	f.recv(rowDesc("x"))
	f.recv(row)
	f.recv(complete("SELECT 1"))
	if rep := f.recv(rfqIdle); rep.Req.Type != 'Q' {
		t.Fatalf("ReadyForQuery answered %q", rep.Req.Type)
	}
}

// TestErrorAtSync: an implicit transaction that fails to commit reports the
// error before the Sync's ReadyForQuery.
func TestErrorAtSync(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT 1"})
	f.send(sync_)
	f.recv(parseComplete)
	if rep := f.recv(errResp()); rep.Req.Type != 'S' {
		t.Fatalf("error answered %q", rep.Req.Type)
	}
	f.recv(rfqIdle)
	if f.tr.Pending() != 0 {
		t.Fatal("requests left")
	}
}

// TestSimpleQueryStatements: each statement of a simple query is its own
// result; rows without a description are unknown.
func TestSimpleQueryStatements(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Query{String: "SET x = 1; SELECT a FROM t; SELECT b, c FROM t"})
	rep := f.recv(complete("SET"))
	if rep.Tag != "SET" || rep.Result.Index != 0 {
		t.Fatalf("first statement: %+v", rep)
	}
	f.recv(rowDesc("a"))
	if rep := f.recv(row); rep.Result.Index != 1 || !sameNames(rep.Result.Fields, "a") {
		t.Fatalf("second statement rows: %+v", rep.Result)
	}
	f.recv(complete("SELECT 1"))
	f.recv(rowDesc("b", "c"))
	if rep := f.recv(row); rep.Result.Index != 2 || !sameNames(rep.Result.Fields, "b", "c") {
		t.Fatalf("third statement rows: %+v", rep.Result)
	}
	f.recv(complete("SELECT 1"))
	f.recv(rfqIdle)

	f.send(&pgproto3.Query{String: "SELECT 1"})
	if rep := f.recv(row); rep.Result.Known {
		t.Fatal("rows without a RowDescription count as described")
	}
}

// TestCopyInIgnoresPipelinedSync: a client that pipelines Sync after an
// Execute that turns out to be COPY FROM STDIN; the server ignores that
// Sync, and the one after CopyDone counts.
func TestCopyInIgnoresPipelinedSync(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "COPY t FROM STDIN"})
	f.send(&pgproto3.Bind{})
	f.send(&pgproto3.Execute{})
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(bindComplete)
	f.recv(noData) // the injected Describe(P)
	f.recv(&pgproto3.CopyInResponse{})
	f.send(&pgproto3.CopyData{Data: []byte("1\n")})
	f.send(sync_) // ignored by the server during COPY IN
	f.send(&pgproto3.CopyDone{})
	f.send(sync_)
	f.recv(complete("COPY 1"))
	f.recv(rfqIdle)
	if f.tr.Pending() != 0 {
		t.Fatalf("%d requests left", f.tr.Pending())
	}
}

// TestSQLDeallocateAndPrepare: SQL PREPARE after DEALLOCATE reuses a
// protocol statement's name; its old description must not be used.
func TestSQLDeallocateAndPrepare(t *testing.T) {
	for _, withEffects := range []bool{true, false} {
		f := newFixture(t)
		f.send(&pgproto3.Parse{Name: "s", Query: "SELECT a FROM t"})
		f.send(&pgproto3.Describe{ObjectType: 'S', Name: "s"})
		f.send(sync_)
		f.recv(parseComplete)
		f.recv(paramDesc)
		f.recv(rowDesc("a"))
		f.recv(rfqIdle)
		var fx Effects
		if withEffects {
			fx = EffectStatements
		}
		f.sendFx(&pgproto3.Query{String: "DEALLOCATE s; PREPARE s AS SELECT secret FROM t"}, fx)
		f.send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s"})
		ex := f.send(&pgproto3.Execute{Portal: "p"})
		f.send(sync_)
		f.recv(complete("DEALLOCATE"))
		f.recv(complete("PREPARE"))
		f.recv(rfqIdle)
		f.recv(bindComplete)
		if withEffects {
			if ex.Before == nil {
				t.Fatal("no Describe(P) injected after DEALLOCATE/PREPARE")
			}
			f.recv(rowDesc("secret"))
			if rep := f.recv(row); !sameNames(rep.Result.Fields, "secret") {
				t.Fatalf("rows planned from %v", fieldNames(rep.Result.Fields))
			}
		} else if rep := f.recv(row); rep.Result.Known {
			// The proxy did not say the query touches statements: the
			// command tags still do, and the rows stay unknown (the
			// session ends) instead of using the old description.
			t.Fatalf("rows planned from the deallocated statement: %v", fieldNames(rep.Result.Fields))
		}
	}
}

// TestSQLCursorReusesPortalName: CLOSE and DECLARE through SQL can replace
// a portal the client bound.
func TestSQLCursorReusesPortalName(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Query{String: "BEGIN"})
	f.recv(complete("BEGIN"))
	f.recv(rfqTx)
	f.send(&pgproto3.Parse{Name: "s", Query: "SELECT a FROM t"})
	f.send(&pgproto3.Describe{ObjectType: 'S', Name: "s"})
	f.send(&pgproto3.Bind{DestinationPortal: "c", PreparedStatement: "s"})
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(paramDesc)
	f.recv(rowDesc("a"))
	f.recv(bindComplete)
	f.recv(rfqTx)
	f.send(&pgproto3.Query{String: "CLOSE c"})
	f.send(&pgproto3.Query{String: "DECLARE c CURSOR FOR SELECT secret FROM t"})
	f.recv(complete("CLOSE CURSOR"))
	f.recv(rfqTx)
	f.recv(complete("DECLARE CURSOR"))
	f.recv(rfqTx)
	if ex := f.send(&pgproto3.Execute{Portal: "c"}); ex.Before == nil {
		t.Fatal("Execute of a cursor declared over a bound portal's name: no Describe injected")
	}
	f.send(sync_)
	f.recv(rowDesc("secret"))
	if rep := f.recv(row); !sameNames(rep.Result.Fields, "secret") {
		t.Fatalf("the cursor's rows were planned from %v", fieldNames(rep.Result.Fields))
	}
}

// TestPortalsEndWithTheTransaction: a portal name reused after the
// transaction ended is described again.
func TestPortalsEndWithTheTransaction(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Name: "s", Query: "SELECT a FROM t"})
	f.send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s"})
	f.send(&pgproto3.Describe{ObjectType: 'P', Name: "p"})
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(bindComplete)
	f.recv(rowDesc("a"))
	f.recv(rfqIdle)
	if ex := f.send(&pgproto3.Execute{Portal: "p"}); ex.Before == nil {
		t.Fatal("Execute of a portal that ended with its transaction: no Describe injected")
	}
}

// TestUnnamedDestroyedBySimpleQuery: a simple query drops the unnamed
// statement, so a later Bind of "" is not tied to the old one.
func TestUnnamedDestroyedBySimpleQuery(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT a FROM t"})
	f.send(&pgproto3.Describe{ObjectType: 'S'})
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(paramDesc)
	f.recv(rowDesc("a"))
	f.recv(rfqIdle)
	f.send(&pgproto3.Query{String: "SELECT 1"})
	f.recv(rowDesc("?column?"))
	f.recv(row)
	f.recv(complete("SELECT 1"))
	f.recv(rfqIdle)
	if st := f.tr.Statement(""); st != nil {
		t.Fatalf("unnamed statement survived a simple query: %q", st.SQL)
	}
}

// TestRepliesThatAnswerNothing end the session.
func TestRepliesThatAnswerNothing(t *testing.T) {
	for _, m := range []encoder{parseComplete, bindComplete, closeComplete, rowDesc("a"), row, complete("SELECT 1"), rfqIdle, &pgproto3.PortalSuspended{}} {
		f := newFixture(t)
		if err := f.recvErr(m); !errors.Is(err, ErrDesync) {
			t.Errorf("%T with nothing pending: %v", m, err)
		}
	}
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT 1"})
	if err := f.recvErr(bindComplete); !errors.Is(err, ErrDesync) {
		t.Errorf("BindComplete answering a Parse: %v", err)
	}
	f = newFixture(t)
	f.send(&pgproto3.Query{String: "SELECT 1"})
	if err := f.recvErr(&pgproto3.PortalSuspended{}); !errors.Is(err, ErrDesync) {
		t.Errorf("PortalSuspended answering a simple query: %v", err)
	}
}

// TestInjectedRequests: the proxy's own requests are marked, and an error
// in them skips the rest of their batch like any other.
func TestInjectedRequests(t *testing.T) {
	f := newFixture(t)
	typ, body := enc(t, &pgproto3.Parse{Name: "pgpseudo_1", Query: "EXPLAIN SELECT 1"})
	if _, err := f.tr.Send(typ, body, true, "check", 0); err != nil {
		t.Fatal(err)
	}
	typ, body = enc(t, &pgproto3.Bind{DestinationPortal: "pgpseudo_1", PreparedStatement: "pgpseudo_1"})
	if _, err := f.tr.Send(typ, body, true, "check", 0); err != nil {
		t.Fatal(err)
	}
	rep := f.recv(parseComplete)
	if !rep.Req.Injected || rep.Req.Meta != "check" {
		t.Fatalf("reply to an injected Parse: %+v", rep.Req)
	}
	rep = f.recv(errResp())
	if !rep.Req.Injected || !f.tr.Skipping() {
		t.Fatalf("error of an injected Bind: %+v, skipping %v", rep.Req, f.tr.Skipping())
	}
}

func TestMalformedClientMessages(t *testing.T) {
	tr := New()
	for _, m := range []struct {
		typ  byte
		body []byte
	}{
		{'P', []byte("noterminator")},
		{'P', []byte("s\x00SELECT 1\x00\x00\x02\x00\x00")},
		{'B', []byte{0}},
		{'D', []byte{'X', 0}},
		{'C', nil},
		{'E', []byte("p")},
		{'Z', nil},
	} {
		if _, err := tr.Send(m.typ, m.body, false, nil, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q %q: %v", m.typ, m.body, err)
		}
	}
}

// TestInjectedWhileSkipping: the proxy's own message sent after an error
// of the client's batch and before its Sync would be skipped by the
// server and answered by nothing; the tracker says so instead of
// recording it (a check waiting for its reply would wait for the client's
// Sync, which comes after the message the proxy holds back).
func TestInjectedWhileSkipping(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Query: "SELECT nope"})
	f.recv(errResp())
	typ, body := enc(t, &pgproto3.Parse{Name: "pgpseudo_check_0", Query: "EXPLAIN SELECT 1"})
	s, err := f.tr.Send(typ, body, true, nil, 0)
	if err != nil || !s.Skipped || s.Req != nil {
		t.Fatalf("injected while skipping: %+v, %v", s, err)
	}
	if n := f.tr.Pending(); n != 0 {
		t.Fatalf("%d requests pending", n)
	}
	f.send(sync_)
	// After the client's Sync the server reads again: injected messages
	// are recorded.
	s, err = f.tr.Send(typ, body, true, nil, 0)
	if err != nil || s.Skipped || s.Req == nil {
		t.Fatalf("injected after the Sync: %+v, %v", s, err)
	}
}

// TestStatementsCounted: Statements counts confirmed statements and
// Parses in flight; a Close frees a name, a failed Parse adds none.
func TestStatementsCounted(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"s1", "s2"} {
		f.send(&pgproto3.Parse{Name: n, Query: "SELECT 1"})
	}
	if known, n := f.tr.Statements("s2"); !known || n != 2 {
		t.Fatalf("in flight: %v %d", known, n)
	}
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(parseComplete)
	f.recv(rfqIdle)
	f.send(&pgproto3.Parse{Name: "s3", Query: "SELEC"})
	f.send(sync_)
	f.recv(errResp())
	f.recv(rfqIdle)
	if known, n := f.tr.Statements("s3"); known || n != 2 {
		t.Fatalf("after a failed Parse: %v %d", known, n)
	}
	f.send(&pgproto3.Close{ObjectType: 'S', Name: "s1"})
	f.send(sync_)
	f.recv(closeComplete)
	f.recv(rfqIdle)
	if known, n := f.tr.Statements("s1"); known || n != 1 {
		t.Fatalf("after a Close: %v %d", known, n)
	}
	f.send(&pgproto3.Parse{Query: "SELECT 1"})
	if known, n := f.tr.Statements(""); !known || n != 1 {
		t.Fatalf("the unnamed statement is counted: %v %d", known, n)
	}
}

// TestCopyMessagesOnlyInsideCopy: COPY data or CopyDone the server did not
// announce with a CopyOutResponse, and rows or a second announcement
// inside a COPY, answer nothing the client asked: the tracker desyncs.
func TestCopyMessagesOnlyInsideCopy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []encoder
	}{
		{"copy data without copy out", []encoder{&pgproto3.CopyData{Data: []byte("x\n")}}},
		{"copy done without copy out", []encoder{&pgproto3.CopyDone{}}},
		{"copy data after rows", []encoder{rowDesc("c"), row, &pgproto3.CopyData{Data: []byte("x\n")}}},
		{"row inside copy", []encoder{&pgproto3.CopyOutResponse{ColumnFormatCodes: []uint16{0}}, row}},
		{"second copy out", []encoder{&pgproto3.CopyOutResponse{ColumnFormatCodes: []uint16{0}}, &pgproto3.CopyOutResponse{ColumnFormatCodes: []uint16{0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.send(&pgproto3.Query{String: "SELECT 1"})
			var err error
			for _, r := range tc.replies {
				if err = f.recvErr(r); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrDesync) {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	f := newFixture(t) // the legitimate sequence still works
	f.send(&pgproto3.Query{String: "COPY t TO STDOUT"})
	for _, r := range []encoder{&pgproto3.CopyOutResponse{ColumnFormatCodes: []uint16{0}}, &pgproto3.CopyData{Data: []byte("x\n")}, &pgproto3.CopyDone{}, complete("COPY 1"), rfqIdle} {
		f.recv(r)
	}
}

// TestOwed: the server owes replies to Syncs, Queries and flushed
// requests, not to requests the client has neither synced nor flushed.
func TestOwed(t *testing.T) {
	f := newFixture(t)
	if f.tr.Owed() {
		t.Fatal("owed with nothing sent")
	}
	f.send(&pgproto3.Parse{Name: "a", Query: "SELECT 1"})
	if f.tr.Owed() {
		t.Fatal("an unflushed Parse is owed")
	}
	f.send(&pgproto3.Flush{})
	if !f.tr.Owed() {
		t.Fatal("a flushed Parse is not owed")
	}
	f.recv(parseComplete)
	if f.tr.Owed() {
		t.Fatal("owed after the flushed Parse was answered")
	}
	f.send(&pgproto3.Flush{}) // a lone Flush owes nothing
	if f.tr.Owed() {
		t.Fatal("a lone Flush is owed")
	}
	f.send(&pgproto3.Bind{DestinationPortal: "", PreparedStatement: "a"})
	f.send(sync_)
	if !f.tr.Owed() {
		t.Fatal("a Sync is not owed")
	}
	f.recv(bindComplete)
	f.recv(rfqIdle)
	if f.tr.Owed() {
		t.Fatal("owed after ReadyForQuery")
	}
	f.send(&pgproto3.Query{String: "SELECT 1"})
	if !f.tr.Owed() {
		t.Fatal("a Query is not owed")
	}
}

// TestHeld: statements and portals are counted when they are sent, not
// only once confirmed, so a pipeline cannot outrun the limits.
func TestHeld(t *testing.T) {
	f := newFixture(t)
	f.send(&pgproto3.Parse{Name: "a", Query: "SELECT 12345"})
	f.send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "a"})
	if portals, bytes := f.tr.Held(func(any) int64 { return 0 }); portals != 1 || bytes != int64(len("SELECT 12345")) {
		t.Fatalf("in flight: %d portals, %d bytes", portals, bytes)
	}
	f.send(sync_)
	f.recv(parseComplete)
	f.recv(bindComplete)
	f.recv(rfqTx)
	f.send(&pgproto3.Describe{ObjectType: 'S', Name: "a"})
	f.send(sync_)
	f.recv(paramDesc)
	f.recv(rowDesc("col"))
	f.recv(rfqTx)
	if portals, bytes := f.tr.Held(nil); portals != 1 || bytes <= int64(len("SELECT 12345")) {
		t.Fatalf("confirmed and described: %d portals, %d bytes", portals, bytes)
	}
}

// TestBetweenBatches: a session is at rest only after a ReadyForQuery
// answered everything the client sent, outside a transaction block; a
// flushed batch without its Sync is still open.
func TestBetweenBatches(t *testing.T) {
	f := newFixture(t)
	if !f.tr.BetweenBatches() {
		t.Fatal("a new session is not at rest")
	}
	f.send(&pgproto3.Parse{Name: "", Query: "DECLARE c CURSOR WITH HOLD FOR SELECT 1"})
	f.send(&pgproto3.Flush{})
	f.recv(parseComplete)
	if f.tr.BetweenBatches() {
		t.Fatal("at rest with a flushed, unsynced batch")
	}
	f.send(sync_)
	f.recv(rfqIdle)
	if !f.tr.BetweenBatches() {
		t.Fatal("not at rest after ReadyForQuery")
	}
	f.send(&pgproto3.Query{String: "BEGIN"})
	if f.tr.BetweenBatches() {
		t.Fatal("at rest with a Query in flight")
	}
	f.recv(&pgproto3.CommandComplete{CommandTag: []byte("BEGIN")})
	f.recv(&pgproto3.ReadyForQuery{TxStatus: 'T'})
	if f.tr.BetweenBatches() {
		t.Fatal("at rest in a transaction block")
	}
}
