package rewrite

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// ErrRowShape reports a DataRow that does not match its RowDescription: the
// session cannot know what the values are and must end.
var ErrRowShape = errors.New("DataRow does not match its RowDescription")

// DataRow appends the rewritten DataRow frame for body to dst.
func DataRow(dst, body []byte, p *Plan) ([]byte, error) {
	if len(body) < 2 {
		return dst, ErrRowShape
	}
	n := int(binary.BigEndian.Uint16(body))
	if n != len(p.Cols) {
		return dst, fmt.Errorf("%w: %d values for %d columns", ErrRowShape, n, len(p.Cols))
	}
	start := len(dst)
	dst = append(dst, 'D', 0, 0, 0, 0, body[0], body[1])
	rp := 2
	for i := range p.Cols {
		if rp+4 > len(body) {
			return dst[:start], ErrRowShape
		}
		l := int32(binary.BigEndian.Uint32(body[rp:]))
		rp += 4
		var v []byte
		if l >= 0 {
			if rp+int(l) > len(body) {
				return dst[:start], ErrRowShape
			}
			v = body[rp : rp+int(l)]
			rp += int(l)
		}
		c := &p.Cols[i]
		switch {
		case l < 0 || c.Null:
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
		case c.Tr == nil:
			dst = binary.BigEndian.AppendUint32(dst, uint32(l))
			dst = append(dst, v...)
		default:
			lenAt := len(dst)
			dst = append(dst, 0, 0, 0, 0)
			var err error
			if dst, err = c.Tr.Transform(dst, v); err != nil {
				// A value the transformer cannot read is withheld, never
				// forwarded raw.
				dst = append(dst[:lenAt], 0xff, 0xff, 0xff, 0xff)
				continue
			}
			binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
		}
	}
	if rp != len(body) {
		return dst[:start], ErrRowShape
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}

// RowDescription clears type modifiers of rewritten columns: a token
// may be longer than varchar(n) allows and clients that check lengths must
// not reject it.
func RowDescription(raw []byte, p *Plan) ([]byte, error) {
	var rd pgproto3.RowDescription
	if err := rd.Decode(raw[5:]); err != nil {
		return nil, err
	}
	changed := false
	for i := range rd.Fields {
		if i < len(p.TypmodReset) && p.TypmodReset[i] && rd.Fields[i].TypeModifier != -1 {
			rd.Fields[i].TypeModifier = -1
			changed = true
		}
		if i < len(p.Types) && p.Types[i] != 0 && rd.Fields[i].DataTypeOID != p.Types[i] {
			rd.Fields[i].DataTypeOID, rd.Fields[i].DataTypeSize = p.Types[i], -1
			changed = true
		}
	}
	if !changed {
		return raw, nil
	}
	return rd.Encode(nil)
}
