package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ProblemKind says how a log was tampered with.
type ProblemKind string

// Problem kinds, in the words of docs/audit.md.
const (
	// Modified: the record does not verify (a changed byte).
	Modified ProblemKind = "modified"
	// Deleted: records are missing inside a file.
	Deleted ProblemKind = "deleted"
	// Inserted: a line that is not the next record of the chain (forged,
	// or a copy of an earlier record).
	Inserted ProblemKind = "inserted"
	// Reordered: the record appears later in the log than it should.
	Reordered ProblemKind = "reordered"
	// Truncated: the log ends early (incomplete last line, empty file,
	// records missing at the end of a file or after what a checkpoint
	// says exists).
	Truncated ProblemKind = "truncated"
	// MissingFile: a file of a rotated set was not given or was removed.
	MissingFile ProblemKind = "missing_file"
)

// TamperError describes the first problem Verify found. It matches
// ErrTampered.
type TamperError struct {
	Kind ProblemKind
	// Record is the sequence number of the first record affected (the
	// record that should be at File:Line).
	Record uint64
	// File and Line locate the problem (Line 0: the file as a whole).
	File   string
	Line   int
	Detail string
}

// Error implements error: the problem, file, line and record.
func (e *TamperError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return fmt.Sprintf("%s: record %d %s: %s", loc, e.Record, e.Kind, e.Detail)
}

// Unwrap makes a TamperError match ErrTampered.
func (e *TamperError) Unwrap() error { return ErrTampered }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Checkpoints is a checkpoint file (Config.CheckpointPath) to check the
	// log against; empty for none.
	Checkpoints string
	// Partial accepts a set whose first record is not record 1 (older files
	// removed by retention); the chain is verified from there on.
	Partial bool
}

// VerifyResult summarises a verified log.
type VerifyResult struct {
	// Records is the number of records verified, FirstSeq and LastSeq
	// their sequence numbers.
	Records           uint64
	FirstSeq, LastSeq uint64
	// Files are the files in chain order.
	Files []string
	// Checkpoints counts checkpoint records in the log; External those
	// checked from the checkpoint file.
	Checkpoints int
	External    int
	// Closed reports that the last record is a final checkpoint (the
	// writer closed the log cleanly).
	Closed bool
	// Warnings are oddities that do not break the chain (renamed files).
	Warnings []string
}

// Verify checks a log (one file or a rotated set, in any order) against
// the audit key: every record's MAC, the sequence, the chain across files,
// checkpoints, and the checkpoint file if given. It stops at the first
// problem and returns it as a *TamperError (matching ErrTampered); a log
// written with another key returns ErrWrongKey; an unusable key
// ErrKeyUnavailable; unreadable files their *os.PathError.
func Verify(ctx context.Context, keys KeySource, paths []string, opts VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	if len(paths) == 0 {
		return res, errors.New("audit: no files to verify")
	}
	key, err := fetchKey(ctx, keys)
	if err != nil {
		return res, err
	}
	files, err := orderFiles(paths)
	if err != nil {
		return res, err
	}
	res.Files = files
	v := &verifier{key: key, s: newSealer(key), in: newLines(files), opts: opts, res: &res,
		ckpts: map[uint64]string{}}
	defer v.in.close()
	if err := v.run(ctx); err != nil {
		return res, err
	}
	if opts.Checkpoints != "" {
		if err := v.external(opts.Checkpoints); err != nil {
			return res, err
		}
	}
	return res, nil
}

type verifier struct {
	key  chainKey
	s    *sealer
	in   *lines
	opts VerifyOptions
	res  *VerifyResult

	expected uint64 // next sequence number; 0 before the first record
	prev     string // MAC of record expected-1
	prevFile string // file of record expected-1
	lastType Type
	lastFile string
	ckpts    map[uint64]string // checkpoint seq → MAC
	// closedFinal is set while the last checkpoint seen is final.
	closedFinal bool
}

func (v *verifier) tamper(kind ProblemKind, it item, format string, args ...any) error {
	rec := v.expected
	if rec == 0 {
		rec = 1
	}
	return &TamperError{Kind: kind, Record: rec, File: it.file, Line: it.lineNo, Detail: fmt.Sprintf(format, args...)}
}

func (v *verifier) run(ctx context.Context) error {
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		it, err := v.in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := v.record(it); err != nil {
			return err
		}
	}
	if v.res.Records == 0 {
		return &TamperError{Kind: Truncated, Record: 1, File: v.res.Files[0], Detail: "no records"}
	}
	v.res.Closed = v.lastType == TypeCheckpoint && v.closedFinal
	return nil
}

