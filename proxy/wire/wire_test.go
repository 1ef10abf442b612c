package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func frame(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func TestReaderLimits(t *testing.T) {
	huge := []byte{'Q', 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"query", frame('Q', []byte("select 1\x00")), nil},
		{"sync", frame('S', nil), nil},
		{"4GiB length", huge, ErrMessageTooLarge},
		{"oversized sync", append([]byte{'S'}, binary.BigEndian.AppendUint32(nil, SmallMessageLimit+5)...), ErrMessageTooLarge},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, ErrBadLength},
		{"unknown type", frame('Z', nil), ErrUnknownType},
		{"truncated body", frame('Q', []byte("select 1\x00"))[:8], io.ErrUnexpectedEOF},
		{"truncated header", []byte{'Q', 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in), FrontendLimits)
			m, err := r.Next()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if !bytes.Equal(m.Raw, tt.in) {
					t.Fatalf("Raw = %q, want %q", m.Raw, tt.in)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReaderPending(t *testing.T) {
	in := append(frame('S', nil), frame('Q', []byte("x\x00"))[:6]...)
	r := NewReader(bytes.NewReader(in), FrontendLimits)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Pending() {
		t.Fatal("Pending with only a partial message buffered")
	}
	r = NewReader(bytes.NewReader(append(frame('S', nil), frame('S', nil)...)), FrontendLimits)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if !r.Pending() {
		t.Fatal("not Pending with a whole message buffered")
	}
}

// chunked returns its input a few bytes at a time, as a network might.
type chunked struct {
	in []byte
	n  int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// TestReaderHeldRun: the messages read while Pending reports true are
// views that stay valid together (a relay rewrites such a run at once),
// whatever the sizes of the reads and the frames.
func TestReaderHeldRun(t *testing.T) {
	for _, chunk := range []int{7, 1000, 3 << 10, 64 << 10} {
		var in []byte
		var want [][]byte
		for i := range 5000 {
			f := frame('D', bytes.Repeat([]byte{byte(i)}, i%300))
			in = append(in, f...)
			want = append(want, f)
		}
		r := NewReader(&chunked{in: in, n: chunk}, BackendLimits)
		got := 0
		for got < len(want) {
			m, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			run := []Msg{m}
			for {
				if typ, ok := r.PendingType(); !ok || typ != 'D' {
					break
				}
				if m, err = r.Next(); err != nil {
					t.Fatal(err)
				}
				run = append(run, m)
			}
			for _, m := range run {
				if !bytes.Equal(m.Raw, want[got]) {
					t.Fatalf("chunks of %d: message %d of a held run changed", chunk, got)
				}
				got++
			}
		}
	}
}

func startupBody(code uint32, rest ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, code)
	for _, s := range rest {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func TestParseStartup(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		kind    StartupKind
		wantErr bool
	}{
		{"ssl", startupBody(CodeSSLRequest), KindSSLRequest, false},
		{"gssenc", startupBody(CodeGSSENCRequest), KindGSSENCRequest, false},
		{"cancel", append(binary.BigEndian.AppendUint32(nil, CodeCancelRequest), 0, 0, 0, 1, 1, 2, 3, 4), KindCancel, false},
		{"cancel short", append(binary.BigEndian.AppendUint32(nil, CodeCancelRequest), 0, 0, 0, 1), 0, true},
		{"startup", startupBody(ProtocolVersion30, "user", "alice", "database", "db", ""), KindStartup, false},
		{"startup 3.2", startupBody(3<<16|2, "user", "alice", ""), KindStartup, false},
		{"startup greased 3.9999", startupBody(3<<16|9999, "user", "alice", "_pq_.x", "1", ""), KindStartup, false},
		{"no user", startupBody(ProtocolVersion30, "database", "db", ""), 0, true},
		{"empty user", startupBody(ProtocolVersion30, "user", "", ""), 0, true},
		{"duplicate", startupBody(ProtocolVersion30, "user", "a", "user", "b", ""), 0, true},
		{"unterminated", append(binary.BigEndian.AppendUint32(nil, ProtocolVersion30), "user\x00alice"...), 0, true},
		{"trailing", append(startupBody(ProtocolVersion30, "user", "a", ""), 'x'), 0, true},
		{"protocol 2", startupBody(2<<16, "user", "a", ""), 0, true},
		{"ssl trailing", append(startupBody(CodeSSLRequest), 1), 0, true},
		{"empty", nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStartup(tt.body)
			if tt.wantErr {
				if !errors.Is(err, ErrBadStartup) {
					t.Fatalf("err = %v, want ErrBadStartup", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v", s.Kind, tt.kind)
			}
		})
	}
}

func TestStartupRoundTrip(t *testing.T) {
	params := []Param{{"user", "alice"}, {"database", "db"}, {"application_name", "ü"}}
	pkt := AppendStartupMessage(nil, params)
	body, err := ReadStartupPacket(bytes.NewReader(pkt))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseStartup(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Params) != 3 || s.Params[2] != params[2] {
		t.Fatalf("params = %v", s.Params)
	}
	c, err := ParseStartup(AppendCancelRequest(nil, 7, []byte{1, 2, 3, 4})[4:])
	if err != nil || c.CancelPID != 7 || !bytes.Equal(c.CancelSecret, []byte{1, 2, 3, 4}) {
		t.Fatalf("cancel = %+v, %v", c, err)
	}
}

func TestReadStartupPacketBounds(t *testing.T) {
	for _, in := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},  // 4 GiB
		{0, 0, 0, 4},              // below minimum
		{0, 0, 0, 20, 0, 3, 0, 0}, // truncated
		{0, 0},                    // truncated length
		binary.BigEndian.AppendUint32(nil, MaxStartupPacket+1),
	} {
		if _, err := ReadStartupPacket(bytes.NewReader(in)); !errors.Is(err, ErrBadStartup) {
			t.Errorf("ReadStartupPacket(%x) = %v, want ErrBadStartup", in, err)
		}
	}
}

// TestReset: a reset Reader drops what it had buffered and reads the new
// source; a reset Writer drops what it had not written.
func TestReset(t *testing.T) {
	q := func(s string) []byte { return frame('Q', append([]byte(s), 0)) }
	r := NewReader(bytes.NewReader(append(q("old 1"), q("old 2")...)), FrontendLimits)
	if m, err := r.Next(); err != nil || string(m.Body()) != "old 1\x00" {
		t.Fatalf("Next = %q, %v", m.Raw, err)
	}
	r.Reset(bytes.NewReader(q("new")))
	if m, err := r.Next(); err != nil || string(m.Body()) != "new\x00" {
		t.Fatalf("after Reset: Next = %q, %v", m.Raw, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the new source: %v", err)
	}
	var first, second bytes.Buffer
	w := NewWriter(&first)
	w.Write(q("unsent"))
	w.Reset(&second)
	w.Write(q("sent"))
	if err := w.Flush(); err != nil || first.Len() != 0 || !bytes.Equal(second.Bytes(), q("sent")) {
		t.Fatalf("after Reset: first %q, second %q, %v", first.Bytes(), second.Bytes(), err)
	}
}
