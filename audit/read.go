package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ReadRecords decodes the records of a log (one file or a rotated set, in
// any order) in chain order and calls fn for each; fn must not keep r.
// It does not verify the chain (run Verify for that), but every record
// it hands fn has exactly the payload its type names. An incomplete last line
// of the last file (a write in progress) is skipped; any other undecodable
// line is an error matching ErrMalformed.
func ReadRecords(ctx context.Context, paths []string, fn func(r *Record) error) error {
	files, err := orderFiles(paths)
	if err != nil {
		return err
	}
	in := newLines(files)
	defer in.close()
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		it, err := in.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if it.empty || (it.partial && it.file == files[len(files)-1]) {
			continue
		}
		r, err := decodeRecord(it.line)
		if err != nil {
			return fmt.Errorf("%w: %s:%d: %v", ErrMalformed, it.file, it.lineNo, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// decodeRecord decodes a line as a record whose only payload is the one
// its type names: readers (query, report) and the verifier take a record
// for what its payload says, so a line carrying a second payload, or one
// its type does not name, is not a record.
func decodeRecord(line []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, err
	}
	if r.Seq == 0 {
		return nil, errors.New("no sequence number")
	}
	payloads := map[Type]bool{
		TypeFileStart: r.FileStart != nil, TypeCheckpoint: r.Checkpoint != nil,
		TypeConnectionStart: r.ConnectionStart != nil, TypeAuthFailure: r.AuthFailure != nil,
		TypeConnectionEnd: r.ConnectionEnd != nil, TypeStatement: r.Statement != nil,
		TypePolicyLoad: r.PolicyLoad != nil, TypeKeyRotation: r.KeyRotation != nil,
		TypeDetokenize: r.Detokenize != nil, TypeStatementText: r.StatementText != nil,
		TypeShadow: r.Shadow != nil,
	}
	n := 0
	for _, set := range payloads {
		if set {
			n++
		}
	}
	if n != 1 || !payloads[r.Type] {
		return nil, fmt.Errorf("a %q record must carry exactly its own payload", r.Type)
	}
	return &r, nil
}
