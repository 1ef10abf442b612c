package audit

import (
	"bytes"
	"encoding/json"
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
