package integration

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/pgpseudo/pgpseudo/configs/sample"
)

// The attack corpus (testdata/attacks.yaml) is what an attacker with a
// restricted role and nothing but SQL and wire messages tries, grouped by
// the class of bypass it aims at. Every entry runs against the real
// server through the proxy, and every byte the client receives — rows,
// COPY data, errors, notices, parameter status — is searched for the
// sample's personal and special-category values in clear, upper and
// lower case, reversed, hex, base64, bytea escape and as MD5/SHA-256
// digests.

// attack is one entry of the corpus.
type attack struct {
	Class string `yaml:"class"`
	// Note says what the entry tries.
	Note string `yaml:"note"`
	// User is the attacker (default bi_jane, role bi_analyst).
	User string `yaml:"user"`
	// Admin statements run as the superuser before the attack, Cleanup
	// after it (both in the sample database).
	Admin   []string `yaml:"admin"`
	Cleanup []string `yaml:"cleanup"`
	// Params are startup parameters the attacker sends (options,
	// client_encoding, …); Password replaces the right one.
	Params   map[string]string `yaml:"params"`
	Password string            `yaml:"password"`
	// Setup is sent first, as simple queries.
	Setup []string `yaml:"setup"`
	// SQL runs in the simple and the extended protocol (Protocol narrows
	// it to one).
	SQL      string `yaml:"sql"`
	Protocol string `yaml:"protocol"`
	// Wire is a sequence of frontend messages (see parseWire).
	Wire string `yaml:"wire"`
	// Database is where the attack runs (default the sample database).
	Database string `yaml:"database"`
	// Prime statements run through the proxy first, in both protocols,
	// as PrimeUser (default User) in PrimeDatabase (default Database):
	// they fill the proxy's caches with what is true there and then.
	Prime         []string `yaml:"prime"`
	PrimeUser     string   `yaml:"prime_user"`
	PrimeDatabase string   `yaml:"prime_database"`
	// Between statements run through the proxy after Prime, as alice
	// (policy role everything), in Database: DDL the proxy sees.
	Between []string `yaml:"between"`
	// Want is what must happen besides no leak: refused (a 42501 naming
	// role and rule, and Column when set), login-refused, error (any
	// ErrorResponse), withheld (at least one error, and every error the
	// generic 22000 that stands for the server's error while it read
	// rows), ok (no error), unordered (ok, and the tokens of the
	// first column, or of COPY's first field, do not come back in the
	// order of their clear values), or "" (anything).
	Want   string `yaml:"want"`
	Column string `yaml:"column"`
	// Strict counts values the attacker wrote itself: for guesses a
	// result could confirm (COPY … NULL 'guess').
	Strict bool `yaml:"strict"`
}

