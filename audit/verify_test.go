package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// seqOf returns the sequence number of a stored line.
func seqOf(t *testing.T, line string) uint64 {
	t.Helper()
	h, err := parseHeader([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

func TestVerifyDetectsTampering(t *testing.T) {
	type tamper func(t *testing.T, files []string) (wantRecord uint64)
	edit := func(t *testing.T, path string, f func(lines []string) []string) {
		writeLines(t, path, f(readLines(t, path)))
	}
	tests := []struct {
		name    string
		kind    ProblemKind
		tamper  tamper
		useCkpt bool
	}{
		{"change one byte", Modified, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[1], func(l []string) []string {
				seq = seqOf(t, l[2])
				l[2] = strings.Replace(l[2], `"rows":`, `"rows":1`, 1)
				return l
			})
			return seq
		}, false},
		{"change one byte of the MAC", Modified, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[0], func(l []string) []string {
				seq = seqOf(t, l[3])
				b := []byte(l[3])
				b[len(b)-5] ^= 1
				l[3] = string(b)
				return l
			})
			return seq
		}, false},
		{"delete a line", Deleted, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[1], func(l []string) []string {
				seq = seqOf(t, l[3])
				return slices.Delete(l, 3, 4)
			})
			return seq
		}, false},
		{"insert a forged line", Inserted, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[1], func(l []string) []string {
				seq = seqOf(t, l[2])
				forged := strings.Replace(l[1], `"user":"alice"`, `"user":"mallory"`, 1)
				return slices.Insert(l, 2, forged)
			})
			return seq
		}, false},
		{"insert a copy of an earlier line", Inserted, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[1], func(l []string) []string {
				seq = seqOf(t, l[4])
				return slices.Insert(l, 4, l[1])
			})
			return seq
		}, false},
		{"swap two lines", Reordered, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[2], func(l []string) []string {
				seq = seqOf(t, l[1])
				l[1], l[2] = l[2], l[1]
				return l
			})
			return seq
		}, false},
		{"truncate mid-line", Truncated, func(t *testing.T, files []string) uint64 {
			last := files[len(files)-1]
			l := readLines(t, last)
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()-int64(len(l[len(l)-1])/2))
			return seqOf(t, l[len(l)-1])
		}, false},
		{"truncate after the last checkpoint (checkpoint file)", Truncated, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[len(files)-1], func(l []string) []string {
				seq = seqOf(t, l[len(l)-3])
				return l[:len(l)-3]
			})
			return seq
		}, true},
		{"remove a rotated file from the middle", MissingFile, func(t *testing.T, files []string) uint64 {
			want := seqOf(t, readLines(t, files[1])[0])
			os.Remove(files[1])
			return want
		}, false},
		{"cut the end of a rotated file", Truncated, func(t *testing.T, files []string) uint64 {
			var seq uint64
			edit(t, files[0], func(l []string) []string {
				seq = seqOf(t, l[len(l)-2])
				return l[:len(l)-2]
			})
			return seq
		}, false},
		// Someone who can write the log recomputes the public chain after
		// an edit: the next signed checkpoint no longer matches.
		{"delete a record and recompute the chain", Rewritten, func(t *testing.T, files []string) uint64 {
			all := rechainFrom(t, files, func(l []string) []string {
				return slices.Delete(l, 5, 6)
			})
			return firstCheckpointAfter(t, all, 5)
		}, false},
		{"edit a record and recompute the chain", Rewritten, func(t *testing.T, files []string) uint64 {
			all := rechainFrom(t, files, func(l []string) []string {
				l[7] = strings.Replace(l[7], `"user":"alice"`, `"user":"mallory"`, 1)
				return l
			})
			return firstCheckpointAfter(t, all, 7)
		}, false},
		{"forge a checkpoint over a recomputed chain", Rewritten, func(t *testing.T, files []string) uint64 {
			all := rechainFrom(t, files, func(l []string) []string {
				l[7] = strings.Replace(l[7], `"user":"alice"`, `"user":"mallory"`, 1)
				// The forger also updates the checkpoints' heads; it cannot
				// sign them.
				for i, line := range l {
					if strings.Contains(line, `"type":"checkpoint"`) {
						l[i] = strings.Replace(line, `"head":"`, `"head":"0`, 1)
					}
				}
				return l
			})
			return firstCheckpointAfter(t, all, 0)
		}, false},
		{"drop every checkpoint and recompute the chain", Unsigned, func(t *testing.T, files []string) uint64 {
			rechainFrom(t, files, func(l []string) []string {
				return slices.DeleteFunc(l, func(s string) bool { return strings.Contains(s, `"type":"checkpoint"`) })
			})
			return 1
		}, false},
		{"cut back to an earlier checkpoint (checkpoint file)", Truncated, func(t *testing.T, files []string) uint64 {
			// Keep the log up to its opening checkpoint: a log that ends
			// with a valid signed checkpoint, but the checkpoint file
			// holds a later one.
			for _, f := range files[1:] {
				os.Remove(f)
			}
			edit(t, files[0], func(l []string) []string { return l[:2] })
			return 3
		}, true},
		{"empty a file", Truncated, func(t *testing.T, files []string) uint64 {
			l := readLines(t, files[2])
			os.Truncate(files[2], 0)
			return seqOf(t, l[0])
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.RotateSize = 4096
			cfg.CheckpointPath = filepath.Join(dir, "checkpoints")
			files := writeLog(t, cfg, 40)
			if len(files) < 4 {
				t.Fatalf("want ≥ 4 files, got %d", len(files))
			}
			res, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath})
			if err != nil || !res.Closed {
				t.Fatalf("before tampering: %v", err)
			}
			want := tt.tamper(t, files)
			var opts VerifyOptions
			if tt.useCkpt {
				opts.Checkpoints = cfg.CheckpointPath
			}
			present := slices.DeleteFunc(slices.Clone(files), func(f string) bool { _, err := os.Stat(f); return err != nil })
			// files in reverse order: the verifier orders them itself
			slices.Reverse(present)
			_, err = Verify(context.Background(), testKeys, present, opts)
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("got %v, want a TamperError", err)
			}
			if te.Kind != tt.kind || te.Record != want {
				t.Fatalf("got %s at record %d (%v), want %s at record %d", te.Kind, te.Record, err, tt.kind, want)
			}
		})
	}
}

