package rewrite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// ErrCopyShape reports COPY data pgpseudo cannot split into the planned
// columns: the data is withheld.
var ErrCopyShape = errors.New("COPY data does not match its columns")

// copyBinarySignature starts binary COPY output.
var copyBinarySignature = []byte("PGCOPY\n\xff\r\n\x00")

// Copy rewrites the output of one COPY TO STDOUT.
type Copy struct {
	Info *sqlinfo.Copy
	Plan *Plan
	// Quote marks the csv columns the server quotes whatever they hold
	// (FORCE_QUOTE): their rewritten values are quoted too.
	Quote []bool
	// headerDone is set once a binary header or csv header line passed.
	headerDone bool
	// raw and out are reused per value: COPY rewriting runs per row.
	raw, out []byte
}

// CopyData appends the CopyData frame for one row of COPY output.
func (c *Copy) CopyData(dst, data []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 'd', 0, 0, 0, 0)
	var err error
	switch c.Info.Format {
	case "binary":
		dst, err = c.rewriteBinary(dst, data)
	default:
		if c.Info.Header && !c.headerDone {
			// The column names, in the format's quoting.
			c.headerDone = true
			dst = append(dst, data...)
			break
		}
		if c.Info.Format == "csv" {
			dst, err = c.rewriteCSV(dst, data)
		} else {
			dst, err = c.rewriteText(dst, data)
		}
	}
	if err != nil {
		return dst[:start], err
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}

func (c *Copy) rewriteBinary(dst, data []byte) ([]byte, error) {
	if !c.headerDone {
		if len(data) < 19 || !bytes.HasPrefix(data, copyBinarySignature) {
			return dst, fmt.Errorf("%w: binary header", ErrCopyShape)
		}
		ext := int(binary.BigEndian.Uint32(data[15:19]))
		if len(data) < 19+ext {
			return dst, fmt.Errorf("%w: binary header extension", ErrCopyShape)
		}
		dst = append(dst, data[:19+ext]...)
		data = data[19+ext:]
		c.headerDone = true
		if len(data) == 0 {
			return dst, nil
		}
	}
	if len(data) == 2 && data[0] == 0xff && data[1] == 0xff { // trailer
		return append(dst, data...), nil
	}
	// A binary COPY row has DataRow's layout: rewrite it in place after
	// dst and drop the DataRow header DataRow writes.
	start := len(dst)
	dst, err := DataRow(dst, data, c.Plan)
	if err != nil {
		return dst[:start], err
	}
	return append(dst[:start], dst[start+5:]...), nil
}

// rewriteText handles COPY's text format: fields split by the delimiter,
// backslash escapes, NULL as the null string, one row per CopyData.
func (c *Copy) rewriteText(dst, data []byte) ([]byte, error) {
	if !bytes.HasSuffix(data, []byte{'\n'}) {
		return dst, fmt.Errorf("%w: row without newline", ErrCopyShape)
	}
	fields := splitCopyText(data[:len(data)-1], c.Info.Delimiter)
	if len(fields) != len(c.Plan.Cols) {
		return dst, fmt.Errorf("%w: %d fields for %d columns", ErrCopyShape, len(fields), len(c.Plan.Cols))
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, c.Info.Delimiter)
		}
		col := &c.Plan.Cols[i]
		if col.Tr == nil && !col.Null || string(f) == c.Info.NullString {
			dst = append(dst, f...)
			continue
		}
		if col.Null {
			dst = append(dst, c.Info.NullString...)
			continue
		}
		c.raw = unescapeCopyText(c.raw[:0], f)
		var err error
		if c.out, err = col.Tr.Transform(c.out[:0], c.raw); err != nil {
			dst = append(dst, c.Info.NullString...)
			continue
		}
		dst = escapeCopyText(dst, c.out, c.Info.Delimiter)
	}
	return append(dst, '\n'), nil
}

