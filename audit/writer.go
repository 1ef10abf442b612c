package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Writer appends records to the audit log. It is safe for concurrent use.
// Create it with New and Close it when done.
type Writer struct {
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	open openFunc
	sign Signer

	// mu serialises appends: the chain state, the sink writes, rotation.
	mu       sync.Mutex
	seal     *sealer
	buf      []byte
	seq      uint64 // last sequence number written
	head     string // hash of record seq (hex)
	logID    string // the chain's identity (FileStart.Log)
	from     uint64 // first record this writer wrote (Checkpoint.From)
	sink     sink
	name     string // active file path; Stdout for standard output
	size     int64
	opened   time.Time
	lastCkpt uint64 // seq of the last checkpoint
	// signedThrough is the last record the last checkpoint covers.
	signedThrough uint64
	ckpt          sink  // checkpoint file, or nil
	broken        error // sticky append failure
	closing       bool  // Close is signing the final checkpoint: no more records
	closed        bool
	dropped       uint64 // records lost with on_failure continue
	lastDropLog   time.Time

	// fileMu is held for writing while the sink is swapped or closed and
	// for reading during an fsync, so an fsync never races a rotation.
	fileMu  sync.RWMutex
	written atomic.Uint64 // last seq written to the sink
	// signFailures counts checkpoints the signer could not sign.
	signFailures atomic.Uint64

	// smu guards the durability state (durability.go).
	smu     sync.Mutex
	synced  uint64
	syncing bool
	syncErr error
	wake    chan struct{}

	// tmu guards texts: the fingerprints whose statement_text record is in
	// the active file.
	tmu   sync.Mutex
	texts map[string]struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// maxTexts bounds the fingerprints remembered per file; past it the set
// starts again (a text written twice costs a line, never a wrong answer).
const maxTexts = 1 << 16

// NeedsText reports whether the active file has no statement_text record
// for fingerprint yet: the caller then writes one (StatementText) before
// the statement's record. Concurrent callers may both write it.
func (w *Writer) NeedsText(fingerprint string) bool {
	w.tmu.Lock()
	_, ok := w.texts[fingerprint]
	w.tmu.Unlock()
	return !ok
}

// noteText records what a written record means for NeedsText: a
// statement_text adds its fingerprint, a new file forgets them all.
func (w *Writer) noteText(r *Record) {
	if r.StatementText == nil && r.FileStart == nil {
		return
	}
	w.tmu.Lock()
	defer w.tmu.Unlock()
	if r.FileStart != nil || len(w.texts) >= maxTexts {
		w.texts = nil
	}
	if r.StatementText != nil {
		if w.texts == nil {
			w.texts = map[string]struct{}{}
		}
		w.texts[r.StatementText.Fingerprint] = struct{}{}
	}
}

// seams are the writer's test hooks.
type seams struct {
	now    func() time.Time
	open   openFunc
	stdout io.Writer
}

// New opens the audit log described by cfg (defaults applied, then
// validated), continuing the chain of an existing log, and starts the
// background checkpoint and fsync loops, which run until ctx ends or Close.
// It signs a checkpoint before returning, so a signer that does not work
// fails here. log may be nil.
func New(ctx context.Context, cfg Config, signer Signer, log *zap.Logger) (*Writer, error) {
	return newWriter(ctx, cfg, signer, log, seams{})
}

func newWriter(ctx context.Context, cfg Config, signer Signer, log *zap.Logger, s seams) (*Writer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.open == nil {
		s.open = openFile
	}
	if s.stdout == nil {
		s.stdout = os.Stdout
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no checkpoint signer", ErrKeyUnavailable)
	}
	w := &Writer{cfg: cfg, log: log, now: s.now, open: s.open, sign: signer, seal: newSealer(), wake: make(chan struct{})}
	var err error
	if cfg.CheckpointPath != "" {
		w.ckpt, err = w.open(cfg.CheckpointPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit: open checkpoint file: %w", err)
		}
	}
	if cfg.Path == Stdout {
		w.name, w.sink, w.logID, w.from = Stdout, streamSink{s.stdout}, newLogID(), 1
		if _, _, err = w.appendLocked(&Record{Type: TypeFileStart, FileStart: w.fileStart("", ReasonStart)}); err != nil {
			w.closeFiles()
			return nil, err
		}
	} else if err := w.resume(); err != nil {
		w.closeFiles()
		return nil, err
	}
	w.markSynced(0)
	if _, err := w.checkpoint(ctx, false, true); err != nil {
		if !transient(signer, err) {
			w.closeFiles()
			return nil, err
		}
		w.signFailures.Add(1)
		log.Warn("audit checkpoint cannot be signed now; the log is written and signed by the next checkpoint that can be", zapErr(err))
	}
	bg, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	if cfg.Fsync == FsyncInterval {
		w.wg.Add(1)
		go w.syncLoop(bg)
	}
	if cfg.CheckpointInterval > 0 {
		w.wg.Add(1)
		go w.checkpointLoop(bg)
	}
	return w, nil
}

// WaitsForFsync reports whether Write waits for an fsync (fsync always),
// the only case in which its context matters.
func (w *Writer) WaitsForFsync() bool { return w.cfg.Fsync == FsyncAlways }

// Write appends ev as one record and returns once it is durable per the
// fsync policy: with fsync always after an fsync covering it (shared with
// concurrent writers). If the record cannot be written or synced, Write
// returns an error matching ErrSinkFailed with on_failure refuse; with
// continue it logs the failure and returns nil. An invalid event returns
// ErrInvalidRecord and a closed writer ErrClosed, whatever on_failure says.
// Write does not retain ev.
func (w *Writer) Write(ctx context.Context, ev Event) error {
	_, err := w.write(ctx, ev)
	return err
}

// write is Write returning the record's sequence number (0 if none).
func (w *Writer) write(ctx context.Context, ev Event) (uint64, error) {
	if ev == nil {
		return 0, invalidf("nil event")
	}
	if err := ev.validate(); err != nil {
		return 0, err
	}
	r := Record{Type: ev.recordType()}
	ev.attach(&r)
	seq, err := w.append(&r)
	if err == nil {
		err = w.durable(ctx, seq)
	}
	return seq, w.failed(err, r.Type)
}

// failed applies the on_failure policy to a Write error.
func (w *Writer) failed(err error, t Type) error {
	if err == nil || w.cfg.OnFailure == OnFailureRefuse || !errors.Is(err, ErrSinkFailed) {
		return err
	}
	w.mu.Lock()
	w.dropped++
	dropped := w.dropped
	now := w.now()
	logIt := now.Sub(w.lastDropLog) >= time.Second
	if logIt {
		w.lastDropLog = now
	}
	w.mu.Unlock()
	if logIt {
		w.log.Error("AUDIT LOG FAILURE: record not written, continuing because audit.on_failure is continue",
			zap.String("type", string(t)), zap.Uint64("records_lost", dropped), zapErr(err))
	}
	return nil
}

// usableLocked reports why the writer cannot take a record: closed,
// broken by a failed write, or stopped by a failed fsync.
func (w *Writer) usableLocked() error {
	switch {
	case w.closed, w.closing:
		return ErrClosed
	case w.broken != nil:
		return w.broken
	}
	return w.syncFailed()
}

// append writes r as the next record, rotating first when due.
func (w *Writer) append(r *Record) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return 0, err
	}
	if err := w.maybeRotate(); err != nil {
		return 0, err
	}
	seq, _, err := w.appendLocked(r)
	return seq, err
}

