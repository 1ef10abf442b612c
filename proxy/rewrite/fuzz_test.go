package rewrite

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// secret marks the values of columns that may not leave as they are; the
// values of allowed columns never contain it.
const secret = "SECRET-7f3a"

// fuzzPlan builds a plan from the low bits of mask: per column, allow
// (copied), null, or redact (a transformer).
func fuzzPlan(t *testing.T, n int, mask uint32) *Plan {
	t.Helper()
	redact, err := crypto.New(crypto.Spec{Kind: crypto.KindRedact, Constant: "xx"}, nil, crypto.OIDText, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{}
	for i := range n {
		switch (mask >> (2 * i)) & 3 {
		case 0, 3:
			p.Cols = append(p.Cols, Col{Action: policy.Allow})
		case 1:
			p.Cols = append(p.Cols, Col{Action: policy.Null, Null: true})
		case 2:
			p.Cols = append(p.Cols, Col{Action: policy.Tokenize, Tr: redact})
		}
	}
	return p
}

// fuzzValues splits data into n values; allowed columns lose any secret
// marker, the others get one.
func fuzzValues(p *Plan, data []byte) [][]byte {
	parts := bytes.SplitN(data, []byte{0xfe}, len(p.Cols))
	vals := make([][]byte, len(p.Cols))
	for i := range vals {
		var v []byte
		if i < len(parts) {
			v = parts[i]
		}
		if p.Cols[i].Action == policy.Allow {
			v = bytes.ReplaceAll(v, []byte(secret), nil)
		} else {
			v = append([]byte(secret), v...)
		}
		vals[i] = v
	}
	return vals
}

// FuzzDataRow: a DataRow of any shape is rewritten or refused, never
// forwarded with a value of a column that may not leave; malformed bodies
// fail with an error, never a panic.
func FuzzDataRow(f *testing.F) {
	f.Add(uint8(3), uint32(0b100100), []byte("a\xfeb\xfec"), false)
	f.Add(uint8(1), uint32(2), []byte("secret"), false)
	f.Add(uint8(2), uint32(1), []byte("\x00\x02\x00\x00\x00\x01a"), true)
	f.Fuzz(func(t *testing.T, n uint8, mask uint32, data []byte, raw bool) {
		p := fuzzPlan(t, int(n%9), mask)
		body := data
		if !raw {
			body = binary.BigEndian.AppendUint16(nil, uint16(len(p.Cols)))
			for i, v := range fuzzValues(p, data) {
				if len(v) > 0 && v[len(v)-1] == 0xff && p.Cols[i].Action == policy.Allow {
					body = binary.BigEndian.AppendUint32(body, 0xffffffff) // NULL
					continue
				}
				body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
				body = append(body, v...)
			}
		}
		out, err := DataRow(nil, body, p)
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("an error left %d bytes in the output", len(out))
			}
			return
		}
		if !raw && bytes.Contains(out, []byte(secret)) {
			t.Fatalf("a withheld value left: %q", out)
		}
		if out[0] != 'D' || int(binary.BigEndian.Uint32(out[1:])) != len(out)-1 {
			t.Fatalf("bad frame %q", out)
		}
	})
}

// FuzzCopyData: COPY rows in text, csv and binary, of any content, are
// rewritten or refused; a value of a column that may not leave never
// appears in the output.
func FuzzCopyData(f *testing.F) {
	f.Add(uint8(3), uint32(0b100100), []byte("a\xfeb\xfec"), uint8(0), false)
	f.Add(uint8(2), uint32(0b1001), []byte("x,y\xfe\"q\""), uint8(1), false)
	f.Add(uint8(2), uint32(2), []byte("PGCOPY\n\xff\r\n\x00"), uint8(2), true)
	f.Fuzz(func(t *testing.T, n uint8, mask uint32, data []byte, format uint8, raw bool) {
		p := fuzzPlan(t, int(n%8)+1, mask)
		infos := []sqlinfo.Copy{
			{Format: "text", Delimiter: '\t', NullString: `\N`},
			{Format: "csv", Delimiter: ',', NullString: "", Quote: '"', Escape: '"'},
			{Format: "binary"},
		}
		info := infos[int(format)%len(infos)]
		line := data
		if !raw {
			vals := fuzzValues(p, data)
			switch info.Format {
			case "text":
				var b []byte
				for i, v := range vals {
					if i > 0 {
						b = append(b, info.Delimiter)
					}
					b = escapeCopyText(b, v, info.Delimiter)
				}
				line = append(b, '\n')
			case "csv":
				var b []byte
				for i, v := range vals {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, '"')
					b = append(b, bytes.ReplaceAll(v, []byte(`"`), []byte(`""`))...)
					b = append(b, '"')
				}
				line = append(b, '\n')
			case "binary":
				// The header (signature, flags, no extension), then the row.
				b := append(bytes.Clone(copyBinarySignature), 0, 0, 0, 0, 0, 0, 0, 0)[:19]
				b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
				for _, v := range vals {
					b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
					b = append(b, v...)
				}
				line = b
			}
		}
		c := &Copy{Info: &info, Plan: p}
		out, err := c.CopyData(nil, line)
		if err != nil || raw {
			return
		}
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("%s: a withheld value left: %q", info.Format, out)
		}
	})
}
