package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Request codes of the first packet, which has no type byte.
const (
	CodeSSLRequest     = 80877103
	CodeGSSENCRequest  = 80877104
	CodeCancelRequest  = 80877102
	ProtocolVersion30  = 3 << 16
	MaxStartupPacket   = 10000
	minStartupPacket   = 8
	maxStartupParamLen = 4096
)

// StartupKind says what a first packet asks for.
type StartupKind int

// The kinds of first packet.
const (
	KindStartup StartupKind = iota
	KindSSLRequest
	KindGSSENCRequest
	KindCancel
)

// ErrBadStartup reports a malformed first packet.
var ErrBadStartup = errors.New("invalid startup packet")

// Param is one startup parameter; order is kept as the client sent it.
type Param struct{ Key, Value string }

// Startup is a parsed first packet.
type Startup struct {
	Kind         StartupKind
	Major, Minor uint16
	Params       []Param
	// CancelPID and CancelSecret are set for KindCancel.
	CancelPID    uint32
	CancelSecret []byte
}

// Get returns the value of a startup parameter.
func (s *Startup) Get(key string) (string, bool) {
	for _, p := range s.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// ReadStartupPacket reads one first packet from r without reading ahead, so
// that bytes sent after an SSLRequest are never consumed as plaintext.
func ReadStartupPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated length", ErrBadStartup)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < minStartupPacket || n > MaxStartupPacket {
		return nil, fmt.Errorf("%w: length %d outside %d..%d", ErrBadStartup, n, minStartupPacket, MaxStartupPacket)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated packet (%d of %d bytes)", ErrBadStartup, 4, n)
		}
		return nil, err
	}
	return body, nil
}

// ParseStartup parses a first packet body (without its length word).
func ParseStartup(body []byte) (*Startup, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: too short", ErrBadStartup)
	}
	code := binary.BigEndian.Uint32(body[:4])
	rest := body[4:]
	switch code {
	case CodeSSLRequest:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: SSLRequest with trailing bytes", ErrBadStartup)
		}
		return &Startup{Kind: KindSSLRequest}, nil
	case CodeGSSENCRequest:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: GSSENCRequest with trailing bytes", ErrBadStartup)
		}
		return &Startup{Kind: KindGSSENCRequest}, nil
	case CodeCancelRequest:
		// 3.0 keys are 4 bytes; 3.2 allows up to 256.
		if len(rest) < 8 || len(rest) > 4+256 {
			return nil, fmt.Errorf("%w: CancelRequest of %d bytes", ErrBadStartup, len(rest)+4)
		}
		return &Startup{
			Kind:         KindCancel,
			CancelPID:    binary.BigEndian.Uint32(rest[:4]),
			CancelSecret: bytes.Clone(rest[4:]),
		}, nil
	}
	s := &Startup{Kind: KindStartup, Major: uint16(code >> 16), Minor: uint16(code)}
	if s.Major != 3 {
		return nil, fmt.Errorf("%w: unsupported frontend protocol %d.%d", ErrBadStartup, s.Major, s.Minor)
	}
	seen := map[string]bool{}
	for {
		key, r, err := cstring(rest)
		if err != nil {
			return nil, err
		}
		rest = r
		if key == "" {
			break
		}
		val, r, err := cstring(rest)
		if err != nil {
			return nil, err
		}
		rest = r
		if seen[key] {
			return nil, fmt.Errorf("%w: duplicate parameter %q", ErrBadStartup, key)
		}
		if len(key) > maxStartupParamLen || len(val) > maxStartupParamLen {
			return nil, fmt.Errorf("%w: parameter too long", ErrBadStartup)
		}
		seen[key] = true
		s.Params = append(s.Params, Param{Key: key, Value: val})
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: bytes after the parameter list", ErrBadStartup)
	}
	if v, _ := s.Get("user"); v == "" {
		return nil, fmt.Errorf("%w: no PostgreSQL user name specified in startup packet", ErrBadStartup)
	}
	return s, nil
}

func cstring(b []byte) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: unterminated string", ErrBadStartup)
	}
	return string(b[:i]), b[i+1:], nil
}

// UnsupportedOptions returns the protocol options (_pq_.*) in s, which
// pgpseudo does not implement and must name in NegotiateProtocolVersion.
func (s *Startup) UnsupportedOptions() []string {
	var out []string
	for _, p := range s.Params {
		if strings.HasPrefix(p.Key, "_pq_.") {
			out = append(out, p.Key)
		}
	}
	return out
}

// AppendStartupMessage appends a protocol 3.0 StartupMessage with params.
func AppendStartupMessage(dst []byte, params []Param) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, ProtocolVersion30)
	for _, p := range params {
		dst = append(dst, p.Key...)
		dst = append(dst, 0)
		dst = append(dst, p.Value...)
		dst = append(dst, 0)
	}
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// AppendRequest appends a bare request packet such as SSLRequest.
func AppendRequest(dst []byte, code uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 8)
	return binary.BigEndian.AppendUint32(dst, code)
}

// AppendCancelRequest appends a CancelRequest for pid and secret.
func AppendCancelRequest(dst []byte, pid uint32, secret []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+len(secret)))
	dst = binary.BigEndian.AppendUint32(dst, CodeCancelRequest)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	return append(dst, secret...)
}
