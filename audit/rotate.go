package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Rotation renames the active file (e.g. audit.jsonl) to
// audit-<last seq, 20 digits>.jsonl, so names sort in chain order and a
// glob such as audit*.jsonl lists the archives before the active file,
// then creates a new active file whose first record is a file_start naming
// the archive; its Prev is the archive's last hash.

const seqDigits = 20

// archiveName is the name path is renamed to when it ends at record last.
func archiveName(path string, last uint64) string {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	return filepath.Join(dir, fmt.Sprintf("%s-%0*d%s", stem, seqDigits, last, ext))
}

// archives returns the archived files of path in chain order.
func archives(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, stem+"-") || !strings.HasSuffix(n, ext) {
			continue
		}
		digits := strings.TrimSuffix(strings.TrimPrefix(n, stem+"-"), ext)
		if len(digits) != seqDigits {
			continue
		}
		if _, err := strconv.ParseUint(digits, 10, 64); err != nil {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	slices.Sort(out)
	return out, nil
}

// resume opens the active file, continuing the chain from its last record,
// or from the newest archive, or from nothing.
func (w *Writer) resume() error {
	w.name = w.cfg.Path
	w.opened = w.now()
	fi, err := os.Stat(w.name)
	switch {
	case err == nil && fi.Size() > 0:
		if err := w.loadTail(w.name); err != nil {
			return err
		}
		w.size = fi.Size()
		w.sink, err = w.open(w.name, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: open %s: %w", w.name, err)
		}
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("audit: %w", err)
	}
	arch, err := archives(w.name)
	if err != nil {
		return fmt.Errorf("audit: list archives: %w", err)
	}
	prevFile, reason := "", ReasonNew
	w.logID, w.from = newLogID(), 1
	if len(arch) > 0 {
		last := arch[len(arch)-1]
		if err := w.loadTail(last); err != nil {
			return err
		}
		prevFile, reason = filepath.Base(last), ReasonResume
	}
	w.sink, err = w.open(w.name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", w.name, err)
	}
	if err := w.syncDir(); err != nil {
		return err
	}
	_, _, err = w.appendLocked(&Record{Type: TypeFileStart, FileStart: w.fileStart(prevFile, reason)})
	return err
}

// loadTail sets the chain state from the last record of file, whose hash
// must match, and the chain's identity from the file's first record.
func (w *Writer) loadTail(file string) error {
	start, err := firstFileStart(file)
	if err != nil {
		return err
	}
	if start.Format != FormatVersion || start.Log == "" {
		return fmt.Errorf("audit: %s was written in format %q; this release writes %s: move the log, its archives and its checkpoint file aside (verify them with the release that wrote them) to start a new log: %w",
			file, start.Format, FormatVersion, ErrMalformed)
	}
	line, err := lastLine(file)
	if err != nil {
		return err
	}
	sum, ok := w.seal.check(line)
	if !ok {
		return fmt.Errorf("audit: the last record of %s is damaged or was modified (run pgpseudo audit verify): %w", file, ErrMalformed)
	}
	h, err := parseSealed(line)
	if err != nil {
		return fmt.Errorf("audit: %s: last record: %w: %w", file, ErrMalformed, err)
	}
	w.seq, w.head, w.lastCkpt, w.logID, w.from = h.Seq, string(sum), 0, start.Log, h.Seq+1
	if h.Type == TypeCheckpoint {
		w.lastCkpt = h.Seq
	}
	w.written.Store(h.Seq)
	w.markSynced(h.Seq)
	return nil
}

// firstFileStart returns the file_start record that begins file.
func firstFileStart(file string) (FileStart, error) {
	h, err := firstHeader(file)
	if err != nil {
		return FileStart{}, fmt.Errorf("audit: %w", err)
	}
	if h.FileStart == nil {
		return FileStart{}, fmt.Errorf("audit: %s does not begin with a file_start record: %w", file, ErrMalformed)
	}
	return *h.FileStart, nil
}

// lastLine returns the last line of file without its newline, reading
// backwards; a file not ending in a newline is a torn tail.
func lastLine(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	end := fi.Size()
	var last [1]byte
	if end == 0 {
		return nil, fmt.Errorf("audit: %s is empty: %w", file, ErrTornTail)
	}
	if _, err := f.ReadAt(last[:], end-1); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if last[0] != '\n' {
		return nil, fmt.Errorf("audit: %s (move it aside after running pgpseudo audit verify): %w", file, ErrTornTail)
	}
	end--
	var line []byte
	for pos := end; pos > 0; {
		n := min(pos, 64<<10)
		chunk := make([]byte, n)
		if _, err := f.ReadAt(chunk, pos-n); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return append(chunk[i+1:], line...), nil
		}
		line = append(chunk, line...)
		pos -= n
		if len(line) > maxLineLen {
			return nil, fmt.Errorf("audit: %s: the last line is longer than %d MiB: %w", file, maxLineLen>>20, ErrMalformed)
		}
	}
	return line, nil
}

// maybeRotate rotates the active file when it is due.
func (w *Writer) maybeRotate() error {
	if w.name == Stdout || w.size == 0 {
		return nil
	}
	switch {
	case w.cfg.RotateSize > 0 && w.size >= int64(w.cfg.RotateSize):
		return w.rotate(ReasonRotateSize)
	case w.cfg.RotateInterval > 0 && w.now().Sub(w.opened) >= w.cfg.RotateInterval:
		return w.rotate(ReasonRotateTime)
	}
	return nil
}

// rotate syncs and archives the active file and starts a new one whose
// file_start continues the chain. Called with w.mu held. A failure breaks
// the writer: the chain's next file cannot be trusted to exist.
func (w *Writer) rotate(reason string) error {
	w.fileMu.Lock()
	err := w.rotateFile()
	w.fileMu.Unlock()
	if err != nil {
		w.broken = fmt.Errorf("%w: rotate: %w", ErrSinkFailed, err)
		return w.broken
	}
	w.log.Info("audit log rotated", zap.String("reason", reason), zap.Uint64("seq", w.seq))
	_, _, err = w.appendLocked(&Record{Type: TypeFileStart, FileStart: w.fileStart(filepath.Base(archiveName(w.name, w.seq)), reason)})
	return err
}

func (w *Writer) rotateFile() error {
	if err := w.sink.Sync(); err != nil {
		return err
	}
	w.markSynced(w.seq)
	if err := w.sink.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.name, archiveName(w.name, w.seq)); err != nil {
		return err
	}
	f, err := w.open(w.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	w.sink, w.size, w.opened = f, 0, w.now()
	return w.syncDir()
}

// syncDir makes a created or renamed file's directory entry durable.
func (w *Writer) syncDir() error {
	if w.cfg.Fsync == FsyncNever {
		return nil
	}
	d, err := os.Open(filepath.Dir(w.name))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync directory: %w", err)
	}
	return nil
}