// rechainFrom joins a set's files into one, edits its lines and
// recomputes every hash, sequence number and prev, as anyone can: the
// chain is public. It returns the new lines.
func rechainFrom(t *testing.T, files []string, f func([]string) []string) []string {
	t.Helper()
	var all []string
	for _, p := range files {
		l := readLines(t, p)
		if p != files[0] {
			l = l[1:] // its file_start
			os.Remove(p)
		}
		all = append(all, l...)
	}
	all = f(all)
	s := newSealer()
	prev := ""
	for i, l := range all {
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		r.Seq, r.Prev, r.Hash = uint64(i+1), prev, ""
		line, sum, err := s.seal(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		all[i], prev = string(line), sum
	}
	writeLines(t, files[0], all)
	return all
}

// firstCheckpointAfter returns the sequence number of the first checkpoint
// record after line index i.
func firstCheckpointAfter(t *testing.T, lines []string, i int) uint64 {
	t.Helper()
	for _, l := range lines[i+1:] {
		if strings.Contains(l, `"type":"checkpoint"`) {
			return seqOf(t, l)
		}
	}
	t.Fatal("no checkpoint")
	return 0
}

func TestVerifyUndetectableTruncationIsFlagged(t *testing.T) {
	cfg := testConfig(t.TempDir())
	files := writeLog(t, cfg, 5)
	l := readLines(t, files[0])
	writeLines(t, files[0], l[:len(l)-2])
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
	if err != nil || res.Closed || res.Unsigned != 4 || res.SignedThrough != 1 {
		t.Fatalf("without a checkpoint file the chain verifies, not closed, its tail unsigned: %v %+v", err, res)
	}
}

func TestVerifyPartialSet(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RotateSize = 4096
	files := writeLog(t, cfg, 40)
	rest := files[1:]
	_, err := Verify(context.Background(), testKeys, rest, VerifyOptions{})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != MissingFile || te.Record != 1 {
		t.Fatalf("without --partial: %v", err)
	}
	res, err := Verify(context.Background(), testKeys, rest, VerifyOptions{Partial: true})
	if err != nil || res.FirstSeq == 1 {
		t.Fatalf("partial: %v %+v", err, res)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	cfg := testConfig(t.TempDir())
	files := writeLog(t, cfg, 3)
	other := NewFileSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	_, err := Verify(context.Background(), PublicKeys{KeyID(other.Public()): other.Public()}, files, VerifyOptions{})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), KeyID(testKey.Public())) {
		t.Fatalf("got %v", err)
	}
	_, err = Verify(context.Background(), PublicKeys{}, files, VerifyOptions{})
	if !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("no key: %v", err)
	}
}

func TestVerifyModifiedCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.CheckpointPath = filepath.Join(dir, "ckpt")
	files := writeLog(t, cfg, 3)
	l := readLines(t, cfg.CheckpointPath)
	l[len(l)-1] = strings.Replace(l[len(l)-1], `"final":true`, `"final":false`, 1)
	writeLines(t, cfg.CheckpointPath, l)
	_, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != Modified || te.File != cfg.CheckpointPath {
		t.Fatalf("got %v", err)
	}
}

// TestVerifyChainsStayApart: one log copied over another verifies with the
// shared key, but its header names the log it was, so it is refused; a
// checkpoint file is checked against the log it names, whatever order the
// files are given in.
func TestVerifyChainsStayApart(t *testing.T) {
	dir := t.TempDir()
	main := testConfig(dir)
	main.CheckpointPath = filepath.Join(dir, "audit.checkpoints")
	main.CheckpointInterval = 0
	keys := testConfig(dir)
	keys.Path = filepath.Join(dir, "audit-keys.jsonl")
	for _, cfg := range []Config{main, keys} {
		w := newTestWriter(t, cfg, seams{})
		for _, ev := range sampleEvents()[:3] {
			if err := w.Write(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
	}
	chains := Chains([]string{keys.Path, main.Path})
	i, err := CheckpointChain(main.CheckpointPath, chains)
	if err != nil || chains[i][0] != main.Path {
		t.Fatalf("checkpoint chain: %d %v (chains %v)", i, err, chains)
	}
	data, err := os.ReadFile(keys.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), testKeys, []string{main.Path}, VerifyOptions{})
	var te *TamperError
	if !errors.As(err, &te) || !strings.Contains(te.Detail, "another log") {
		t.Fatalf("a log copied over another: %v", err)
	}
}

// TestVerifyRefusesForeignPayloads: the last checkpoint record is pinned by
// no later hash; a second payload added to it (or to any record) is not a
// record, whatever its hash, for verify as for query and report.
func TestVerifyRefusesForeignPayloads(t *testing.T) {
	cfg := testConfig(t.TempDir()).WithDefaults()
	files := writeLog(t, cfg, 3)
	l := readLines(t, files[0])
	var r Record
	if err := json.Unmarshal([]byte(l[len(l)-1]), &r); err != nil {
		t.Fatal(err)
	}
	forged := stmt(9)
	forged.Session.User = "bob"
	r.Statement, r.Hash = &forged, ""
	line, _, err := EncodeLine(&r)
	if err != nil {
		t.Fatal(err)
	}
	l[len(l)-1] = string(line)
	writeLines(t, files[0], l)
	var te *TamperError
	if _, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath}); !errors.As(err, &te) || te.Kind != Modified {
		t.Fatalf("a checkpoint record carrying a statement: %v", err)
	}
	if err := ReadRecords(context.Background(), files, func(*Record) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("read: %v", err)
	}
}

