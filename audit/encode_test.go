package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// FuzzAppendRecord: appendRecord writes what json.Marshal writes, for
// statement records with any strings and numbers, and for other records.
func FuzzAppendRecord(f *testing.F) {
	f.Add(uint64(7), int64(1764680000123456000), "prev", "alice", "bi_analyst", "kunden", "4d06d865ff6c2e6c", "select",
		"public.customers", "full_name", "tokenized", "42501", "column_blocked", uint64(3), int64(12345), uint32(2), true, "")
	f.Add(uint64(0), int64(-9223372036854775807), "", "<a&b>\"\\\n\t\x01\x7f", "\u2028\u2029", "\xff\xfe", "", "", "", "", "", "", "", uint64(0), int64(0), uint32(0), false, "hash")
	f.Fuzz(func(t *testing.T, seq uint64, ns int64, prev, user, role, db, fp, kind, rel, col, dec, state, rule string,
		rows uint64, dur int64, kv uint32, flag bool, hash string) {
		st := &Statement{Session: Session{ConnID: seq ^ 0x5555, User: user, Role: role, Database: db}, Fingerprint: fp, Kind: kind,
			Rows: rows, Bytes: rows / 3, Duration: time.Duration(dur), Outcome: Outcome(dec), SQLState: state, Unanalysed: flag}
		if rel != "" {
			st.Relations = []string{rel, col}
		} else if flag {
			st.Relations = []string{}
		}
		if col != "" {
			st.Columns = []ColumnDecision{{Table: rel, Column: col, Class: kind, Decision: Decision(dec), Transformer: rule,
				Domain: state, KeyVersion: kv, Referred: flag}, {}}
		} else if !flag {
			st.Columns = []ColumnDecision{}
		}
		if rule != "" {
			st.Refusal = &Refusal{Rule: rule, Table: rel, Column: col}
		}
		recs := []*Record{
			{Seq: seq, Time: time.Unix(0, ns).UTC(), Type: TypeStatement, Prev: prev, Statement: st, Hash: hash},
			{Seq: seq, Time: time.Unix(0, ns).UTC(), Type: Type(kind), Prev: prev, StatementText: &StatementText{Fingerprint: fp, Text: user}},
		}
		for _, r := range recs {
			want, wantErr := json.Marshal(r)
			got, err := appendRecord([]byte("x"), r)
			if (err == nil) != (wantErr == nil) || err == nil && !bytes.Equal(got[1:], want) {
				t.Fatalf("appendRecord = %s, %v\njson.Marshal = %s, %v", got[1:], err, want, wantErr)
			}
		}
	})
}

// TestAppendRecordCoversEveryField: with every field of a statement
// record set, and with any other payload set beside it, appendRecord
// still writes what json.Marshal writes, so a field added to these types
// cannot be left out of the hand encoding unnoticed.
func TestAppendRecordCoversEveryField(t *testing.T) {
	var st Statement
	fill(reflect.ValueOf(&st).Elem(), 1)
	base := Record{Seq: 9, Time: time.Date(2026, 12, 2, 10, 11, 12, 345678000, time.UTC), Type: TypeStatement, Prev: "p", Statement: &st, Hash: "h"}
	check := func(name string, r *Record) {
		t.Helper()
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := appendRecord(nil, r); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: appendRecord = %s, %v\njson.Marshal = %s", name, got, err, want)
		}
	}
	check("statement", &base)
	rt := reflect.TypeOf(base)
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Type.Kind() != reflect.Pointer || f.Name == "Statement" {
			continue
		}
		r := base
		v := reflect.New(f.Type.Elem())
		fill(v.Elem(), 2)
		reflect.ValueOf(&r).Elem().Field(i).Set(v)
		check("statement and "+f.Name, &r)
	}
}

// fill sets every field of v to a value that is not zero.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v<" + strconv.Itoa(n) + ">")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n) + 40)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n) + 40)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), n+1)
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n+1)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n+i)
			}
		}
	}
}
