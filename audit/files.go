package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// orderFiles sorts a rotated set into chain order by the sequence number
// of each file's first record. If a first record cannot be read (an empty
// or damaged file) the set is ordered by name instead: archives by the
// sequence number in their name, other files last; the verifier then
// reports the damage where it is.
func orderFiles(paths []string) ([]string, error) {
	keys := make(map[string]uint64, len(paths))
	byName := false
	for _, p := range paths {
		// A named pipe or device would block the reader forever.
		if fi, err := os.Stat(p); err != nil {
			return nil, err
		} else if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrMalformed, p)
		}
		seq, err := firstSeq(p)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return nil, err
			}
			byName = true
		}
		keys[p] = seq
	}
	if byName {
		for _, p := range paths {
			keys[p] = nameSeq(p)
		}
	}
	out := slices.Clone(paths)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(keys[a], keys[b]) })
	return out, nil
}

// nameSeq returns the last sequence number an archive's name carries, or
// the largest number for other names (the active file).
func nameSeq(p string) uint64 {
	b := filepath.Base(p)
	b = strings.TrimSuffix(b, filepath.Ext(b))
	if i := strings.LastIndexByte(b, '-'); i >= 0 && len(b)-i-1 == seqDigits {
		if n, err := strconv.ParseUint(b[i+1:], 10, 64); err == nil {
			return n
		}
	}
	return math.MaxUint64
}

func firstSeq(path string) (uint64, error) {
	h, err := firstHeader(path)
	if err != nil {
		return 0, err
	}
	if h.Seq == 0 {
		return 0, fmt.Errorf("%w: %s: first line", ErrMalformed, path)
	}
	return h.Seq, nil
}

// firstHeader parses the header of a file's first line (not verified).
func firstHeader(path string) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadSlice('\n')
	if err != nil {
		return header{}, fmt.Errorf("%w: %s: first line: %w", ErrMalformed, path, err)
	}
	h, err := parseHeader(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		return header{}, fmt.Errorf("%w: %s: first line", ErrMalformed, path)
	}
	return h, nil
}

// maxLineLen bounds a line: every record field is bounded, so no record
// comes near it.
const maxLineLen = 16 << 20

// item is one line of a set of files.
type item struct {
	line    []byte // without the newline; valid until the next call
	file    string
	lineNo  int  // 1-based within file
	first   bool // first line of its file
	partial bool // last line of its file, without a newline
	empty   bool // the file has no lines at all (line is nil)
}

// lines reads the lines of files one after the other.
type lines struct {
	files  []string
	i      int
	f      *os.File
	r      *bufio.Reader
	lineNo int
	acc    []byte
}

func newLines(files []string) *lines {
	return &lines{files: files, i: -1, r: bufio.NewReaderSize(nil, 1<<20)}
}

// next returns the next line; io.EOF after the last one.
func (l *lines) next() (item, error) {
	for {
		if l.f == nil {
			l.i++
			if l.i >= len(l.files) {
				return item{}, io.EOF
			}
			f, err := os.Open(l.files[l.i])
			if err != nil {
				return item{}, err
			}
			l.f, l.lineNo = f, 0
			l.r.Reset(f)
		}
		it, err := l.read()
		if err == io.EOF {
			l.f.Close()
			l.f = nil
			if l.lineNo == 0 {
				l.lineNo = -1
				return item{file: l.files[l.i], empty: true, first: true}, nil
			}
			continue
		}
		return it, err
	}
}

func (l *lines) read() (item, error) {
	line, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.acc = append(l.acc[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = l.r.ReadSlice('\n')
			l.acc = append(l.acc, line...)
			if len(l.acc) > maxLineLen {
				// Records are bounded; a longer line is not one.
				return item{}, fmt.Errorf("%w: %s:%d: a line longer than %d MiB", ErrMalformed, l.files[l.i], l.lineNo+1, maxLineLen>>20)
			}
		}
		line = l.acc
	}
	if err != nil && err != io.EOF {
		return item{}, err
	}
	if len(line) == 0 {
		return item{}, io.EOF
	}
	l.lineNo++
	it := item{file: l.files[l.i], lineNo: l.lineNo, first: l.lineNo == 1}
	if line[len(line)-1] == '\n' {
		it.line = line[:len(line)-1]
	} else {
		it.line, it.partial = line, true
	}
	return it, nil
}

func (l *lines) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

func base(p string) string { return filepath.Base(p) }

// Chains groups log files by the chain they belong to: a log and its
// archives (audit.jsonl, audit-<20 digits>.jsonl) are one chain, and a
// command's log beside it (audit-detokenize.jsonl, audit-keys.jsonl) with
// its archives another, so a glob such as audit*.jsonl never verifies one
// chain's records as another's. Chains come in the order of their first
// file in paths.
func Chains(paths []string) [][]string {
	var order []string
	byChain := map[string][]string{}
	for _, p := range paths {
		c := chainName(p)
		if _, ok := byChain[c]; !ok {
			order = append(order, c)
		}
		byChain[c] = append(byChain[c], p)
	}
	out := make([][]string, 0, len(order))
	for _, c := range order {
		out = append(out, byChain[c])
	}
	return out
}

// chainName is a file's path without an archive's sequence suffix.
func chainName(p string) string {
	ext := filepath.Ext(p)
	b := strings.TrimSuffix(p, ext)
	if i := strings.LastIndexByte(b, '-'); i >= 0 && len(b)-i-1 == seqDigits && strings.IndexByte(filepath.Base(b), '-') >= 0 {
		if _, err := strconv.ParseUint(b[i+1:], 10, 64); err == nil {
			b = b[:i]
		}
	}
	return b + ext
}

// ChainName is the active file's path of the chain a log file belongs to
// (an archive's name without its sequence suffix).
func ChainName(p string) string { return chainName(p) }

// IsArchive reports whether a file name is a rotated archive's
// (<name>-<20-digit sequence>.jsonl).
func IsArchive(p string) bool { return chainName(p) != p }

// CheckpointChain returns the index of the chain a checkpoint file
// belongs to: the one holding the active file its records name. A
// checkpoint file checked against another log would prove nothing about
// the log it was written for.
func CheckpointChain(path string, chains [][]string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadSlice('\n')
	if err != nil && len(line) == 0 {
		return 0, fmt.Errorf("%w: checkpoint file %s is empty", ErrMalformed, path)
	}
	h, err := parseHeader(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil || h.Checkpoint == nil {
		return 0, fmt.Errorf("%w: checkpoint file %s: its first line is not a checkpoint", ErrMalformed, path)
	}
	want := chainName(filepath.Base(h.Checkpoint.File))
	for i, c := range chains {
		if chainName(filepath.Base(c[0])) == want {
			return i, nil
		}
	}
	return 0, fmt.Errorf("checkpoint file %s belongs to log %s, which is not among the files given", path, want)
}
