package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteAndVerify(t *testing.T) {
	cfg := testConfig(t.TempDir())
	files := writeLog(t, cfg, 10)
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// file_start + opening checkpoint + 10 statements + final checkpoint
	if res.Records != 13 || !res.Closed || res.Checkpoints != 2 || res.SignedThrough != 12 || res.Unsigned != 0 || len(res.Gaps) != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestResumeContinuesChain(t *testing.T) {
	cfg := testConfig(t.TempDir())
	writeLog(t, cfg, 3)
	files := writeLog(t, cfg, 3) // reopens and appends
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1+1+3+1+1+3+1 {
		t.Fatalf("records %d", res.Records)
	}
}

func TestResumeRefusesModifiedTailAndTornTail(t *testing.T) {
	cfg := testConfig(t.TempDir())
	writeLog(t, cfg, 2)
	l := readLines(t, cfg.Path)
	good := slices.Clone(l)
	l[len(l)-1] = strings.Replace(l[len(l)-1], `"final":true`, `"final":false`, 1)
	writeLines(t, cfg.Path, l)
	if _, err := New(context.Background(), cfg, testKey, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("modified last record: %v", err)
	}
	writeLines(t, cfg.Path, good)
	// A new signing key continues the log: checkpoints name their key.
	other := NewFileSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	w, err := New(context.Background(), cfg, other, nil)
	if err != nil {
		t.Fatalf("another signing key: %v", err)
	}
	w.Close()
	both := PublicKeys{KeyID(other.Public()): other.Public(), KeyID(testKey.Public()): testKey.Public()}
	if res, err := Verify(context.Background(), both, []string{cfg.Path}, VerifyOptions{Checkpoints: cfg.CheckpointPath}); err != nil || len(res.SigningKeys) != 2 {
		t.Fatalf("verify with both keys: %v %+v", err, res)
	}
	f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":9,`)
	f.Close()
	if _, err := New(context.Background(), cfg, testKey, nil); !errors.Is(err, ErrTornTail) {
		t.Fatalf("torn tail: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	for _, fsync := range []string{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(fsync, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.Fsync, cfg.FsyncInterval = fsync, time.Millisecond
			cfg.RotateSize = 16 << 10
			cfg.CheckpointInterval = 10 * time.Millisecond
			w := newTestWriter(t, cfg, seams{})
			const writers, each = 8, 50
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range each {
						seq, err := w.write(context.Background(), stmt(g*each+i))
						if err != nil {
							t.Error(err)
							return
						}
						if st := w.Stats(); fsync == FsyncAlways && st.Synced < seq {
							t.Errorf("fsync always: record %d acknowledged, synced only %d", seq, st.Synced)
						}
					}
				})
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Path), "*.jsonl"))
			if len(files) < 2 {
				t.Fatalf("no rotation: %v", files)
			}
			res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			ReadRecords(context.Background(), files, func(r *Record) error {
				if r.Type == TypeStatement {
					n++
				}
				return nil
			})
			if n != writers*each || res.Records < uint64(n) {
				t.Fatalf("statements %d, records %d", n, res.Records)
			}
		})
	}
}

func TestRotationBySizeContinuesChain(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.RotateSize = 4096
	files := writeLog(t, cfg, 60)
	if len(files) < 3 {
		t.Fatalf("want several files, got %v", files)
	}
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files[len(res.Files)-1] != cfg.Path || len(res.Warnings) != 0 {
		t.Fatalf("order %v warnings %v", res.Files, res.Warnings)
	}
	// every file begins with a file_start naming its predecessor and
	// chaining to its last MAC
	var prevLast *Record
	for i, f := range res.Files {
		var first, last *Record
		ReadRecords(context.Background(), []string{f}, func(r *Record) error {
			c := *r
			if first == nil {
				first = &c
			}
			last = &c
			return nil
		})
		if first.FileStart == nil {
			t.Fatalf("%s: first record is %s", f, first.Type)
		}
		if i > 0 {
			if first.FileStart.PrevFile != filepath.Base(res.Files[i-1]) || first.Prev != prevLast.Hash || first.Seq != prevLast.Seq+1 {
				t.Fatalf("%s: file_start %+v prev %s, previous last %d %s", f, first.FileStart, first.Prev, prevLast.Seq, prevLast.Hash)
			}
			if first.FileStart.Reason != ReasonRotateSize {
				t.Fatalf("reason %q", first.FileStart.Reason)
			}
		}
		prevLast = last
	}
}