func loadAttacks(t *testing.T) []attack {
	t.Helper()
	data, err := os.ReadFile("testdata/attacks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var as []attack
	if err := yaml.Unmarshal(data, &as); err != nil {
		t.Fatal(err)
	}
	return as
}

// secrets are the sample's values that a restricted role must never
// receive, with every encoding an attacker could ask the server for.
type secrets struct {
	values []string
}

func sampleSecrets(customers []sample.Customer) *secrets {
	s := &secrets{}
	s.values = append(s.values, sample.Diagnoses()...)
	for _, c := range customers {
		s.values = append(s.values, c.PersonalValues()...)
	}
	return s
}

// variants are the forms of v a leak check looks for.
func variants(v string) []string {
	b := []byte(v)
	rev := []rune(v)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	m := md5.Sum(b)
	h := sha256.Sum256(b)
	var esc strings.Builder // bytea escape output
	for _, c := range b {
		if c >= 0x80 || c < 0x20 || c == '\\' {
			fmt.Fprintf(&esc, `\%03o`, c)
		} else {
			esc.WriteByte(c)
		}
	}
	return []string{v, strings.ToUpper(v), strings.ToLower(v), string(rev),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
		hex.EncodeToString(m[:]), hex.EncodeToString(h[:]), esc.String()}
}

// check fails the test when got holds a secret in any form. Values the
// attacker wrote into its own statements are not counted (an echo of the
// attacker's input reveals nothing).
func (s *secrets) check(t *testing.T, what, got, input string) {
	t.Helper()
	for _, v := range s.values {
		if strings.Contains(input, v) || strings.Contains(strings.ToLower(input), strings.ToLower(v)) {
			continue
		}
		for _, form := range variants(v) {
			if utf8.RuneCountInString(form) >= 4 && strings.Contains(got, form) {
				t.Errorf("%s: secret %q leaked as %q", what, v, form)
				return
			}
		}
	}
}

// wireSession is a raw protocol session through the proxy: authenticated
// by pgconn, then driven message by message.
type wireSession struct {
	conn net.Conn
	fe   *pgproto3.Frontend
	// received is everything the server side sent, re-encoded.
	received strings.Builder
	// first holds the first column of every row (DataRow or COPY line) of
	// the last exchange.
	first  []string
	errors []*pgproto3.ErrorResponse
	params map[string]string
}

func dialWire(t *testing.T, dsn string) (*wireSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	ws := &wireSession{conn: hc.Conn, fe: hc.Frontend, params: hc.ParameterStatuses}
	for k, v := range hc.ParameterStatuses {
		ws.received.WriteString(k + "=" + v + "\n")
	}
	t.Cleanup(func() { ws.conn.Close() })
	return ws, nil
}

// endMarker ends every exchange: once its row arrives, everything the
// attack caused has been received.
const endMarker = "pgpseudo-attack-end"

// exchange sends frames, then a Sync and a marker query, and collects every
// message until the marker's ReadyForQuery: the marker's row, or as many
// ReadyForQuery as simple queries and Syncs were sent (in a failed
// transaction the marker fails too). A session that ends or hangs is
// reported; the proxy may end a session it cannot keep safe.
func (ws *wireSession) exchange(frames []byte) (ended bool, err error) {
	frames = append(frames, msgFrame('S')...)
	frames = append(frames, msgFrame('Q', []byte("SELECT '"+endMarker+"'"), []byte{0})...)
	want := 0
	for b := frames; len(b) >= 5; {
		if b[0] == 'Q' || b[0] == 'S' {
			want++
		}
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		b = b[min(1+n, len(b)):]
	}
	ready := 0
	ws.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer ws.conn.SetDeadline(time.Time{})
	if _, err := ws.conn.Write(frames); err != nil {
		return true, nil
	}
	seenMarker := false
	ws.first = ws.first[:0]
	for {
		m, err := ws.fe.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, fmt.Errorf("no reply within 30 s (the session hangs): %w", err)
			}
			return true, nil
		}
		raw, _ := m.Encode(nil)
		ws.received.Write(raw)
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			e := *m
			ws.errors = append(ws.errors, &e)
			if e.Severity == "FATAL" {
				return true, nil
			}
		case *pgproto3.NoticeResponse:
			ws.received.WriteString(m.Message + m.Detail)
		case *pgproto3.DataRow:
			if len(m.Values) == 1 && string(m.Values[0]) == endMarker {
				seenMarker = true
			} else if len(m.Values) > 0 {
				ws.first = append(ws.first, string(m.Values[0]))
			}
		case *pgproto3.CopyData:
			line := strings.TrimRight(string(m.Data), "\n")
			if i := strings.IndexAny(line, "\t,|;"); i >= 0 {
				line = line[:i]
			}
			ws.first = append(ws.first, strings.Trim(line, `"`))
		case *pgproto3.ReadyForQuery:
			if ready++; seenMarker || ready == want {
				return false, nil
			}
		}
	}
}