func (v *verifier) record(it item) error {
	if it.empty {
		return v.tamper(Truncated, it, "the file is empty")
	}
	if it.partial {
		return v.tamper(Truncated, it, "the last line is incomplete")
	}
	mac, ok := v.s.check(it.line)
	if !ok {
		h, perr := parseHeader(it.line)
		return v.bad(it, h, perr)
	}
	h, perr := parseSealed(it.line)
	if perr != nil {
		return v.bad(it, h, perr)
	}
	if v.expected == 0 {
		v.expected, v.prev = 1, ""
		if h.Seq != 1 {
			if !v.opts.Partial {
				prevFile := ""
				if h.FileStart != nil {
					prevFile = h.FileStart.PrevFile
				}
				return &TamperError{Kind: MissingFile, Record: 1, File: it.file, Line: it.lineNo,
					Detail: fmt.Sprintf("the set starts at record %d; records 1 to %d are missing (earlier file %q not given; use --partial if it was removed on purpose)", h.Seq, h.Seq-1, prevFile)}
			}
			v.expected, v.prev = h.Seq, h.Prev
		}
		v.res.FirstSeq = h.Seq
	}
	switch {
	case h.Seq == v.expected && h.Prev == v.prev:
	case h.Seq == v.expected:
		return v.tamper(Modified, it, "does not chain to record %d (prev MAC differs)", v.expected-1)
	case h.Seq < v.expected:
		return v.tamper(Inserted, it, "a copy of record %d appears where record %d belongs", h.Seq, v.expected)
	default:
		return v.gap(it, h)
	}
	if it.first && h.FileStart != nil && h.FileStart.File != "-" && chainName(h.FileStart.File) != chainName(filepath.Base(it.file)) {
		// A log's files may be archived (renamed within their chain), not
		// moved to another chain: one log copied over another verifies
		// with the shared key, but its header names the log it was.
		return v.tamper(Inserted, it, "the file was written as %q, a file of another log (%s)", h.FileStart.File, chainName(h.FileStart.File))
	}
	if it.first && h.Seq != v.res.FirstSeq {
		if h.FileStart == nil {
			v.warn("%s does not begin with a file_start record", it.file)
		} else if h.FileStart.PrevFile != base(v.prevFile) {
			v.warn("%s says the previous file is %q, but it is %q (renamed?)", it.file, h.FileStart.PrevFile, base(v.prevFile))
		}
	}
	if h.Checkpoint != nil {
		if h.Checkpoint.Records != h.Seq-1 || h.Checkpoint.Head != h.Prev {
			return v.tamper(Modified, it, "checkpoint contradicts the chain")
		}
		v.ckpts[h.Seq] = string(mac)
		v.res.Checkpoints++
		v.closedFinal = h.Checkpoint.Final
	}
	v.res.Records++
	v.res.LastSeq = h.Seq
	v.lastType, v.prevFile, v.lastFile = h.Type, it.file, it.file
	v.expected, v.prev = h.Seq+1, string(mac)
	return nil
}

// bad classifies a line that does not verify: a forged line followed by
// the expected record was inserted; otherwise the record was modified.
func (v *verifier) bad(it item, h header, perr error) error {
	if v.expected == 0 && h.FileStart != nil && h.FileStart.KeyID != "" && h.FileStart.KeyID != v.key.id {
		return fmt.Errorf("audit: %s: key id %s, the given key is %s: %w", it.file, h.FileStart.KeyID, v.key.id, ErrWrongKey)
	}
	bad := it
	bad.line = nil
	next, err := v.in.next()
	if err == nil && !next.empty && !next.partial {
		if mac, ok := v.s.check(next.line); ok {
			if nh, err := parseSealed(next.line); err == nil && mac != nil {
				exp := max(v.expected, 1)
				if nh.Seq == exp && (v.expected == 0 || nh.Prev == v.prev) {
					return v.tamper(Inserted, bad, "a line that is not part of the chain was inserted before record %d", exp)
				}
			}
		}
	}
	if perr != nil {
		return v.tamper(Modified, bad, "not a valid record: %v", perr)
	}
	return v.tamper(Modified, bad, "MAC does not verify")
}

// gap classifies a record whose sequence number is ahead of the expected.
func (v *verifier) gap(it item, h header) error {
	missing := fmt.Sprintf("records %d to %d", v.expected, h.Seq-1)
	if h.Seq-1 == v.expected {
		missing = fmt.Sprintf("record %d", v.expected)
	}
	if it.first && h.FileStart != nil && it.file != v.lastFile {
		if h.FileStart.PrevFile == base(v.lastFile) {
			return &TamperError{Kind: Truncated, Record: v.expected, File: v.lastFile,
				Detail: fmt.Sprintf("%s missing from the end of the file (%s continues at record %d)", missing, base(it.file), h.Seq)}
		}
		return v.tamper(MissingFile, it, "%s missing: file %q (the one before %s) was not given or was removed", missing, h.FileStart.PrevFile, base(it.file))
	}
	where := it
	where.line = nil
	for {
		nx, err := v.in.next()
		if err != nil {
			break
		}
		if nx.empty || nx.partial {
			continue
		}
		if _, ok := v.s.check(nx.line); !ok {
			continue
		}
		if nh, err := parseSealed(nx.line); err == nil && nh.Seq == v.expected {
			return v.tamper(Reordered, where, "record %d appears later, at %s:%d", v.expected, nx.file, nx.lineNo)
		}
	}
	return v.tamper(Deleted, where, "%s missing", missing)
}

func (v *verifier) warn(format string, args ...any) {
	v.res.Warnings = append(v.res.Warnings, fmt.Sprintf(format, args...))
}

// external checks the log against a checkpoint file: each checkpoint must
// verify, and the log must contain it unchanged.
func (v *verifier) external(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
		}
		if line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		mac, ok := v.s.check(line)
		h, perr := parseHeader(line)
		if !ok || perr != nil || h.Checkpoint == nil {
			return &TamperError{Kind: Modified, Record: h.Seq, File: path, Line: n, Detail: "checkpoint file line does not verify"}
		}
		v.res.External++
		switch {
		case h.Seq > v.res.LastSeq:
			return &TamperError{Kind: Truncated, Record: v.res.LastSeq + 1, File: v.lastFile,
				Detail: fmt.Sprintf("the log ends at record %d but checkpoint file %s:%d says %d records exist", v.res.LastSeq, base(path), n, h.Seq)}
		case h.Seq < v.res.FirstSeq:
			// before the verified part (partial set)
		case v.ckpts[h.Seq] != string(mac):
			return &TamperError{Kind: Modified, Record: h.Seq, File: v.lastFile,
				Detail: fmt.Sprintf("record %d differs from checkpoint file %s:%d", h.Seq, base(path), n)}
		}
	}
}
