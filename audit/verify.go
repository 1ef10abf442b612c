package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	// Rewritten: a signed checkpoint does not match the chain it covers;
	// the records before it were changed, removed or inserted and the
	// hashes recomputed (or the signature does not verify).
	Rewritten ProblemKind = "rewritten"
	// Unsigned: no record is covered by a valid signed checkpoint, so
	// nothing in the log is proven to come from the proxy.
	Unsigned ProblemKind = "unsigned"
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
	// Log is the chain's identity.
	Log string `json:"log"`
	// Records is the number of records verified, FirstSeq and LastSeq
	// their sequence numbers.
	Records  uint64 `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// SignedThrough is the last record covered by a valid signed
	// checkpoint; the records after it (Unsigned of them) are only
	// chained, not proven: the writer is running or crashed, or someone
	// else appended them.
	SignedThrough uint64 `json:"signed_through"`
	Unsigned      uint64 `json:"unsigned"`
	// Gaps are runs of records inside the log that no signature covers:
	// written after the last checkpoint before a writer restarted (a
	// crash), or added by someone else while no writer ran. A restarted
	// writer never signs what it finds.
	Gaps []Gap `json:"gaps,omitempty"`
	// Files are the files in chain order.
	Files []string `json:"files"`
	// Checkpoints counts signed checkpoint records in the log; External
	// those read from the checkpoint file; SigningKeys the key ids that
	// signed them.
	Checkpoints int      `json:"checkpoints"`
	External    int      `json:"external"`
	SigningKeys []string `json:"signing_keys"`
	// Closed reports that the last record is a signed final checkpoint
	// (the writer closed the log cleanly).
	Closed bool `json:"closed"`
	// Warnings are oddities that do not break the chain (renamed files).
	Warnings []string `json:"warnings,omitempty"`
}

// Gap is a run of unsigned records (checkpoint records not counted).
type Gap struct {
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	Records uint64 `json:"records"`
}

// verifyWindow is how many recent record hashes the verifier keeps to
// check checkpoints against (a checkpoint is appended at most
// maxCheckpointLag records after the one it covers).
const verifyWindow = 1 << 16

// Verify checks a log (one file or a rotated set, in any order) with the
// public keys of its checkpoint signer: every record's hash, the
// sequence, the chain across files, every checkpoint's signature against
// the chain it covers, and the checkpoint file if given. No secret is
// needed. It stops at the first problem and returns it as a *TamperError
// (matching ErrTampered); a checkpoint signed by a key not in keys returns
// an error matching ErrWrongKey; unreadable files their *os.PathError.
func Verify(ctx context.Context, keys PublicKeys, paths []string, opts VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	if len(paths) == 0 {
		return res, errors.New("audit: no files to verify")
	}
	if len(keys) == 0 {
		return res, fmt.Errorf("%w: no public key to verify checkpoints with", ErrKeyUnavailable)
	}
	files, err := orderFiles(paths)
	if err != nil {
		return res, err
	}
	res.Files = files
	v := &verifier{keys: keys, s: newSealer(), in: newLines(files), opts: opts, res: &res,
		window: make([]windowEntry, verifyWindow), signers: map[string]bool{}}
	defer v.in.close()
	if opts.Checkpoints != "" {
		if err := v.readExternal(opts.Checkpoints); err != nil {
			return res, err
		}
	}
	if err := v.run(ctx); err != nil {
		return res, err
	}
	if err := v.finish(); err != nil {
		return res, err
	}
	return res, nil
}

type windowEntry struct {
	seq uint64
	sum [hashHexLen]byte
	// closing marks a checkpoint record covering every record before
	// it: a run's last checkpoint, the one record between two runs that
	// needs no signature.
	closing bool
}

// external is a checkpoint read from the checkpoint file.
type external struct {
	c      *Checkpoint
	lineNo int
}

type verifier struct {
	keys PublicKeys
	s    *sealer
	in   *lines
	opts VerifyOptions
	res  *VerifyResult

	expected uint64 // next sequence number; 0 before the first record
	prev     string // hash of record expected-1
	prevFile string // file of record expected-1
	lastType Type
	lastFile string
	logID    string
	window   []windowEntry // hashes of recent records by seq % verifyWindow
	ext      map[uint64]external
	extMax   uint64            // highest record a checkpoint file entry covers
	signed   uint64            // last record covered by the signatures so far
	anySig   bool              // a checkpoint verified
	inLog    map[uint64]string // checkpoints in the log: covered record → file:line
	signers  map[string]bool
	// closedFinal is set while the last record is a signed final
	// checkpoint.
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

// finish checks what only the end of the log can tell: the checkpoint
// file's later entries, and whether anything is signed at all.
func (v *verifier) finish() error {
	if v.ext != nil && v.extMax > v.res.LastSeq {
		return &TamperError{Kind: Truncated, Record: v.res.LastSeq + 1, File: v.lastFile,
			Detail: fmt.Sprintf("the log ends at record %d but a checkpoint signed in %s:%d covers record %d: records were cut off the end",
				v.res.LastSeq, base(v.opts.Checkpoints), v.ext[v.extMax].lineNo, v.extMax)}
	}
	if v.ext != nil && len(v.ext) == 0 {
		return &TamperError{Kind: Truncated, Record: v.res.FirstSeq, File: v.opts.Checkpoints,
			Detail: "the checkpoint file is empty, but the writer puts every checkpoint in it, the first when the log is created"}
	}
	if v.ext != nil {
		// The log's checkpoints up to the file's last one must all be in
		// it; later ones may be missing (an older copy of the file, or a
		// writer that stopped between the two writes).
		for rec, at := range v.inLog {
			if _, ok := v.ext[rec]; !ok && rec < v.extMax {
				return &TamperError{Kind: Truncated, Record: rec, File: v.opts.Checkpoints,
					Detail: fmt.Sprintf("the checkpoint at %s covering record %d is not in the checkpoint file: lines were removed from it (or the writer stopped between the two writes)", at, rec)}
			}
		}
	}
	v.res.Log = v.logID
	v.res.SignedThrough = v.signed
	_, v.res.Unsigned = v.dataRun(v.signed+1, v.res.LastSeq)
	for id := range v.signers {
		v.res.SigningKeys = append(v.res.SigningKeys, id)
	}
	slices.Sort(v.res.SigningKeys)
	for _, g := range v.res.Gaps {
		v.warn("records %d…%d (%d) are not covered by any signature: written after the last checkpoint before the writer restarted (a crash), or added by someone else while it was not running", g.From, g.To, g.Records)
	}
	if !v.anySig {
		return &TamperError{Kind: Unsigned, Record: v.res.FirstSeq, File: v.res.Files[0],
			Detail: fmt.Sprintf("no signed checkpoint covers any of the %d records: nothing proves they were written by the proxy", v.res.Records)}
	}
	return nil
}

func (v *verifier) record(it item) error {
	if it.empty {
		return v.tamper(Truncated, it, "the file is empty")
	}
	if it.partial {
		return v.tamper(Truncated, it, "the last line is incomplete")
	}
	sum, ok := v.s.check(it.line)
	if !ok {
		h, perr := parseHeader(it.line)
		return v.bad(it, h, perr)
	}
	h, perr := parseSealed(it.line)
	if perr != nil {
		return v.bad(it, h, perr)
	}
	if v.expected == 0 {
		if err := v.begin(it, h); err != nil {
			return err
		}
	}
	switch {
	case h.Seq == v.expected && h.Prev == v.prev:
	case h.Seq == v.expected:
		return v.tamper(Modified, it, "does not chain to record %d (its prev hash differs)", v.expected-1)
	case h.Seq < v.expected:
		return v.tamper(Inserted, it, "a copy of record %d appears where record %d belongs", h.Seq, v.expected)
	default:
		return v.gap(it, h)
	}
	if h.FileStart != nil {
		if err := v.fileStart(it, h); err != nil {
			return err
		}
	}
	if e, ok := v.ext[h.Seq]; ok && e.c.Head != string(sum) {
		return v.tamper(Rewritten, it, "record %d is not the one checkpoint %s:%d signed: the log was rewritten here or before",
			h.Seq, base(v.opts.Checkpoints), e.lineNo)
	}
	v.closedFinal = false
	if h.Checkpoint != nil {
		if err := v.checkpoint(it, h); err != nil {
			return err
		}
	}
	w := &v.window[h.Seq%verifyWindow]
	w.seq, w.closing = h.Seq, h.Checkpoint != nil && h.Checkpoint.Records == h.Seq-1
	copy(w.sum[:], sum)
	v.res.Records++
	v.res.LastSeq = h.Seq
	v.lastType, v.prevFile, v.lastFile = h.Type, it.file, it.file
	v.expected, v.prev = h.Seq+1, string(sum)
	return nil
}

// begin sets up the chain from its first record.
func (v *verifier) begin(it item, h header) error {
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
	v.signed = h.Seq - 1
	if h.FileStart == nil {
		return v.tamper(Modified, it, "the log does not begin with a file_start record")
	}
	if h.FileStart.Format != FormatVersion {
		return fmt.Errorf("audit: %s is in format %q; this release verifies %s (verify it with the release that wrote it): %w", it.file, h.FileStart.Format, FormatVersion, ErrMalformed)
	}
	v.logID = h.FileStart.Log
	for seq, e := range v.ext {
		if e.c.Log != v.logID {
			return &TamperError{Kind: Inserted, Record: seq, File: v.opts.Checkpoints, Line: e.lineNo,
				Detail: fmt.Sprintf("the checkpoint file holds a checkpoint of another log (%s; this log is %s)", e.c.Log, v.logID)}
		}
	}
	return nil
}

// fileStart checks a file_start record against the chain.
func (v *verifier) fileStart(it item, h header) error {
	fs := h.FileStart
	if fs.Log != v.logID {
		return v.tamper(Inserted, it, "the file belongs to another log (%s; this log is %s)", fs.Log, v.logID)
	}
	if it.first && fs.File != "-" && chainName(fs.File) != chainName(filepath.Base(it.file)) {
		// A log's files may be archived (renamed within their chain), not
		// moved to another chain.
		return v.tamper(Inserted, it, "the file was written as %q, a file of another log (%s)", fs.File, chainName(fs.File))
	}
	if it.first && h.Seq != v.res.FirstSeq && fs.PrevFile != base(v.prevFile) {
		v.warn("%s says the previous file is %q, but it is %q (renamed?)", it.file, fs.PrevFile, base(v.prevFile))
	}
	if !it.first {
		return v.tamper(Inserted, it, "a file_start record in the middle of a file")
	}
	return nil
}

// checkpoint checks a checkpoint record: its log, its signature, and that
// the record it covers is the one in the chain.
func (v *verifier) checkpoint(it item, h header) error {
	c := h.Checkpoint
	if c.Log != v.logID {
		return v.tamper(Inserted, it, "a checkpoint of another log (%s; this log is %s)", c.Log, v.logID)
	}
	if err := checkSignature(v.keys, c); err != nil {
		if errors.Is(err, ErrWrongKey) {
			return fmt.Errorf("audit: %s:%d: checkpoint %s: %w", it.file, it.lineNo, err.Error(), ErrWrongKey)
		}
		return v.tamper(Rewritten, it, "the checkpoint's signature does not verify: it was forged or altered")
	}
	if c.Records >= h.Seq || h.Seq-c.Records > verifyWindow {
		return v.tamper(Rewritten, it, "the checkpoint covers record %d, which cannot precede it here", c.Records)
	}
	if c.From == 0 || c.From > c.Records+1 {
		return v.tamper(Rewritten, it, "the checkpoint covers records %d to %d, which is not a range", c.From, c.Records)
	}
	if c.Final && c.Records != h.Seq-1 {
		return v.tamper(Rewritten, it, "a final checkpoint that does not cover the record before it")
	}
	switch w := v.window[c.Records%verifyWindow]; {
	case c.Records < v.res.FirstSeq:
		// covers a record before the verified part (a partial set)
	case w.seq != c.Records || string(w.sum[:]) != c.Head:
		return v.tamper(Rewritten, it, "record %d is not the one this checkpoint signed: the records up to it were changed, removed or inserted and the hashes recomputed", c.Records)
	default:
		if c.From > v.signed+1 {
			// The writer restarted and vouches only for its own records:
			// what lay between is unsigned.
			if first, n := v.dataRun(v.signed+1, c.From-1); n > 0 {
				v.res.Gaps = append(v.res.Gaps, Gap{From: first, To: c.From - 1, Records: n})
			}
		}
		v.signed = max(v.signed, c.Records)
		v.anySig = true
		if v.inLog == nil {
			v.inLog = map[uint64]string{}
		}
		v.inLog[c.Records] = fmt.Sprintf("%s:%d", base(it.file), it.lineNo)
	}
	v.signers[c.KeyID] = true
	v.res.Checkpoints++
	v.closedFinal = c.Final
	return nil
}

// bad classifies a line that does not verify: a forged line followed by
// the expected record was inserted; otherwise the record was modified.
func (v *verifier) bad(it item, h header, perr error) error {
	if v.expected == 0 && h.FileStart != nil && h.FileStart.Format != FormatVersion {
		return fmt.Errorf("audit: %s is in format %q; this release verifies %s (verify it with the release that wrote it): %w", it.file, h.FileStart.Format, FormatVersion, ErrMalformed)
	}
	bad := it
	bad.line = nil
	next, err := v.in.next()
	if err == nil && !next.empty && !next.partial {
		if sum, ok := v.s.check(next.line); ok {
			if nh, err := parseSealed(next.line); err == nil && sum != nil {
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
	return v.tamper(Modified, bad, "its hash does not match its content (the record was changed)")
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

// dataRun counts the records in [from, to] no signature covers and
// returns the first of them. Only a checkpoint at from that covers every
// record before it (the previous run's last one) needs none; any other
// record counts, checkpoints included: a copied checkpoint is not
// activity, but it would claim the proxy ran. Records older than the
// window count.
func (v *verifier) dataRun(from, to uint64) (first, n uint64) {
	for seq := from; seq <= to && seq != 0; seq++ {
		if w := v.window[seq%verifyWindow]; w.seq != seq || !(w.closing && seq == from) {
			if n == 0 {
				first = seq
			}
			n++
		}
	}
	return first, n
}

func (v *verifier) warn(format string, args ...any) {
	v.res.Warnings = append(v.res.Warnings, fmt.Sprintf(format, args...))
}

// readExternal reads the checkpoint file: each line a checkpoint record
// copied from the log, whose signature must verify. The log is then
// checked against them as it is read.
func (v *verifier) readExternal(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	v.ext = map[uint64]external{}
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		_, ok := v.s.check(line)
		h, perr := parseHeader(line)
		if !ok || perr != nil || h.Checkpoint == nil {
			return &TamperError{Kind: Modified, Record: h.Seq, File: path, Line: n, Detail: "the checkpoint file's line is damaged or was changed"}
		}
		c := h.Checkpoint
		if err := checkSignature(v.keys, c); err != nil {
			if errors.Is(err, ErrWrongKey) {
				return fmt.Errorf("audit: %s:%d: checkpoint %s: %w", path, n, err.Error(), ErrWrongKey)
			}
			return &TamperError{Kind: Rewritten, Record: c.Records, File: path, Line: n, Detail: "the checkpoint's signature does not verify: it was forged or altered"}
		}
		if e, dup := v.ext[c.Records]; dup && e.c.Head != c.Head {
			return &TamperError{Kind: Rewritten, Record: c.Records, File: path, Line: n,
				Detail: fmt.Sprintf("two signed checkpoints give record %d different hashes (lines %d and %d)", c.Records, e.lineNo, n)}
		}
		v.ext[c.Records] = external{c: c, lineNo: n}
		v.extMax = max(v.extMax, c.Records)
		v.res.External++
	}
}
