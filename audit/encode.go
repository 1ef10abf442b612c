package audit

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r's JSON encoding to dst: byte for byte what
// json.Marshal gives (FuzzAppendRecord), but without reflection for the
// record written once per statement, where encoding/json was a third of
// the audit log's cost. Other records go through json.Marshal.
func appendRecord(dst []byte, r *Record) ([]byte, error) {
	st := r.Statement
	if st == nil || r.FileStart != nil || r.Checkpoint != nil || r.ConnectionStart != nil || r.AuthFailure != nil ||
		r.ConnectionEnd != nil || r.PolicyLoad != nil || r.KeyRotation != nil || r.Detokenize != nil ||
		r.StatementText != nil || r.Shadow != nil || r.Time.Year() < 0 || r.Time.Year() > 9999 {
		b, err := json.Marshal(r)
		return append(dst, b...), err
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = r.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":`...)
	dst = appendJSONString(dst, string(r.Type))
	dst = append(dst, `,"prev":`...)
	dst = appendJSONString(dst, r.Prev)
	dst = append(dst, `,"statement":{"session":{"conn_id":`...)
	dst = strconv.AppendUint(dst, st.Session.ConnID, 10)
	dst = append(dst, `,"user":`...)
	dst = appendJSONString(dst, st.Session.User)
	dst = append(dst, `,"role":`...)
	dst = appendJSONString(dst, st.Session.Role)
	dst = append(dst, `,"database":`...)
	dst = appendJSONString(dst, st.Session.Database)
	dst = append(dst, `},"fingerprint":`...)
	dst = appendJSONString(dst, st.Fingerprint)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, st.Kind)
	dst = append(dst, `,"relations":`...)
	if st.Relations == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, rel := range st.Relations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, rel)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"columns":`...)
	if st.Columns == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range st.Columns {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendColumnDecision(dst, &st.Columns[i])
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"rows":`...)
	dst = strconv.AppendUint(dst, st.Rows, 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendUint(dst, st.Bytes, 10)
	dst = append(dst, `,"duration_ns":`...)
	dst = strconv.AppendInt(dst, int64(st.Duration), 10)
	dst = append(dst, `,"outcome":`...)
	dst = appendJSONString(dst, string(st.Outcome))
	if st.SQLState != "" {
		dst = append(dst, `,"sqlstate":`...)
		dst = appendJSONString(dst, st.SQLState)
	}
	if rf := st.Refusal; rf != nil {
		dst = append(dst, `,"refusal":{"rule":`...)
		dst = appendJSONString(dst, rf.Rule)
		if rf.Table != "" {
			dst = append(dst, `,"table":`...)
			dst = appendJSONString(dst, rf.Table)
		}
		if rf.Column != "" {
			dst = append(dst, `,"column":`...)
			dst = appendJSONString(dst, rf.Column)
		}
		dst = append(dst, '}')
	}
	if st.Unanalysed {
		dst = append(dst, `,"unanalysed":true`...)
	}
	dst = append(dst, '}')
	if r.Hash != "" {
		dst = append(dst, `,"hash":`...)
		dst = appendJSONString(dst, r.Hash)
	}
	return append(dst, '}'), nil
}

func appendColumnDecision(dst []byte, c *ColumnDecision) []byte {
	dst = append(dst, `{"table":`...)
	dst = appendJSONString(dst, c.Table)
	dst = append(dst, `,"column":`...)
	dst = appendJSONString(dst, c.Column)
	dst = append(dst, `,"class":`...)
	dst = appendJSONString(dst, c.Class)
	dst = append(dst, `,"decision":`...)
	dst = appendJSONString(dst, string(c.Decision))
	if c.Transformer != "" {
		dst = append(dst, `,"transformer":`...)
		dst = appendJSONString(dst, c.Transformer)
	}
	if c.Domain != "" {
		dst = append(dst, `,"domain":`...)
		dst = appendJSONString(dst, c.Domain)
	}
	if c.KeyVersion != 0 {
		dst = append(dst, `,"key_version":`...)
		dst = strconv.AppendUint(dst, uint64(c.KeyVersion), 10)
	}
	if c.Referred {
		dst = append(dst, `,"referred":true`...)
	}
	return append(dst, '}')
}

// appendJSONString appends s as encoding/json writes a string: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid
// UTF-8 as U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