func TestRotationByTime(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RotateInterval = 10 * time.Second // the fake clock ticks 1s per record
	files := writeLog(t, cfg, 25)
	if len(files) < 2 {
		t.Fatalf("files %v", files)
	}
	if _, err := Verify(context.Background(), testKeys, files, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestResumeAfterRotationCrash(t *testing.T) {
	cfg := testConfig(t.TempDir())
	writeLog(t, cfg, 3)
	// a crash between the archive rename and the creation of the new file
	os.Rename(cfg.Path, archiveName(cfg.Path, 5))
	files := writeLog(t, cfg, 2)
	if _, err := Verify(context.Background(), testKeys, files, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpoints(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CheckpointPath = filepath.Join(filepath.Dir(cfg.Path), "checkpoints.jsonl")
	w := newTestWriter(t, cfg, seams{})
	ctx := context.Background()
	for i := range 5 {
		w.Write(ctx, stmt(i))
		if err := w.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Checkpoint(ctx); err != nil { // nothing new: no record
		t.Fatal(err)
	}
	w.Close()
	var cps []Checkpoint
	ReadRecords(ctx, []string{cfg.Path}, func(r *Record) error {
		if r.Checkpoint != nil {
			if r.Checkpoint.Records != r.Seq-1 || r.Checkpoint.Head != r.Prev {
				t.Errorf("checkpoint %d: %+v", r.Seq, r.Checkpoint)
			}
			cps = append(cps, *r.Checkpoint)
		}
		return nil
	})
	if len(cps) != 7 || !cps[6].Final {
		t.Fatalf("checkpoints %+v", cps)
	}
	if n := len(readLines(t, cfg.CheckpointPath)); n != 7 {
		t.Fatalf("checkpoint file has %d lines", n)
	}
	res, err := Verify(ctx, testKeys, []string{cfg.Path}, VerifyOptions{Checkpoints: cfg.CheckpointPath})
	if err != nil || res.External != 7 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}

func TestPeriodicCheckpoint(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CheckpointInterval = 10 * time.Millisecond
	w := newTestWriter(t, cfg, seams{})
	w.Write(context.Background(), stmt(1))
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Records < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w.Close()
	found := false
	ReadRecords(context.Background(), []string{cfg.Path}, func(r *Record) error {
		found = found || (r.Checkpoint != nil && !r.Checkpoint.Final)
		return nil
	})
	if !found {
		t.Fatal("no periodic checkpoint")
	}
}

// failSink fails every write after the first `ok` bytes were accepted,
// leaving a partial line when a write straddles the limit.
type failSink struct {
	mu       sync.Mutex
	f        *os.File
	budget   int64
	syncFail bool
}

func (s *failSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(len(p)) > s.budget {
		n, _ := s.f.Write(p[:s.budget])
		s.budget = 0
		return n, fmt.Errorf("write: %w", errNoSpace)
	}
	s.budget -= int64(len(p))
	return s.f.Write(p)
}

var errNoSpace = errors.New("no space left on device")

func (s *failSink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncFail {
		return errors.New("input/output error")
	}
	return s.f.Sync()
}
func (s *failSink) Truncate(n int64) error { return s.f.Truncate(n) }
func (s *failSink) Close() error           { return s.f.Close() }

func TestSinkFailure(t *testing.T) {
	tests := []struct {
		name      string
		onFailure string
		fsync     string
		syncFail  bool
	}{
		{"disk full, refuse", OnFailureRefuse, FsyncNever, false},
		{"disk full, continue", OnFailureContinue, FsyncNever, false},
		{"fsync error, refuse", OnFailureRefuse, FsyncAlways, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.OnFailure, cfg.Fsync = tt.onFailure, tt.fsync
			var fs *failSink
			open := func(name string, flag int, perm os.FileMode) (sink, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				fs = &failSink{f: f, budget: 2500}
				return fs, nil
			}
			w := newTestWriter(t, cfg, seams{open: open})
			ctx := context.Background()
			var acked []uint64
			var failed error
			for i := 1; i <= 20; i++ {
				if i == 3 && tt.syncFail {
					fs.mu.Lock()
					fs.syncFail, fs.budget = true, 1<<20
					fs.mu.Unlock()
				}
				before := w.Stats().Records
				err := w.Write(ctx, stmt(i))
				if err != nil {
					if !errors.Is(err, ErrSinkFailed) {
						t.Fatalf("error %v does not match ErrSinkFailed", err)
					}
					failed = err
					continue
				}
				if after := w.Stats().Records; after > before {
					acked = append(acked, uint64(i))
				}
			}
			if tt.onFailure == OnFailureRefuse && failed == nil {
				t.Fatal("Write never failed")
			}
			if tt.onFailure == OnFailureContinue && (failed != nil || w.Stats().Dropped == 0) {
				t.Fatalf("continue: err %v, stats %+v", failed, w.Stats())
			}
			if !tt.syncFail {
				// the space comes back: the writer carries on, chain intact
				fs.mu.Lock()
				fs.budget = 1 << 20
				fs.mu.Unlock()
				if err := w.Write(ctx, stmt(99)); err != nil {
					t.Fatalf("after recovery: %v", err)
				}
				acked = append(acked, 99)
			}
			w.Close()
			// every acknowledged statement is in the log
			got := map[uint64]bool{}
			ReadRecords(ctx, []string{cfg.Path}, func(r *Record) error {
				if r.Statement != nil {
					got[r.Statement.Rows] = true
				}
				return nil
			})
			for _, i := range acked {
				if !got[i] {
					t.Errorf("acknowledged statement %d missing", i)
				}
			}
			if !tt.syncFail {
				if _, err := Verify(ctx, testKeys, []string{cfg.Path}, VerifyOptions{}); err != nil {
					t.Fatalf("verify after partial writes: %v", err)
				}
			}
		})
	}
}

func TestWriteAfterCloseAndInvalid(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.OnFailure = OnFailureContinue
	w := newTestWriter(t, cfg, seams{})
	bad := stmt(1)
	bad.Columns[0].Decision = "peeked"
	if err := w.Write(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("invalid decision: %v", err)
	}
	w.Close()
	if err := w.Write(context.Background(), stmt(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestStdoutSink(t *testing.T) {
	var b strings.Builder
	cfg := Config{Path: Stdout, Fsync: FsyncAlways}
	w := newTestWriter(t, cfg, seams{stdout: &b})
	w.Write(context.Background(), connStart())
	w.Close()
	out := b.String()
	if strings.Count(out, "\n") != 4 || !strings.Contains(out, `"file":"-"`) {
		t.Fatalf("stdout: %s", out)
	}
	p := filepath.Join(t.TempDir(), "captured.jsonl")
	os.WriteFile(p, []byte(out), 0o600)
	if _, err := Verify(context.Background(), testKeys, []string{p}, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestFileClosedUnderneath(t *testing.T) {
	cfg := testConfig(t.TempDir())
	w := newTestWriter(t, cfg, seams{})
	ctx := context.Background()
	if err := w.Write(ctx, stmt(1)); err != nil {
		t.Fatal(err)
	}
	w.sink.(*os.File).Close() // the descriptor goes away mid-run
	for range 2 {
		if err := w.Write(ctx, stmt(2)); !errors.Is(err, ErrSinkFailed) || !errors.Is(err, os.ErrClosed) {
			t.Fatalf("write to a closed file: %v", err)
		}
	}
	if err := w.Close(); !errors.Is(err, ErrSinkFailed) && !errors.Is(err, os.ErrClosed) {
		t.Fatalf("close: %v", err)
	}
	files := []string{cfg.Path}
	res, err := Verify(ctx, testKeys, files, VerifyOptions{})
	if err != nil || res.Records != 3 || res.Closed || res.Unsigned != 1 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}

// slowSyncSink counts fsyncs, each taking a while.
type slowSyncSink struct {
	*os.File
	mu    sync.Mutex
	syncs int
}

func (s *slowSyncSink) Sync() error {
	time.Sleep(2 * time.Millisecond)
	s.mu.Lock()
	s.syncs++
	s.mu.Unlock()
	return s.File.Sync()
}

func TestGroupCommitSharesFsync(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Fsync = FsyncAlways
	var ss *slowSyncSink
	open := func(name string, flag int, perm os.FileMode) (sink, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		ss = &slowSyncSink{File: f}
		return ss, nil
	}
	w := newTestWriter(t, cfg, seams{open: open})
	const writers, each = 16, 10
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if err := w.Write(context.Background(), stmt(g*each+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ss.mu.Lock()
	syncs := ss.syncs
	ss.mu.Unlock()
	w.Close()
	if syncs >= writers*each/2 {
		t.Fatalf("%d fsyncs for %d concurrent writes: no group commit", syncs, writers*each)
	}
	t.Logf("%d writes, %d fsyncs", writers*each, syncs)
}

// TestStatementTextOncePerFile: a fingerprint's text is asked for until it
// is written, and again in a new file after a rotation.
func TestStatementTextOncePerFile(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RotateSize = 4096
	w := newTestWriter(t, cfg, seams{})
	ctx := context.Background()
	const fp = "a0ead580058af585"
	if !w.NeedsText(fp) {
		t.Fatal("a new log has the text")
	}
	if err := w.Write(ctx, StatementText{Fingerprint: fp, Text: "SELECT email FROM customers WHERE id = $1"}); err != nil {
		t.Fatal(err)
	}
	if w.NeedsText(fp) || !w.NeedsText("other") {
		t.Fatal("after writing the text")
	}
	if err := w.Write(ctx, StatementText{Fingerprint: "not a code!", Text: "x"}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("bad fingerprint: %v", err)
	}
	for i := 0; !w.NeedsText(fp); i++ {
		if i > 100 {
			t.Fatal("no rotation")
		}
		w.Write(ctx, stmt(i))
	}
	w.Close()
}

// flakySigner fails with an outage or a refusal until it is fixed.
type flakySigner struct {
	down      atomic.Bool
	transient bool
}

var errSignerDown = errors.New("signer unreachable")

func (f *flakySigner) Sign(ctx context.Context, msg []byte) ([]byte, ed25519.PublicKey, error) {
	if f.down.Load() {
		return nil, nil, errSignerDown
	}
	return testKey.Sign(ctx, msg)
}

func (f *flakySigner) Transient(err error) bool { return f.transient && errors.Is(err, errSignerDown) }

// TestSignerOutageAtStart: a signer that is unreachable at start does not
// stop the log: records are written, reported unsigned, and signed by the
// first checkpoint after the signer is back. A signer that refuses (not an
// outage) still fails New.
func TestSignerOutageAtStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transient bool
	}{{"outage", true}, {"refusal", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			s := &flakySigner{transient: tc.transient}
			s.down.Store(true)
			w, err := newWriter(context.Background(), cfg, s, nil, seams{now: new(clock).now})
			if !tc.transient {
				if !errors.Is(err, ErrKeyUnavailable) {
					t.Fatalf("a refusing signer: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := w.Write(context.Background(), stmt(i)); err != nil {
					t.Fatal(err)
				}
			}
			if st := w.Stats(); st.SignedThrough != 0 || st.SignFailures != 1 || st.Records != 4 || st.Unsigned != 4 {
				t.Fatalf("stats while the signer is down: %+v", st)
			}
			res, err := Verify(context.Background(), testKeys, []string{cfg.Path}, VerifyOptions{})
			if err == nil || !strings.Contains(err.Error(), "unsigned") || res.Unsigned != 4 || res.Checkpoints != 0 {
				t.Fatalf("unsigned log verified as %+v (%v)", res, err)
			}
			if err := w.Checkpoint(context.Background()); !errors.Is(err, ErrKeyUnavailable) {
				t.Fatalf("checkpoint while down: %v", err)
			}
			s.down.Store(false)
			if err := w.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.SignedThrough != 4 || st.Unsigned != 0 {
				t.Fatalf("stats after the signer is back: %+v", st)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res, err = Verify(context.Background(), testKeys, []string{cfg.Path}, VerifyOptions{})
			if err != nil || !res.Closed || len(res.Gaps) != 0 || res.Unsigned != 0 || res.SignedThrough != res.LastSeq-1 {
				t.Fatalf("after signing: %+v %v", res, err)
			}
		})
	}
}