// appendLocked seals r as record w.seq+1 and writes it. On a failed write
// the partial line is cut off again; if that fails too the writer is
// broken. It returns the sequence number and the line (valid until the
// next append).
func (w *Writer) appendLocked(r *Record) (uint64, []byte, error) {
	r.Seq = w.seq + 1
	r.Time = w.now().UTC().Truncate(time.Microsecond)
	r.Prev = w.head
	r.Hash = ""
	line, sum, err := w.seal.seal(w.buf[:0], r)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: encode: %w", ErrInvalidRecord, err)
	}
	w.buf = line
	n, err := w.sink.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := w.sink.Truncate(w.size); terr != nil {
				w.broken = fmt.Errorf("%w: %w; the partial record could not be removed: %v", ErrSinkFailed, err, terr)
				return 0, nil, w.broken
			}
		}
		return 0, nil, fmt.Errorf("%w: %w", ErrSinkFailed, err)
	}
	w.seq, w.head = r.Seq, sum
	w.size += int64(n)
	w.written.Store(w.seq)
	if r.Type == TypeCheckpoint {
		w.lastCkpt = w.seq
		w.signedThrough = r.Checkpoint.Records
	}
	w.noteText(r)
	return w.seq, line, nil
}

func (w *Writer) fileStart(prevFile, reason string) *FileStart {
	return &FileStart{Format: FormatVersion, Log: w.logID, File: filepath.Base(w.name), PrevFile: prevFile, Reason: reason}
}

