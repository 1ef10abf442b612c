package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParseStartup checks that no first packet makes the parser panic and
// that what it accepts is well formed.
func FuzzParseStartup(f *testing.F) {
	f.Add(startupBody(ProtocolVersion30, "user", "alice", "database", "db", ""))
	f.Add(startupBody(CodeSSLRequest))
	f.Add(startupBody(CodeGSSENCRequest))
	f.Add(AppendCancelRequest(nil, 1, []byte{1, 2, 3, 4})[4:])
	f.Add(startupBody(3<<16|9999, "user", "a", "_pq_.grease", "x", ""))
	f.Add([]byte{0, 3, 0, 0, 'u', 's', 'e', 'r'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseStartup(body)
		if err != nil {
			return
		}
		if s.Kind == KindStartup {
			if u, _ := s.Get("user"); u == "" {
				t.Fatal("accepted a startup packet without user")
			}
			// Re-encoding what was accepted must parse to the same parameters.
			re := AppendStartupMessage(nil, s.Params)
			s2, err := ParseStartup(re[4:])
			if err != nil || len(s2.Params) != len(s.Params) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzReader checks that the framer never panics, never returns a frame
// longer than its limit, and that frames re-concatenate to the input.
func FuzzReader(f *testing.F) {
	f.Add(frame('Q', []byte("select 1\x00")))
	f.Add(append(frame('P', []byte("\x00select $1\x00\x00\x00")), frame('S', nil)...))
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'d', 0, 0, 0, 3})
	f.Add(binary.BigEndian.AppendUint32([]byte{'X'}, 4))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), FrontendLimits)
		var out []byte
		for {
			m, err := r.Next()
			if err != nil {
				break
			}
			if len(m.Body()) > FrontendLimits(m.Type) {
				t.Fatalf("frame over limit")
			}
			out = append(out, m.Raw...)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatal("frames do not reproduce the input")
		}
	})
}