// msgFrame builds a frontend message from its body parts.
func msgFrame(typ byte, parts ...[]byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	for _, p := range parts {
		b = append(b, p...)
	}
	n := len(b) - 1
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// simpleFrames and extendedFrames run one SQL text.
func simpleFrames(sql string) []byte { return msgFrame('Q', []byte(sql), []byte{0}) }

func extendedFrames(sql string) []byte {
	var b []byte
	b = append(b, msgFrame('P', []byte{0}, []byte(sql), []byte{0, 0, 0})...)
	b = append(b, msgFrame('B', []byte{0, 0, 0, 0, 0, 0, 0, 0})...)
	b = append(b, msgFrame('D', []byte{'P', 0})...)
	b = append(b, msgFrame('E', []byte{0, 0, 0, 0, 0})...)
	return append(b, msgFrame('S')...)
}

// parseWire reads a message sequence, one message per line:
//
//	P name "sql" [type-oid …]   Parse
//	B portal stmt [format …]    Bind (no parameters; result formats)
//	D S|P name                  Describe
//	E portal [max-rows]         Execute
//	C S|P name                  Close
//	S | H                       Sync | Flush
//	Q "sql"                     Query
//	F oid                       FunctionCall without arguments
//
// Names and SQL are Go-quoted strings or bare words; "" is the unnamed one.
func parseWire(src string) ([]byte, error) {
	var out []byte
	for n, line := range strings.Split(src, "\n") {
		f, err := wireFields(strings.TrimSpace(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		cs := func(s string) []byte { return append([]byte(s), 0) }
		switch f[0] {
		case "P":
			var types []byte
			for _, o := range f[3:] {
				v, err := strconv.ParseUint(o, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", n+1, err)
				}
				types = append(types, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
			}
			cnt := len(f) - 3
			if cnt < 0 {
				cnt = 0
			}
			out = append(out, msgFrame('P', cs(arg(1)), cs(arg(2)), []byte{byte(cnt >> 8), byte(cnt)}, types)...)
		case "B":
			body := append(cs(arg(1)), cs(arg(2))...)
			body = append(body, 0, 0, 0, 0) // no parameter formats, no parameters
			formats := f[min(3, len(f)):]
			body = append(body, byte(len(formats)>>8), byte(len(formats)))
			for _, fm := range formats {
				v, _ := strconv.Atoi(fm)
				body = append(body, byte(v>>8), byte(v))
			}
			out = append(out, msgFrame('B', body)...)
		case "D", "C":
			out = append(out, msgFrame(f[0][0], []byte(arg(1)), cs(arg(2)))...)
		case "E":
			max, _ := strconv.Atoi(arg(2))
			out = append(out, msgFrame('E', cs(arg(1)), []byte{byte(max >> 24), byte(max >> 16), byte(max >> 8), byte(max)})...)
		case "S", "H":
			out = append(out, msgFrame(f[0][0])...)
		case "Q":
			out = append(out, msgFrame('Q', cs(arg(1)))...)
		case "F":
			oid, _ := strconv.Atoi(arg(1))
			out = append(out, msgFrame('F', []byte{byte(oid >> 24), byte(oid >> 16), byte(oid >> 8), byte(oid)}, []byte{0, 0, 0, 0, 0, 0})...)
		default:
			return nil, fmt.Errorf("line %d: unknown message %q", n+1, f[0])
		}
	}
	return out, nil
}

// wireFields splits a line into bare words and Go-quoted strings.
func wireFields(s string) ([]string, error) {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, err
			}
			v, _ := strconv.Unquote(q)
			out = append(out, v)
			s = s[len(q):]
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out, nil
}

// TestAttackCorpus runs every attack of testdata/attacks.yaml, one subtest
// per class.
func TestAttackCorpus(t *testing.T) {
	customers := kunden(t)
	sec := sampleSecrets(customers)
	attacks := loadAttacks(t)
	byClass := map[string][]attack{}
	var classes []string
	for _, a := range attacks {
		if byClass[a.Class] == nil {
			classes = append(classes, a.Class)
		}
		byClass[a.Class] = append(byClass[a.Class], a)
	}
	// A second database for the caches class: the same names mean
	// harmless things there.
	if err := shared.stack.PG.Exec(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+dbAttackB, "CREATE DATABASE "+dbAttackB); err != nil {
		t.Fatal(err)
	}
	if err := shared.stack.PG.Exec(context.Background(), dbAttackB,
		"CREATE TABLE x (v text, w text)", "INSERT INTO x SELECT 'clean-'||i, 'also-clean' FROM generate_series(1, 5) i",
		"CREATE TABLE orders (order_id int, customer_id int, status text)", "INSERT INTO orders VALUES (1, 1, 'open')",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	// The audit log is on: no attack may stop it for everyone. alice's
	// role sees everything: she runs the DDL the caches class needs.
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := proxyConfig()
	cfg.Policy, cfg.Keys = everythingPolicy(t), proxyKeys()
	cfg.Audit = auditConfig(t, auditFile)
	p := startProxy(t, cfg)
	// The digest ordering's key is as secret as any value: with it, the
	// order of grouped rows tells clear values apart.
	sec.values = append(sec.values, p.srv.DigestKey())
	for _, role := range []string{"bi_analyst", "developer", "care_team", "everything"} {
		sec.values = append(sec.values, p.srv.DigestKeyFor(role))
	}
	ranks := clearRanks(t, p)
	runs := 0
	for _, class := range classes {
		t.Run(class, func(t *testing.T) {
			for i, a := range byClass[class] {
				runs += runAttack(t, p, sec, ranks, fmt.Sprintf("%s #%d", class, i+1), a)
			}
		})
	}
	// The proxy still serves everyone after the whole corpus.
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM customers").Scan(&n); err != nil || n != sampleSize {
		t.Fatalf("after the attack corpus: %d, %v", n, err)
	}
	for _, r := range readAudit(t, auditFile) {
		if b, err := json.Marshal(r); err == nil {
			sec.check(t, "audit log", string(b), "")
		}
	}
	t.Logf("attack corpus: %d entries, %d statement and wire-sequence runs", len(attacks), runs)
}

// dbAttackB is the caches class's second database.
const dbAttackB = "kunden_attack_b"

// rank is a token's column and the position of its clear value in the
// server's own ORDER BY of that column.
type rank struct {
	column string
	pos    int
}

// clearRanks maps the tokens of the sample's unique pseudonymised columns
// to the rank of their clear values: the same rows in the same
// (unclassified) order through the proxy and directly give token and
// clear value, the server's ORDER BY gives the rank.
func clearRanks(t *testing.T, p *runningProxy) map[string]rank {
	t.Helper()
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	out := map[string]rank{}
	for _, col := range []string{"email", "full_name", "phone", "street", "customer_id"} {
		q := "SELECT " + col + " FROM customers ORDER BY created_at, postal_code, city, newsletter"
		tokens, clear := rawFirstColumn(t, c, q, pgx.QueryExecModeSimpleProtocol), rawFirstColumn(t, direct, q, pgx.QueryExecModeSimpleProtocol)
		byValue := rawFirstColumn(t, direct, "SELECT "+col+" FROM customers ORDER BY "+col, pgx.QueryExecModeSimpleProtocol)
		pos := map[string]int{}
		for i, v := range byValue {
			pos[v] = i
		}
		if len(tokens) != len(clear) || len(tokens) < 20 {
			t.Fatalf("%s: %d tokens for %d values", col, len(tokens), len(clear))
		}
		for i, tok := range tokens {
			if tok != "" {
				out[tok] = rank{col, pos[clear[i]]}
			}
		}
	}
	return out
}

// checkUnordered fails unless the first column's tokens come back in an
// order unrelated to their clear values: neither sorted nor mostly
// ascending or descending (a result sorted within groups is mostly
// sorted).
func checkUnordered(t *testing.T, label string, first []string, ranks map[string]rank) {
	t.Helper()
	var pos []int
	col := ""
	for _, tok := range first {
		r, ok := ranks[tok]
		if !ok || (col != "" && r.column != col) {
			continue
		}
		col = r.column
		pos = append(pos, r.pos)
	}
	if len(pos) < 20 {
		t.Errorf("%s: only %d rows of known tokens came back (of %d)", label, len(pos), len(first))
		return
	}
	up := 0
	for i := 1; i < len(pos); i++ {
		if pos[i] > pos[i-1] {
			up++
		}
	}
	if f := float64(up) / float64(len(pos)-1); f > 0.8 || f < 0.2 {
		t.Errorf("%s: %.0f%% of adjacent rows are in ascending clear-value order of %s", label, 100*f, col)
	}
}

// runAttack runs one entry and returns how many exchanges it made.
func runAttack(t *testing.T, p *runningProxy, sec *secrets, ranks map[string]rank, name string, a attack) int {
	t.Helper()
	ctx := context.Background()
	logsBefore, failedBefore := p.logs.Len(), t.Failed()
	defer func() {
		if t.Failed() && !failedBefore {
			// What the proxy said about the failing entry (never data: the
			// whole-run leak check covers process logs).
			for _, e := range p.logs.All()[logsBefore:] {
				if e.Level >= zapcore.WarnLevel {
					t.Logf("%s: proxy log: %s %v", name, e.Message, e.ContextMap())
				}
			}
		}
	}()
	adminDB := a.Database
	if adminDB == "" {
		adminDB = dbKunden
	}
	// DDL run directly on the database: the proxy is told at once, as an
	// operator does after a migration (otherwise after catalog_ttl).
	if len(a.Admin) > 0 {
		if err := shared.stack.PG.Exec(ctx, adminDB, a.Admin...); err != nil {
			t.Fatalf("%s: admin: %v", name, err)
		}
		p.srv.CatalogChanged(adminDB)
	}
	cleanup := func() {
		if len(a.Cleanup) > 0 {
			if err := shared.stack.PG.Exec(ctx, adminDB, a.Cleanup...); err != nil {
				t.Errorf("%s: cleanup: %v", name, err)
			}
			p.srv.CatalogChanged(adminDB)
		}
	}
	user := a.User
	if user == "" {
		user = userBI
	}
	var extra []string
	for k, v := range a.Params {
		extra = append(extra, k+"='"+strings.ReplaceAll(v, "'", `\'`)+"'")
	}
	db := a.Database
	if db == "" {
		db = dbKunden
	}
	input := a.SQL + a.Wire + strings.Join(a.Setup, ";")
	if len(a.Prime) > 0 {
		pu, pdb := a.PrimeUser, a.PrimeDatabase
		if pu == "" {
			pu = user
		}
		if pdb == "" {
			pdb = db
		}
		ws, err := dialWire(t, p.dsn(pu, samplePass, pdb))
		if err != nil {
			cleanup()
			t.Fatalf("%s: prime: %v", name, err)
		}
		for _, q := range a.Prime {
			for _, f := range [][]byte{simpleFrames(q), extendedFrames(q)} {
				if _, err := ws.exchange(f); err != nil {
					t.Errorf("%s: prime %q: %v", name, q, err)
				}
			}
		}
		ws.conn.Close()
	}
	if len(a.Between) > 0 {
		owner, err := pgconn.Connect(ctx, p.dsn(userAlice, passAlice, db))
		if err != nil {
			cleanup()
			t.Fatalf("%s: between: %v", name, err)
		}
		for _, q := range a.Between {
			if _, err := owner.Exec(ctx, q).ReadAll(); err != nil {
				t.Errorf("%s: between %q: %v", name, q, err)
			}
		}
		owner.Close(ctx)
	}
	type run struct {
		label  string
		frames []byte
	}
	var runs []run
	switch {
	case a.Wire != "":
		frames, err := parseWire(a.Wire)
		if err != nil {
			cleanup()
			t.Fatalf("%s: %v", name, err)
		}
		runs = append(runs, run{"wire", frames})
	case a.Protocol == "simple":
		runs = append(runs, run{"simple", simpleFrames(a.SQL)})
	case a.Protocol == "extended":
		runs = append(runs, run{"extended", extendedFrames(a.SQL)})
	default:
		runs = append(runs, run{"simple", simpleFrames(a.SQL)}, run{"extended", extendedFrames(a.SQL)})
	}
	for _, r := range runs {
		label := name + " (" + r.label + "): " + a.Note
		pass := samplePass
		if a.Password != "" {
			pass = a.Password
		}
		ws, err := dialWire(t, p.dsn(user, pass, db, extra...))
		if a.Want == "login-failed" {
			if err == nil {
				t.Errorf("%s: login succeeded", label)
			}
			continue
		}
		if a.Want == "login-refused" {
			var pe *pgconn.PgError
			if err == nil || !errors.As(err, &pe) || pe.Code != "42501" {
				t.Errorf("%s: login not refused with 42501: %v", label, err)
			} else {
				sec.check(t, label, pe.Error(), input)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: connect: %v", label, err)
			continue
		}
		for _, s := range a.Setup {
			if _, err := ws.exchange(simpleFrames(s)); err != nil {
				t.Errorf("%s: setup %q: %v", label, s, err)
			}
		}
		ws.errors = nil // only the attack's own errors count
		ended, err := ws.exchange(r.frames)
		if err != nil {
			t.Errorf("%s: %v", label, err)
		}
		check := input
		if a.Strict {
			check = ""
		}
		sec.check(t, label, ws.received.String(), check)
		checkWant(t, label, a, ws, ended)
		if a.Want == "unordered" {
			checkUnordered(t, label, ws.first, ranks)
		}
	}
	cleanup()
	// Whatever the attack did, everyone else is still served.
	other, err := pgconn.Connect(ctx, p.dsn(userDev, samplePass, dbKunden))
	if err != nil {
		t.Fatalf("%s: another user cannot connect afterwards: %v", name, err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, "SELECT count(*) FROM orders").ReadAll(); err != nil {
		t.Fatalf("%s: another user's statement fails afterwards: %v", name, err)
	}
	return len(runs)
}

// checkWant checks the outcome an entry expects.
func checkWant(t *testing.T, label string, a attack, ws *wireSession, ended bool) {
	t.Helper()
	var policyErr *pgproto3.ErrorResponse
	for _, e := range ws.errors {
		if e.Code == "42501" && strings.HasPrefix(e.Message, "pgpseudo") {
			policyErr = e
			break
		}
	}
	switch a.Want {
	case "refused":
		if policyErr == nil {
			t.Errorf("%s: not refused (errors: %v, session ended: %v)", label, errorTexts(ws.errors), ended)
			return
		}
		msg := policyErr.Message
		if f := os.Getenv("PGPSEUDO_ATTACK_REFUSALS"); f != "" {
			if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
				fmt.Fprintf(fh, "%s\t%s\n", label, msg)
				fh.Close()
			}
		}
		if !strings.Contains(msg, "role ") || !strings.Contains(msg, "(rule: ") {
			t.Errorf("%s: refusal does not name role and rule: %s", label, msg)
		}
		if a.Column != "" && !strings.Contains(msg, a.Column) {
			t.Errorf("%s: refusal does not name %s: %s", label, a.Column, msg)
		}
	case "error":
		if len(ws.errors) == 0 {
			t.Errorf("%s: no error", label)
		}
	case "withheld":
		if len(ws.errors) == 0 {
			t.Errorf("%s: no error", label)
		}
		for _, e := range ws.errors {
			if e.Code != "22000" || !strings.HasPrefix(e.Message, "pgpseudo: the statement failed") {
				t.Errorf("%s: the server's error reached the client: %s %s", label, e.Code, e.Message)
			}
		}
	case "ok", "unordered":
		if len(ws.errors) > 0 || ended {
			t.Errorf("%s: want success, got %v (ended %v)", label, errorTexts(ws.errors), ended)
		}
	}
}

func errorTexts(es []*pgproto3.ErrorResponse) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Code+" "+e.Message)
	}
	return out
}
