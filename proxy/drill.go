package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/protocol"
	"github.com/pgpseudo/pgpseudo/proxy/screen"
)

// drillTypes are the column types a drill-down's clear value may be cast
// to: those of the reversible transforms (int, uuid, and text for
// digits, iban, card and reversible tokens).
var drillTypes = map[uint32]string{21: "int2", 23: "int4", 20: "int8", 2950: "uuid", 25: "text", 1043: "varchar", 1042: "bpchar"}

// drillValues decodes the drill-down literals of each statement
// (sqlinfo.Drill): a literal that is no token of its domain decodes to
// nothing and matches nothing. refuse says why a statement cannot be
// drilled into.
//
// A parameter's drill-down is decoded at each Bind (decodeDrillParams); types
// are the parameter types the client declared, which must be the
// column's (or, for integers, another integer type).
func (s *session) drillValues(ctx context.Context, pol *policy.Policy, role *policy.Role, res *analyze.Result, types []uint32) (drills [][]sqlinfo.Drill, refuse string, err error) {
	var ks *crypto.Keyset
	for i, st := range res.Statements {
		if len(st.Drills) == 0 {
			continue
		}
		for _, d := range st.Drills {
			typ, err := s.srv.catalog.ColumnType(ctx, s.id.Database, d.Schema, d.Table, d.Column)
			if err != nil {
				return nil, "", err
			}
			if d.Type = drillTypes[typ]; d.Type == "" {
				return nil, fmt.Sprintf("drill-down on %s.%s (type oid %d) is not supported; role %s may not filter it on a literal (rule: drill-down decodes tokens of int, uuid and text columns)",
					d.Table, d.Column, typ, role.Name), nil
			}
			if d.Param > 0 {
				if d.Param <= len(types) && types[d.Param-1] != 0 && !paramFits(types[d.Param-1], typ) {
					return nil, fmt.Sprintf("parameter $%d is declared as type oid %d, but compared with %s.%s of type oid %d; role %s may not drill down through it (rule: a drill-down parameter has its column's type)",
						d.Param, types[d.Param-1], d.Table, d.Column, typ, role.Name), nil
				}
				d.TypeOID = typ
				drills = appendDrill(drills, len(res.Statements), i, d)
				continue
			}
			if ks == nil {
				if ks, err = s.srv.keyset(ctx); err != nil {
					return nil, "", err
				}
			}
			spec := pol.Decide(role, policy.TableName{Schema: d.Schema, Table: d.Table}, d.Column).Spec
			if r, err := crypto.NewReverser(spec, ks, typ, crypto.FormatText); err == nil {
				if clear, err := r.Reverse(nil, []byte(d.Literal)); err == nil {
					v := string(clear)
					d.Clear = &v
				}
			}
			drills = appendDrill(drills, len(res.Statements), i, d)
		}
	}
	return drills, "", nil
}

func appendDrill(drills [][]sqlinfo.Drill, n, i int, d sqlinfo.Drill) [][]sqlinfo.Drill {
	if drills == nil {
		drills = make([][]sqlinfo.Drill, n)
	}
	drills[i] = append(drills[i], d)
	return drills
}

// integerTypes are int2, int4 and int8.
var integerTypes = map[uint32]int{21: 16, 23: 32, 20: 64}

// paramFits reports a parameter type a drill-down value of a column of
// type col can be sent as: the column's own, or any integer type for an
// integer column (the value is checked against both at Bind).
func paramFits(param, col uint32) bool {
	_, pi := integerTypes[param]
	_, ci := integerTypes[col]
	return param == col || pi && ci
}

// paramDrills are the drill-down parameters of a prepared statement.
func paramDrills(ds []sqlinfo.Drill) []sqlinfo.Drill {
	var out []sqlinfo.Drill
	for _, d := range ds {
		if d.Param > 0 {
			out = append(out, d)
		}
	}
	return out
}

// A statement with drill-down parameters is prepared on the server under
// a name only the proxy uses (the reserved prefix), never under the
// client's: the proxy maps the client's name to it in Bind, Describe and
// Close. So whatever the proxy believes about names — a Parse may fail on
// the server (42P05), be skipped after an error, or be undone by
// DEALLOCATE — a Bind the proxy decodes binds a statement whose
// parameters are drill-down positions, and a Bind it does not decode
// binds one that has none (round 26: a name re-used for "SELECT $1"
// echoed the decoded clear values).

// restricted reports a session whose role does not see everything.
func (s *session) restricted() bool {
	_, role := s.currentPolicy()
	return role.Restricted()
}

// drillStmtPrefix starts the server-side names of drill-down statements.
const drillStmtPrefix = sqlinfo.ReservedPrefix + "_d_"

// drillParse records a Parse of the client's name and returns the name
// to send it under: the proxy's own when the statement has drill-down
// parameters ("" for the client's). It closes, first, an earlier
// statement under the proxy's name.
func (s *session) drillParse(name string, sm *stmtMeta) (string, error) {
	if len(sm.verdict().drillParams) == 0 {
		delete(s.drillNames, name)
		return "", nil
	}
	sum := sha256.Sum256([]byte(name))
	server := drillStmtPrefix + hex.EncodeToString(sum[:16])
	if s.drillNames == nil {
		s.drillNames, s.parsed = map[string]string{}, map[string]*stmtMeta{}
	}
	if err := s.inject('C', append([]byte{'S'}, append([]byte(server), 0)...), sm); err != nil {
		return "", err
	}
	s.drillNames[name], s.parsed[server] = server, sm
	return server, nil
}