// TestRestartDoesNotSignWhatItFinds: records appended (and chained) while
// no writer runs are not signed by the next writer: verify names them as
// a gap no signature covers.
func TestRestartDoesNotSignWhatItFinds(t *testing.T) {
	cfg := testConfig(t.TempDir()).WithDefaults()
	writeLog(t, cfg, 2)
	l := readLines(t, cfg.Path)
	var last Record
	json.Unmarshal([]byte(l[len(l)-1]), &last)
	prev := last.Hash
	for i := range 3 {
		s := stmt(20 + i)
		s.Session.User = "mallory"
		r := Record{Seq: last.Seq + uint64(i) + 1, Time: last.Time, Type: TypeStatement, Prev: prev, Statement: &s}
		line, sum, err := EncodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		l, prev = append(l, string(line)), sum
	}
	writeLines(t, cfg.Path, l)
	files := writeLog(t, cfg, 2) // a restart that continues the chain
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath})
	if err != nil || len(res.Gaps) != 1 || res.Gaps[0].From != last.Seq+1 || res.Gaps[0].To != last.Seq+3 || res.Gaps[0].Records != 3 || len(res.Warnings) != 1 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}

// TestVerifyCheckpointFileMustHoldTheLogsCheckpoints: lines removed from
// the checkpoint file (or all of them) are noticed.
func TestVerifyCheckpointFileMustHoldTheLogsCheckpoints(t *testing.T) {
	cfg := testConfig(t.TempDir()).WithDefaults()
	files := writeLog(t, cfg, 3)
	writeLines(t, cfg.CheckpointPath, nil)
	var te *TamperError
	if _, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath}); !errors.As(err, &te) || te.Kind != Truncated || te.File != cfg.CheckpointPath {
		t.Fatalf("an emptied checkpoint file: %v", err)
	}
}

// TestCopiedCheckpointsBetweenRunsAreUnsigned: copies of a genuine
// checkpoint added while no writer runs (to claim the proxy ran) are a
// gap no signature covers, though they carry no activity.
func TestCopiedCheckpointsBetweenRunsAreUnsigned(t *testing.T) {
	cfg := testConfig(t.TempDir()).WithDefaults()
	writeLog(t, cfg, 2)
	l := readLines(t, cfg.Path)
	var last, opening Record
	json.Unmarshal([]byte(l[len(l)-1]), &last)
	json.Unmarshal([]byte(l[1]), &opening) // the opening checkpoint
	prev := last.Hash
	for i := range 2 {
		r := opening
		r.Seq, r.Prev, r.Hash = last.Seq+uint64(i)+1, prev, ""
		line, sum, err := EncodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		l, prev = append(l, string(line)), sum
	}
	writeLines(t, cfg.Path, l)
	files := writeLog(t, cfg, 1)
	res, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: cfg.CheckpointPath})
	if err != nil || len(res.Gaps) != 1 || res.Gaps[0].From != last.Seq+1 || res.Gaps[0].Records != 2 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}

// TestOlderCheckpointFileCopyVerifies: a copy of the checkpoint file taken
// earlier (a third party's) checks the log up to its last entry; the log's
// later checkpoints need not be in it.
func TestOlderCheckpointFileCopyVerifies(t *testing.T) {
	cfg := testConfig(t.TempDir()).WithDefaults()
	writeLog(t, cfg, 2)
	old := filepath.Join(t.TempDir(), "copy")
	data, _ := os.ReadFile(cfg.CheckpointPath)
	os.WriteFile(old, data, 0o600)
	files := writeLog(t, cfg, 2)
	if res, err := Verify(context.Background(), testKeys, files, VerifyOptions{Checkpoints: old}); err != nil || !res.Closed {
		t.Fatalf("an older copy: %v %+v", err, res)
	}
}

// TestVerifyRefusesNonRegularFiles: a named pipe among the files given
// would block the reader for ever; it is refused.
func TestVerifyRefusesNonRegularFiles(t *testing.T) {
	cfg := testConfig(t.TempDir())
	files := writeLog(t, cfg, 1)
	fifo := filepath.Join(filepath.Dir(cfg.Path), "audit-x.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal("mkfifo:", err)
	}
	if _, err := Verify(context.Background(), testKeys, append(files, fifo), VerifyOptions{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("verify with a fifo: %v", err)
	}
	if err := ReadRecords(context.Background(), []string{fifo}, func(*Record) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("read a fifo: %v", err)
	}
}
