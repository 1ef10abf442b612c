package audit

import (
	"errors"
	"io"
	"os"
)

// sink is where lines go: an *os.File, or standard output. Tests replace
// it with a failing one.
type sink interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// openFunc opens a log file; os.OpenFile in production.
type openFunc func(name string, flag int, perm os.FileMode) (sink, error)

func openFile(name string, flag int, perm os.FileMode) (sink, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// streamSink writes to a stream (stdout) that cannot be synced, truncated
// or rotated.
type streamSink struct{ w io.Writer }

func (s streamSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (streamSink) Sync() error                   { return nil }
func (streamSink) Close() error                  { return nil }
func (streamSink) Truncate(int64) error {
	return errors.New("cannot remove a partial record from a stream")
}
