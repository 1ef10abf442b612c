package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
)

// A line is the JSON encoding of a Record without its mac, with
// `,"mac":"<64 hex>"}` in place of the closing brace, and a newline. The
// MAC is HMAC-SHA256 over the encoding without the mac (ending in "}").
// Since Prev is inside the MACed bytes, every record commits to the whole
// chain before it.

const (
	macPrefix = `,"mac":"`
	macSuffix = `"}`
	macHexLen = 2 * sha256.Size
	// macTailLen is the length of the mac part at the end of a line.
	macTailLen = len(macPrefix) + macHexLen + len(macSuffix)
)

// sealer computes and checks line MACs; not safe for concurrent use.
type sealer struct {
	h   hash.Hash
	sum []byte
}

func newSealer(k chainKey) *sealer {
	return &sealer{h: hmac.New(sha256.New, k.mac), sum: make([]byte, 0, sha256.Size)}
}

// seal encodes r (its MAC field must be empty) as a line appended to dst.
// It returns the line and the MAC in hex.
func (s *sealer) seal(dst []byte, r *Record) ([]byte, string, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return dst, "", err
	}
	s.h.Reset()
	s.h.Write(body)
	s.sum = s.h.Sum(s.sum[:0])
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, macPrefix...)
	start := len(dst)
	dst = hex.AppendEncode(dst, s.sum)
	mac := string(dst[start:])
	dst = append(dst, macSuffix...)
	dst = append(dst, '\n')
	return dst, mac, nil
}

// check verifies a line (without its newline) and returns its MAC in hex
// (a sub-slice of line) and whether it verifies.
func (s *sealer) check(line []byte) ([]byte, bool) {
	if len(line) < macTailLen+2 || line[0] != '{' {
		return nil, false
	}
	tail := line[len(line)-macTailLen:]
	if !bytes.HasPrefix(tail, []byte(macPrefix)) || !bytes.HasSuffix(tail, []byte(macSuffix)) {
		return nil, false
	}
	macHex := tail[len(macPrefix) : len(macPrefix)+macHexLen]
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], macHex); err != nil {
		return nil, false
	}
	s.h.Reset()
	s.h.Write(line[:len(line)-macTailLen])
	s.h.Write([]byte{'}'})
	s.sum = s.h.Sum(s.sum[:0])
	return macHex, hmac.Equal(s.sum, want[:])
}

// header is the part of a record the verifier needs.
type header struct {
	Seq        uint64      `json:"seq"`
	Type       Type        `json:"type"`
	Prev       string      `json:"prev"`
	FileStart  *FileStart  `json:"file_start"`
	Checkpoint *Checkpoint `json:"checkpoint"`
}

func parseHeader(line []byte) (header, error) {
	var h header
	err := json.Unmarshal(line, &h)
	return h, err
}

// parseSealed parses the header of a line whose MAC verified, so its
// layout is the writer's (seq, time, type, prev first): the common fields
// are read directly and only file_start and checkpoint records go through
// the JSON decoder. Anything unexpected falls back to parseHeader.
func parseSealed(line []byte) (header, error) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return parseHeader(line)
	}
	i := bytes.IndexByte(rest, ',')
	if i <= 0 || i > 20 {
		return parseHeader(line)
	}
	var h header
	for _, c := range rest[:i] {
		if c < '0' || c > '9' {
			return parseHeader(line)
		}
		h.Seq = h.Seq*10 + uint64(c-'0')
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"time":"`))
	if i = bytes.IndexByte(rest, '"'); !ok || i < 0 {
		return parseHeader(line)
	}
	rest, ok = bytes.CutPrefix(rest[i+1:], []byte(`,"type":"`))
	if i = bytes.IndexByte(rest, '"'); !ok || i < 0 {
		return parseHeader(line)
	}
	h.Type = Type(rest[:i])
	if h.Type == TypeFileStart || h.Type == TypeCheckpoint {
		return parseHeader(line)
	}
	rest, ok = bytes.CutPrefix(rest[i+1:], []byte(`,"prev":"`))
	if i = bytes.IndexByte(rest, '"'); !ok || i < 0 {
		return parseHeader(line)
	}
	h.Prev = string(rest[:i])
	return h, nil
}
