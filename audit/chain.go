package audit

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"hash"
)

// A line is the JSON encoding of a Record without its hash, with
// `,"hash":"<64 hex>"}` in place of the closing brace, and a newline. The
// hash is SHA-256 over a format prefix and the encoding without the hash
// (ending in "}"). Since Prev is inside the hashed bytes, every record
// commits to the whole chain before it. The chain is public: it detects
// damage and careless edits, and signed checkpoints (sign.go) make it
// evidence against someone who recomputes it.

const (
	hashPrefix = `,"hash":"`
	hashSuffix = `"}`
	hashHexLen = 2 * sha256.Size
	// hashTailLen is the length of the hash part at the end of a line.
	hashTailLen = len(hashPrefix) + hashHexLen + len(hashSuffix)
	// lineDomain separates record hashes from any other SHA-256 use.
	lineDomain = "pgpseudo-audit/2 record\n"
)

// sealer computes and checks line hashes; not safe for concurrent use.
type sealer struct {
	h    hash.Hash
	sum  []byte
	body []byte // reused for each record's encoding
}

func newSealer() *sealer {
	return &sealer{h: sha256.New(), sum: make([]byte, 0, sha256.Size)}
}

// seal encodes r (its Hash field must be empty) as a line appended to dst.
// It returns the line and the hash in hex.
func (s *sealer) seal(dst []byte, r *Record) ([]byte, string, error) {
	body, err := appendRecord(s.body[:0], r)
	if err != nil {
		return dst, "", err
	}
	s.body = body
	s.h.Reset()
	s.h.Write([]byte(lineDomain))
	s.h.Write(body)
	s.sum = s.h.Sum(s.sum[:0])
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, hashPrefix...)
	start := len(dst)
	dst = hex.AppendEncode(dst, s.sum)
	sum := string(dst[start:])
	dst = append(dst, hashSuffix...)
	dst = append(dst, '\n')
	return dst, sum, nil
}

// EncodeLine encodes r as a log line, its Hash computed over the rest as
// the writer does (r.Hash must be empty). The chain is public: this is
// what a verifier recomputes, and what anyone can; only the signed
// checkpoints tell the proxy's lines from others.
func EncodeLine(r *Record) (line []byte, hash string, err error) {
	return newSealer().seal(nil, r)
}

// check verifies a line (without its newline) and returns its hash in hex
// (a sub-slice of line) and whether it matches the line.
func (s *sealer) check(line []byte) ([]byte, bool) {
	if len(line) < hashTailLen+2 || line[0] != '{' {
		return nil, false
	}
	tail := line[len(line)-hashTailLen:]
	if !bytes.HasPrefix(tail, []byte(hashPrefix)) || !bytes.HasSuffix(tail, []byte(hashSuffix)) {
		return nil, false
	}
	hashHex := tail[len(hashPrefix) : len(hashPrefix)+hashHexLen]
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], hashHex); err != nil {
		return nil, false
	}
	s.h.Reset()
	s.h.Write([]byte(lineDomain))
	s.h.Write(line[:len(line)-hashTailLen])
	s.h.Write([]byte{'}'})
	s.sum = s.h.Sum(s.sum[:0])
	return hashHex, subtle.ConstantTimeCompare(s.sum, want[:]) == 1
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

// parseSealed parses a line whose hash matched: the full record, which
// must carry exactly the payload its type names (decodeRecord), so the
// verifier judges the record exactly as query and report will read it.
func parseSealed(line []byte) (header, error) {
	r, err := decodeRecord(line)
	if err != nil {
		return header{}, err
	}
	return header{Seq: r.Seq, Type: r.Type, Prev: r.Prev, FileStart: r.FileStart, Checkpoint: r.Checkpoint}, nil
}