// splitCopyText splits a text-format COPY line at its delimiters: a
// backslash escapes the byte after it, so an escaped delimiter is data
// (the server writes a delimiter inside a value as backslash-delimiter).
func splitCopyText(line []byte, delim byte) [][]byte {
	var fields [][]byte
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++ // the escaped byte, whatever it is
		case delim:
			fields = append(fields, line[start:i])
			start = i + 1
		}
	}
	return append(fields, line[start:])
}

func unescapeCopyText(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			dst = append(dst, s[i])
			continue
		}
		i++
		switch ch := s[i]; ch {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(s) && isHex(s[i+1]) {
				i++
				v = v*16 + hexVal(s[i])
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(ch - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}

func escapeCopyText(dst, s []byte, delim byte) []byte {
	for _, ch := range s {
		switch ch {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\v':
			dst = append(dst, '\\', 'v')
		default:
			if ch == delim {
				dst = append(dst, '\\')
			}
			dst = append(dst, ch)
		}
	}
	return dst
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }

func hexVal(b byte) int {
	switch {
	case b >= 'a':
		return int(b-'a') + 10
	case b >= 'A':
		return int(b-'A') + 10
	}
	return int(b - '0')
}

// rewriteCSV handles COPY's csv format; a quoted field may hold the
// delimiter, quotes (escaped) and newlines.
func (c *Copy) rewriteCSV(dst, data []byte) ([]byte, error) {
	line := bytes.TrimSuffix(data, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	q, esc, delim := c.Info.Quote, c.Info.Escape, c.Info.Delimiter
	col := 0
	val := c.raw[:0]
	defer func() { c.raw = val[:0] }()
	for pos := 0; ; col++ {
		if col >= len(c.Plan.Cols) {
			return dst, fmt.Errorf("%w: too many fields", ErrCopyShape)
		}
		val = val[:0]
		quoted := false
		startField := pos
		if pos < len(line) && line[pos] == q {
			quoted = true
			pos++
			for {
				if pos >= len(line) {
					return dst, fmt.Errorf("%w: unterminated quote", ErrCopyShape)
				}
				ch := line[pos]
				if ch == esc && pos+1 < len(line) && (line[pos+1] == q || line[pos+1] == esc) && !(esc == q && line[pos+1] != q) {
					val = append(val, line[pos+1])
					pos += 2
					continue
				}
				if ch == q {
					pos++
					break
				}
				val = append(val, ch)
				pos++
			}
		} else {
			for pos < len(line) && line[pos] != delim {
				val = append(val, line[pos])
				pos++
			}
		}
		rawField := line[startField:pos]
		if col > 0 {
			dst = append(dst, delim)
		}
		cp := &c.Plan.Cols[col]
		isNull := !quoted && string(val) == c.Info.NullString
		switch {
		case isNull || cp.Tr == nil && !cp.Null:
			dst = append(dst, rawField...)
		case cp.Null:
			dst = append(dst, c.Info.NullString...)
		default:
			var err error
			if c.out, err = cp.Tr.Transform(c.out[:0], val); err != nil {
				dst = append(dst, c.Info.NullString...)
				break
			}
			dst = appendCSVField(dst, c.out, q, esc, delim, c.Info.NullString, col < len(c.Quote) && c.Quote[col])
		}
		if pos >= len(line) {
			break
		}
		if line[pos] != delim {
			return dst, fmt.Errorf("%w: junk after a quoted field", ErrCopyShape)
		}
		pos++
	}
	if col+1 != len(c.Plan.Cols) {
		return dst, fmt.Errorf("%w: %d fields for %d columns", ErrCopyShape, col+1, len(c.Plan.Cols))
	}
	return append(dst, '\n'), nil
}

func appendCSVField(dst, v []byte, q, esc, delim byte, null string, force bool) []byte {
	need := force || len(v) == 0 || string(v) == null || bytes.IndexByte(v, delim) >= 0 || bytes.IndexByte(v, q) >= 0 ||
		bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0
	if !need {
		return append(dst, v...)
	}
	dst = append(dst, q)
	for _, ch := range v {
		if ch == q || ch == esc {
			dst = append(dst, esc)
		}
		dst = append(dst, ch)
	}
	return append(dst, q)
}
