package crypto

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileProviderRefusesUnsafeFiles: a symbolic link in the keyset's
// place, a file of another owner or too open a mode is refused.
func TestFileProviderRefusesUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "keyset.json")
	if _, err := NewFileProvider(FileConfig{Path: real}, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileProvider(FileConfig{Path: link}, nil).Keyset(t.Context())
	if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked keyset: %v", err)
	}
	if _, err := NewFileProvider(FileConfig{Path: link}, nil).Rotate(t.Context()); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("rotate through a symlink: %v", err)
	}
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileProvider(FileConfig{Path: real}, nil).Keyset(t.Context()); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("mode 0640: %v", err)
	}
	if err := os.Chmod(real, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(real, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileProvider(FileConfig{Path: real}, nil).Keyset(t.Context())
		if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("keyset of another owner: %v", err)
		}
	}
	// The configuration alone does not enable the file provider.
	err = Config{Provider: ProviderFile, File: FileConfig{Path: real}}.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "allow_insecure_file_keys") {
		t.Fatalf("file provider without opt-in: %v", err)
	}
}

// TestFileProviderRotationsSerialise: concurrent rotations of one keyset
// file each add a version; none is lost to a race between read and rename.
func TestFileProviderRotationsSerialise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	if _, err := NewFileProvider(FileConfig{Path: path}, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := NewFileProvider(FileConfig{Path: path}, nil).Rotate(t.Context())
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := NewFileProvider(FileConfig{Path: path}, nil).Status(t.Context())
	if err != nil || st.Primary != n+1 || len(st.Versions) != n+1 {
		t.Fatalf("after %d concurrent rotations: primary %d, %d versions, %v", n, st.Primary, len(st.Versions), err)
	}
}

// TestFileProviderRefusesFIFOAndOpenDirectories: a FIFO in the keyset's
// place is refused without blocking, and so is a keyset in a directory
// others may write to.
func TestFileProviderRefusesFIFOAndOpenDirectories(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := NewFileProvider(FileConfig{Path: fifo}, nil).Keyset(t.Context())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("FIFO keyset: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO keyset blocked")
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(open, "keyset.json")
	_, err := NewFileProvider(FileConfig{Path: path}, nil).Init(t.Context())
	if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("keyset in a world-writable directory: %v", err)
	}
}
