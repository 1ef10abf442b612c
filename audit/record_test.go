package audit

import (
	"context"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// documentedFields is the complete record schema (docs/audit.md): JSON
// path → Go kind. A new field must be added here and to the docs, and
// must not be able to hold a literal, parameter or result value.
var documentedFields = map[string]string{
	"seq": "uint64", "time": "time", "type": "string", "prev": "string", "hash": "string",

	"file_start.format": "string", "file_start.log": "string", "file_start.file": "string",
	"file_start.prev_file": "string", "file_start.reason": "string",

	"checkpoint.log": "string", "checkpoint.from": "uint64", "checkpoint.records": "uint64", "checkpoint.head": "string",
	"checkpoint.file": "string", "checkpoint.final": "bool", "checkpoint.signed_at": "time",
	"checkpoint.key_id": "string", "checkpoint.signature": "string",

	"statement_text.fingerprint": "string", "statement_text.text": "string",

	"connection_start.session.conn_id": "uint64", "connection_start.session.user": "string",
	"connection_start.session.role": "string", "connection_start.session.database": "string",
	"connection_start.client_addr": "addrport", "connection_start.application_name": "string",
	"connection_start.tls_version": "string", "connection_start.auth_method": "string",

	"auth_failure.user": "string", "auth_failure.database": "string", "auth_failure.client_addr": "addrport",
	"auth_failure.application_name": "string", "auth_failure.tls_version": "string",
	"auth_failure.auth_method": "string", "auth_failure.reason": "string",

	"connection_end.session.conn_id": "uint64", "connection_end.session.user": "string",
	"connection_end.session.role": "string", "connection_end.session.database": "string",
	"connection_end.duration_ns": "int64", "connection_end.statements": "uint64",
	"connection_end.rows": "uint64", "connection_end.bytes": "uint64",

	"statement.session.conn_id": "uint64", "statement.session.user": "string",
	"statement.session.role": "string", "statement.session.database": "string",
	"statement.fingerprint": "string", "statement.kind": "string", "statement.relations[]": "string",
	"statement.columns[].table": "string", "statement.columns[].column": "string",
	"statement.columns[].class": "string", "statement.columns[].decision": "string",
	"statement.columns[].transformer": "string", "statement.columns[].domain": "string",
	"statement.columns[].key_version": "uint32", "statement.columns[].referred": "bool",
	"statement.rows": "uint64", "statement.bytes": "uint64", "statement.duration_ns": "int64",
	"statement.outcome": "string", "statement.sqlstate": "string",
	"statement.refusal.rule": "string", "statement.refusal.table": "string", "statement.refusal.column": "string",
	"statement.unanalysed": "bool",

	"policy_load.file": "string", "policy_load.hash": "string", "policy_load.roles[]": "string",
	"policy_load.reload": "bool", "policy_load.outcome": "string",

	"key_rotation.actor": "string", "key_rotation.provider": "string", "key_rotation.previous": "uint32",
	"key_rotation.version": "uint32", "key_rotation.outcome": "string",

	"detokenize.actor": "string", "detokenize.domain": "string", "detokenize.tokens": "uint64",
	"detokenize.outcome": "string",

	"shadow.session.conn_id": "uint64", "shadow.session.user": "string", "shadow.session.role": "string",
	"shadow.session.database": "string", "shadow.shadow_role": "string", "shadow.policy_hash": "string",
	"shadow.fingerprint": "string", "shadow.kind": "string", "shadow.differences[].kind": "string",
	"shadow.differences[].table": "string", "shadow.differences[].column": "string",
	"shadow.differences[].enforced": "string", "shadow.differences[].candidate": "string",
	"shadow.differences[].rule": "string", "shadow.differences[].enforced_transform": "string",
	"shadow.differences[].candidate_transform": "string",
}

// schema walks t and returns JSON path → kind, failing on any type that
// could carry arbitrary data (interfaces, maps, byte slices, raw JSON).
func schema(t *testing.T, typ reflect.Type, prefix string, out map[string]string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ.PkgPath() == "time" && typ.Name() == "Time":
		out[prefix] = "time"
		return
	case typ.PkgPath() == "net/netip" && typ.Name() == "AddrPort":
		out[prefix] = "addrport"
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no json name", prefix, f.Name)
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			schema(t, f.Type, p, out)
		}
	case reflect.Slice:
		if typ.Elem().Kind() == reflect.Uint8 {
			t.Errorf("%s is a byte slice: it could hold a raw value", prefix)
		}
		schema(t, typ.Elem(), prefix+"[]", out)
	case reflect.Interface, reflect.Map, reflect.Array, reflect.Func, reflect.Chan:
		t.Errorf("%s is a %s: it could hold an arbitrary value", prefix, typ.Kind())
	default:
		out[prefix] = typ.Kind().String()
	}
}