// renameStmt returns a Parse, Bind, Describe or Close body that names the
// statement name instead.
func renameStmt(typ byte, body []byte, name string) []byte {
	switch typ {
	case 'P':
		_, rest, _ := bytes.Cut(body, []byte{0})
		return append(append([]byte(name), 0), rest...)
	case 'B':
		portal, rest, _ := bytes.Cut(body, []byte{0})
		_, rest, _ = bytes.Cut(rest, []byte{0})
		out := append(append([]byte{}, portal...), 0)
		out = append(append(out, name...), 0)
		return append(out, rest...)
	}
	// Describe, Close: the target byte, then the name.
	return append(append([]byte{body[0]}, name...), 0)
}

// decodeDrillParams rewrites a Bind of a restricted session's statement
// whose drill-down parameters carry tokens: each value becomes the clear
// value it decodes to, in the parameter's type and format, or NULL when
// it decodes to nothing (the filter then matches nothing). No value the
// client sent reaches the server in such a parameter, so no error can
// echo one either.
func (s *session) decodeDrillParams(body []byte) ([]byte, error) {
	_, name, err := protocol.MessageName('B', body)
	if err != nil || !strings.HasPrefix(name, drillStmtPrefix) {
		return body, nil // the tracker reports a malformed message
	}
	m := s.parsed[name]
	if m == nil {
		return body, nil
	}
	ds := m.verdict().drillParams
	if len(ds) == 0 {
		return body, nil
	}
	var b pgproto3.Bind
	if err := b.Decode(body); err != nil {
		return body, nil
	}
	types := screen.ParamTypes(m.parse)
	ctx, cancel := context.WithTimeout(s.ctx, planTimeout)
	defer cancel()
	ks, err := s.srv.keyset(ctx)
	if err != nil {
		return nil, err
	}
	pol, role := s.currentPolicy()
	done := map[int]bool{}
	for _, d := range ds {
		if done[d.Param] {
			continue // ($1 in two drill-down positions)
		}
		done[d.Param] = true
		i := d.Param - 1
		if i >= len(b.Parameters) || b.Parameters[i] == nil {
			continue // the server reports a missing one
		}
		format := int16(0)
		switch {
		case len(b.ParameterFormatCodes) == 1:
			format = b.ParameterFormatCodes[0]
		case i < len(b.ParameterFormatCodes):
			format = b.ParameterFormatCodes[i]
		}
		declared := d.TypeOID
		if i < len(types) && types[i] != 0 {
			declared = types[i]
		}
		spec := pol.Decide(role, policy.TableName{Schema: d.Schema, Table: d.Table}, d.Column).Spec
		b.Parameters[i] = s.drillParam(spec, ks, d.TypeOID, declared, format, b.Parameters[i])
	}
	out, err := b.Encode(nil)
	if err != nil {
		return nil, err
	}
	return out[5:], nil // the body, without type and length
}

// drillParam decodes one parameter value (nil: it decodes to nothing).
func (s *session) drillParam(spec crypto.Spec, ks *crypto.Keyset, col, declared uint32, format int16, v []byte) []byte {
	colBits, colInt := integerTypes[col]
	if !colInt {
		tr, err := s.srv.transformers.Get(spec, ks, col, format)
		if err != nil {
			return nil
		}
		r, ok := tr.(crypto.Reverser)
		if !ok {
			return nil
		}
		out, err := r.Reverse(nil, v)
		if err != nil {
			return nil
		}
		return out
	}
	// An integer, possibly sent as another integer type: read it, decode
	// it as the column's type, write it back as sent.
	bits := integerTypes[declared]
	var x int64
	switch {
	case format == 0:
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			return nil
		}
		x = n
	case len(v) == bits/8 && bits == 16:
		x = int64(int16(binary.BigEndian.Uint16(v)))
	case len(v) == bits/8 && bits == 32:
		x = int64(int32(binary.BigEndian.Uint32(v)))
	case len(v) == bits/8 && bits == 64:
		x = int64(binary.BigEndian.Uint64(v))
	default:
		return nil
	}
	if x < -(1<<(colBits-1)) || colBits < 64 && x >= 1<<(colBits-1) {
		return nil // no token of the column's type
	}
	tr, err := s.srv.transformers.Get(spec, ks, col, 0)
	if err != nil {
		return nil
	}
	r, ok := tr.(crypto.Reverser)
	if !ok {
		return nil
	}
	out, err := r.Reverse(nil, strconv.AppendInt(nil, x, 10))
	if err != nil {
		return nil
	}
	clear, err := strconv.ParseInt(string(out), 10, 64)
	if err != nil || bits < 64 && (clear < -(1<<(bits-1)) || clear >= 1<<(bits-1)) {
		return nil // does not fit the declared type
	}
	switch {
	case format == 0:
		return out
	case bits == 16:
		return binary.BigEndian.AppendUint16(nil, uint16(clear))
	case bits == 32:
		return binary.BigEndian.AppendUint32(nil, uint32(clear))
	}
	return binary.BigEndian.AppendUint64(nil, uint64(clear))
}
