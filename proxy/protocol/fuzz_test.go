package protocol

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fuzzNames are the statement and portal names the fuzzer uses.
var fuzzNames = []string{"", "a", "b"}

// fuzzClient is the client message op chooses.
func fuzzClient(op, arg byte) encoder {
	name := fuzzNames[int(arg)%len(fuzzNames)]
	other := fuzzNames[int(arg>>2)%len(fuzzNames)]
	switch op % 12 {
	case 0:
		return &pgproto3.Parse{Name: name, Query: "SELECT 1"}
	case 1:
		return &pgproto3.Bind{DestinationPortal: name, PreparedStatement: other, ResultFormatCodes: []int16{int16(arg & 1)}}
	case 2:
		return &pgproto3.Describe{ObjectType: "SP"[arg&1], Name: name}
	case 3:
		return &pgproto3.Execute{Portal: name, MaxRows: uint32(arg & 1)}
	case 4:
		return &pgproto3.Close{ObjectType: "SP"[arg&1], Name: name}
	case 5, 6:
		return &pgproto3.Sync{}
	case 7:
		return &pgproto3.Query{String: []string{"SELECT 1", "SELECT 1; SELECT 2", "COPY t TO STDOUT", "DEALLOCATE ALL", ""}[int(arg)%5]}
	case 8:
		return &pgproto3.Flush{}
	case 9:
		return &pgproto3.CopyData{Data: []byte("x\n")}
	case 10:
		return &pgproto3.CopyDone{}
	default:
		return &pgproto3.CopyFail{Message: "no"}
	}
}

// fuzzServer is the server message op chooses.
func fuzzServer(op, arg byte) encoder {
	switch op % 17 {
	case 0:
		return parseComplete
	case 1:
		return bindComplete
	case 2:
		return closeComplete
	case 3:
		return rowDesc("c")
	case 4, 5:
		return row
	case 6:
		return complete([]string{"SELECT 1", "DEALLOCATE", "DISCARD ALL", "CLOSE CURSOR", "DECLARE CURSOR", "COPY 1"}[int(arg)%6])
	case 7:
		return errResp()
	case 8:
		return &pgproto3.ReadyForQuery{TxStatus: "ITE"[int(arg)%3]}
	case 9:
		return noData
	case 10:
		return paramDesc
	case 11:
		return &pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}}
	case 12:
		return &pgproto3.CopyInResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}}
	case 13:
		return &pgproto3.CopyData{Data: []byte("x\n")}
	case 14:
		return &pgproto3.CopyDone{}
	case 15:
		return &pgproto3.PortalSuspended{}
	default:
		return &pgproto3.EmptyQueryResponse{}
	}
}

// FuzzTracker drives the tracker with any interleaving of client and
// server messages. It must never panic, and every row or COPY data it
// accepts from the server must belong to a result it can name: a row the
// tracker cannot tie to a result would reach the client without a plan.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 6, 0, 1, 0, 1, 1, 1, 3, 1, 4, 1, 6, 1, 8})
	f.Add([]byte{14, 0, 1, 3, 1, 4, 1, 6, 1, 8})
	f.Add([]byte{14, 2, 1, 11, 1, 13, 1, 14, 1, 6, 1, 8})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tr := New()
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			if op&1 == 0 {
				b, err := fuzzClient(op>>1, arg).Encode(nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Send(b[0], b[5:], arg&0x80 != 0, nil, 0); err != nil {
					return // a malformed or impossible client message ends the session
				}
				continue
			}
			m := fuzzServer(op>>1, arg)
			b, err := m.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := tr.Receive(b[0], b[5:])
			if err != nil {
				return // desync: the proxy ends the session
			}
			switch b[0] {
			case 'D':
				if rep.Result == nil || rep.Result.Copy != 0 {
					t.Fatalf("op %d: a DataRow accepted without a result, or inside a COPY: %+v", i/2, rep.Result)
				}
			case 'd':
				if rep.Result == nil || rep.Result.Copy != 'H' && rep.Result.Copy != 'W' {
					t.Fatalf("op %d: COPY data accepted outside a COPY TO STDOUT result: %+v", i/2, rep.Result)
				}
			}
			_ = tr.Pending()
			_, _ = tr.Statements("a")
		}
	})
}