func TestRecordSchemaIsTheDocumentedOne(t *testing.T) {
	got := map[string]string{}
	schema(t, reflect.TypeFor[Record](), "", got)
	for k, v := range got {
		if documentedFields[k] != v {
			t.Errorf("undocumented or changed field %s (%s)", k, v)
		}
	}
	for k := range documentedFields {
		if _, ok := got[k]; !ok {
			t.Errorf("documented field %s no longer exists", k)
		}
	}
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range documentedFields {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/audit.md does not describe `%s`", k)
		}
	}
}

func TestFingerprintStoredAsGiven(t *testing.T) {
	cfg := testConfig(t.TempDir())
	w := newTestWriter(t, cfg, seams{})
	fps := []string{
		"SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)",
		`SELECT "Weird ""name""", 'x' FROM "ünïcødé" -- comment`,
		"  leading and trailing spaces\t\n",
		"",
	}
	for _, fp := range fps {
		s := stmt(1)
		s.Fingerprint = fp
		if err := w.Write(context.Background(), &s); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var got []string
	ReadRecords(context.Background(), []string{cfg.Path}, func(r *Record) error {
		if r.Statement != nil {
			got = append(got, r.Statement.Fingerprint)
		}
		return nil
	})
	if !slices.Equal(got, fps) {
		t.Fatalf("fingerprints changed:\n%q\n%q", got, fps)
	}
}

func TestEventValidation(t *testing.T) {
	mod := func(f func(*Statement)) Event { s := stmt(1); f(&s); return s }
	tests := []struct {
		name string
		ev   Event
	}{
		{"value in kind", mod(func(s *Statement) { s.Kind = "select 'alice@example.com'" })},
		{"unknown decision", mod(func(s *Statement) { s.Columns[0].Decision = "clear" })},
		{"unknown outcome", mod(func(s *Statement) { s.Outcome = "fine" })},
		{"bad sqlstate", mod(func(s *Statement) { s.Outcome, s.SQLState = OutcomeError, "value 42" })},
		{"refused without rule", mod(func(s *Statement) { s.Outcome, s.SQLState = OutcomeRefused, "42501" })},
		{"value in rule", mod(func(s *Statement) {
			s.Outcome, s.SQLState, s.Refusal = OutcomeRefused, "42501", &Refusal{Rule: "email = 'bob@example.com'"}
		})},
		{"long name", mod(func(s *Statement) { s.Session.User = strings.Repeat("x", 300) })},
		{"column without table", mod(func(s *Statement) { s.Columns[0].Table = "" })},
		{"auth failure free text", AuthFailure{User: "bob", Reason: "password was hunter2"}},
		{"tls version", ConnectionStart{TLSVersion: "1.3"}},
		{"policy hash", PolicyLoad{Hash: "abc", Outcome: OutcomeOK}},
		{"detokenize outcome", Detokenize{Actor: "ops", Domain: "customers", Tokens: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ev.validate(); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("got %v, want ErrInvalidRecord", err)
			}
		})
	}
	for _, ev := range sampleEvents() {
		if err := ev.validate(); err != nil {
			t.Errorf("%T: %v", ev, err)
		}
	}
}

func TestFailureLogCarriesNoRecordContent(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	cfg := testConfig(t.TempDir())
	cfg.OnFailure = OnFailureContinue
	w, err := newWriter(context.Background(), cfg, testKey, zap.New(core), seams{now: new(clock).now})
	if err != nil {
		t.Fatal(err)
	}
	w.sink.(*os.File).Close()
	s := stmt(1)
	s.Fingerprint = "SELECT secret_fingerprint_marker"
	if err := w.Write(context.Background(), s); err != nil {
		t.Fatalf("continue mode returned %v", err)
	}
	w.Close()
	if logs.Len() == 0 {
		t.Fatal("the failure was not logged")
	}
	for _, e := range logs.All() {
		all := e.Message
		for k, v := range e.ContextMap() {
			all += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " "))
		}
		for _, secret := range []string{"secret_fingerprint_marker", "alice", "customers"} {
			if strings.Contains(all, secret) {
				t.Errorf("log entry carries record content %q: %s", secret, all)
			}
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return reflect.ValueOf(v).String()
}

func TestCodeChecks(t *testing.T) {
	codeRe := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	stateRe := regexp.MustCompile(`^[0-9A-Z]{5}$`)
	for _, s := range []string{"", "a", "Select", "copy_withheld", "a.b:c-d_e", "_x", "-x", "a b", "ü", "a/b",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "42501", "4250", "425011", "4250a", "XX000"} {
		if isCode(s) != codeRe.MatchString(s) {
			t.Errorf("isCode(%q) = %v", s, isCode(s))
		}
		if IsSQLState(s) != stateRe.MatchString(s) {
			t.Errorf("IsSQLState(%q) = %v", s, IsSQLState(s))
		}
	}
}
