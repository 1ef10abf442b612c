package crypto

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"
)

// FileProvider keeps the keyset in a local file, in clear, with mode 0600.
// It exists for demos and tests: anyone who can read the file can reverse
// and link every token. Production uses the Vault provider.
type FileProvider struct {
	path  string
	log   *zap.Logger
	cache keyCache
	clock clock
}

// NewFileProvider returns a file provider and logs, loudly, that it is not
// for production.
func NewFileProvider(cfg FileConfig, log *zap.Logger) *FileProvider {
	if log == nil {
		log = zap.NewNop()
	}
	log.Warn("file key provider in use: keys are stored unencrypted on local disk; use it for demos and tests only, never in production (use provider: vault)",
		zap.String("path", cfg.Path))
	return &FileProvider{path: cfg.Path, log: log}
}

// Keyset implements KeyProvider.
func (p *FileProvider) Keyset(ctx context.Context) (*Keyset, error) {
	if ks := p.cache.get(); ks != nil {
		return ks, nil
	}
	return p.Refresh(ctx)
}

// Refresh implements KeyProvider.
func (p *FileProvider) Refresh(ctx context.Context) (*Keyset, error) {
	ks, err := p.read(ctx)
	if err != nil {
		return nil, err
	}
	ks, err = p.cache.refresh(ks)
	if err != nil {
		p.log.Error("reloaded keyset refused; cached keys stay in service", zap.Error(err))
		return nil, errWithPath("reloading keyset file", p.path, err)
	}
	return ks, nil
}

func (p *FileProvider) read(ctx context.Context) (*Keyset, error) {
	// O_NOFOLLOW: a symbolic link put in the keyset's place (pointing at
	// a file another user controls) is refused, not followed. O_NONBLOCK:
	// a FIFO there must not block the open; checkKeyFile refuses it.
	f, err := os.OpenFile(p.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errWithPath("reading keyset file", p.path, ErrNoKeyset)
	case errors.Is(err, syscall.ELOOP):
		return nil, errWithPath("reading keyset file", p.path,
			fmt.Errorf("%w: it is a symbolic link; point file.path at the keyset file itself", ErrInsecureKeyFile))
	case err != nil:
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	// Check the open file, not the path, so a swap cannot slip past.
	if err := checkKeyFile(fi); err != nil {
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	if err := checkKeyDir(filepath.Dir(p.path)); err != nil {
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	data := make([]byte, fi.Size())
	defer clear(data) // the keyset in clear: do not leave it on the heap
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	ks, err := unmarshalKeyset(ctx, data, nil, "")
	if err != nil {
		return nil, errWithPath("reading keyset file", p.path, err)
	}
	return ks, nil
}

// checkKeyFile refuses a keyset file that is not a regular file owned by
// this process's user with mode 0600 (or stricter).
func checkKeyFile(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrInsecureKeyFile)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: mode is %04o; run chmod 600", ErrInsecureKeyFile, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: owned by uid %d, not by this process's user (uid %d)", ErrInsecureKeyFile, st.Uid, os.Geteuid())
	}
	return nil
}

// checkKeyDir refuses a keyset directory that another user could write
// to: they could replace the file (or its lock) between two reads.
func checkKeyDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: its directory %s is writable by group or others (mode %04o)", ErrInsecureKeyFile, dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("%w: its directory %s is owned by uid %d, neither this process's user nor root", ErrInsecureKeyFile, dir, st.Uid)
	}
	return nil
}

// lock takes an exclusive lock beside the keyset file (path + ".lock") so
// two concurrent keys init or keys rotate cannot both read version N and
// write different versions N+1. The returned function releases it.
func (p *FileProvider) lock() (func(), error) {
	if err := checkKeyDir(filepath.Dir(p.path)); err != nil {
		return nil, errWithPath("locking keyset file", p.path, err)
	}
	f, err := os.OpenFile(p.path+".lock", os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, errWithPath("locking keyset file", p.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, errWithPath("locking keyset file", p.path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Init implements KeyProvider: it writes a new keyset file with mode 0600
// and refuses if the file exists.
func (p *FileProvider) Init(ctx context.Context) (Status, error) {
	unlock, err := p.lock()
	if err != nil {
		return Status{}, err
	}
	defer unlock()
	ks, err := NewKeyset(p.clock.now())
	if err != nil {
		return Status{}, err
	}
	data, err := ks.marshalCleartext()
	if err != nil {
		return Status{}, err
	}
	defer clear(data)
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Status{}, errWithPath("creating keyset file", p.path, ErrKeysetExists)
	}
	if err != nil {
		return Status{}, errWithPath("creating keyset file", p.path, err)
	}
	if err := writeAndClose(f, data); err != nil {
		_ = os.Remove(p.path)
		return Status{}, errWithPath("creating keyset file", p.path, err)
	}
	p.cache.set(ks)
	p.log.Info("created keyset", zap.String("path", p.path), zap.Uint32("primary_version", ks.Primary()))
	return statusOf(ks, ProviderFile, p.path, ""), nil
}

// Rotate implements KeyProvider: it replaces the file atomically (a 0600
// temporary file renamed over it).
func (p *FileProvider) Rotate(ctx context.Context) (Status, error) {
	unlock, err := p.lock()
	if err != nil {
		return Status{}, err
	}
	defer unlock()
	ks, err := p.read(ctx)
	if err != nil {
		return Status{}, err
	}
	next, err := ks.Rotate(p.clock.now())
	if err != nil {
		return Status{}, err
	}
	data, err := next.marshalCleartext()
	if err != nil {
		return Status{}, err
	}
	defer clear(data)
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".keyset-*")
	if err != nil {
		return Status{}, errWithPath("rotating keyset file", p.path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return Status{}, errWithPath("rotating keyset file", p.path, err)
	}
	if err := writeAndClose(tmp, data); err != nil {
		return Status{}, errWithPath("rotating keyset file", p.path, err)
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		return Status{}, errWithPath("rotating keyset file", p.path, err)
	}
	p.cache.set(next)
	p.log.Info("rotated keyset", zap.String("path", p.path), zap.Uint32("primary_version", next.Primary()))
	return statusOf(next, ProviderFile, p.path, ""), nil
}

// Status implements KeyProvider.
func (p *FileProvider) Status(ctx context.Context) (Status, error) {
	ks, err := p.read(ctx)
	if err != nil {
		return Status{}, err
	}
	return statusOf(ks, ProviderFile, p.path, ""), nil
}

// Close implements KeyProvider.
func (p *FileProvider) Close() error { return nil }

func writeAndClose(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