// newLogID returns a new chain identity: 128 random bits in hex.
func newLogID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Checkpoint writes a signed checkpoint record now (also to the checkpoint
// file) unless nothing was written since the last one, and waits for it to
// be durable per the fsync policy.
func (w *Writer) Checkpoint(ctx context.Context) error {
	seq, err := w.checkpoint(ctx, false, false)
	if err == nil && seq > 0 {
		err = w.durable(ctx, seq)
	}
	return err
}

// Probe writes a checkpoint record to learn whether the log can take
// records again after a failed write (a full disk that was freed). A
// failed fsync stays fatal: after one, nothing written since the last
// good fsync can be trusted, so the log is not reopened behind the
// operator's back.
func (w *Writer) Probe(ctx context.Context) error {
	seq, err := w.checkpoint(ctx, false, true)
	if err == nil {
		err = w.durable(ctx, seq)
	}
	return err
}

// maxCheckpointLag bounds how far behind the end of the chain the record a
// checkpoint covers may be when the checkpoint is appended (the verifier
// remembers that many recent hashes). Signing happens outside the lock —
// with Vault Transit it is a network call — so records may arrive
// meanwhile; past the bound the state is signed again.
const maxCheckpointLag = verifyWindow / 2

// closeSignTimeout bounds the wait for the final checkpoint's signature.
const closeSignTimeout = 30 * time.Second

// checkpoint signs the chain's current state without holding the lock,
// then appends the checkpoint record. It returns the record's sequence
// number, 0 if nothing was written since the last checkpoint (and force is
// false).
func (w *Writer) checkpoint(ctx context.Context, final, force bool) (uint64, error) {
	for attempt := 0; ; attempt++ {
		w.mu.Lock()
		if err := w.usableLocked(); err != nil && !(final && errors.Is(err, ErrClosed) && !w.closed) {
			w.mu.Unlock()
			return 0, err
		}
		if w.seq == w.lastCkpt && !final && !force {
			w.mu.Unlock()
			return 0, nil
		}
		c := &Checkpoint{Log: w.logID, From: w.from, Records: w.seq, Head: w.head, File: filepath.Base(w.name), Final: final,
			SignedAt: w.now().UTC().Truncate(time.Microsecond)}
		w.mu.Unlock()
		if err := signCheckpoint(ctx, w.sign, c); err != nil {
			return 0, err
		}
		w.mu.Lock()
		if err := w.usableLocked(); err != nil && !(final && errors.Is(err, ErrClosed) && !w.closed) {
			w.mu.Unlock()
			return 0, err
		}
		if w.seq-c.Records > maxCheckpointLag && attempt < 3 {
			w.mu.Unlock()
			continue
		}
		seq, err := w.appendCheckpointLocked(c)
		w.mu.Unlock()
		return seq, err
	}
}

// appendCheckpointLocked appends a signed checkpoint to the log and the
// checkpoint file.
func (w *Writer) appendCheckpointLocked(c *Checkpoint) (uint64, error) {
	seq, line, err := w.appendLocked(&Record{Type: TypeCheckpoint, Checkpoint: c})
	if err != nil {
		return 0, err
	}
	if w.ckpt != nil {
		if _, err := w.ckpt.Write(line); err != nil {
			return seq, fmt.Errorf("%w: checkpoint file: %w", ErrSinkFailed, err)
		}
		if err := w.ckpt.Sync(); err != nil {
			return seq, fmt.Errorf("%w: checkpoint file: %w", ErrSinkFailed, err)
		}
	}
	return seq, nil
}

func (w *Writer) checkpointLoop(ctx context.Context) {
	defer w.wg.Done()
	t := time.NewTicker(w.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.Checkpoint(ctx); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
			if errors.Is(err, ErrKeyUnavailable) {
				w.signFailures.Add(1)
			}
			w.log.Error("audit checkpoint failed", zapErr(err))
		}
	}
}

// Close writes a final checkpoint, syncs and closes the log. Records
// written before Close are durable when it returns nil. Further Writes
// return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	var errs []error
	if w.broken == nil && w.syncFailed() == nil && !w.closing {
		// The final checkpoint is signed outside the lock; closing stops
		// further records so it covers every one.
		w.closing = true
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeSignTimeout)
		if _, err := w.checkpoint(ctx, true, true); err != nil {
			errs = append(errs, err)
		}
		cancel()
		w.mu.Lock()
	}
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	if err := w.sink.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("%w: fsync: %w", ErrSinkFailed, err))
	}
	errs = append(errs, w.closeFiles())
	return errors.Join(errs...)
}

func (w *Writer) closeFiles() error {
	var errs []error
	if w.sink != nil {
		errs = append(errs, w.sink.Close())
	}
	if w.ckpt != nil {
		errs = append(errs, w.ckpt.Close())
	}
	return errors.Join(errs...)
}

// Stats describes the writer's state, for metrics and tests.
type Stats struct {
	// Records is the last sequence number written; Synced the last one
	// known to be on disk.
	Records uint64
	Synced  uint64
	// Dropped counts records lost with on_failure continue.
	Dropped uint64
	// SignedThrough is the last record a checkpoint of this writer signs
	// (0 before the first); SignFailures counts checkpoints the signer
	// could not sign.
	SignedThrough, SignFailures uint64
	// Unsigned counts the records no checkpoint of this writer signs yet.
	Unsigned uint64
	// File is the active file.
	File string
}

// Stats returns the writer's current state.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	s := Stats{Records: w.seq, Dropped: w.dropped, File: w.name, SignedThrough: w.signedThrough, SignFailures: w.signFailures.Load()}
	// Unsigned: the records after the last signed state, not counting
	// the checkpoint record that signs it.
	s.Unsigned = w.seq - w.signedThrough
	if w.lastCkpt > w.signedThrough {
		s.Unsigned--
	}
	w.mu.Unlock()
	w.smu.Lock()
	s.Synced = w.synced
	w.smu.Unlock()
	return s
}

func zapErr(err error) zap.Field { return zap.String("error", err.Error()) }
