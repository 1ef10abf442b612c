package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// ReadRecords decodes the records of a log (one file or a rotated set, in
// any order) in chain order and calls fn for each; fn must not keep r.
// It does not verify MACs (run Verify for that). An incomplete last line
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
		var r Record
		if err := json.Unmarshal(it.line, &r); err != nil || r.Seq == 0 {
			return fmt.Errorf("%w: %s:%d", ErrMalformed, it.file, it.lineNo)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}
