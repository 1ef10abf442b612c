package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the "audit:" section of the proxy configuration
// (docs/audit.md). Call WithDefaults, then Validate.
type Config struct {
	// Path is the active log file, or "-" for standard output.
	Path string `yaml:"path"`
	// OnFailure is refuse (Write returns the error, so the proxy refuses
	// statements) or continue (the failure is logged, Write returns nil).
	OnFailure string `yaml:"on_failure"`
	// Fsync is always (Write returns after fsync, concurrent writers share
	// one), interval (fsync every FsyncInterval in the background) or never.
	Fsync         string        `yaml:"fsync"`
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// RotateSize and RotateInterval start a new file when the active one
	// reaches the size or age (0 disables each). Files only.
	RotateSize     ByteSize      `yaml:"rotate_size"`
	RotateInterval time.Duration `yaml:"rotate_interval"`
	// CheckpointInterval is the period of checkpoint records (0 disables
	// periodic ones; a final checkpoint is always written on Close).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// CheckpointPath receives a copy of every checkpoint record, so a log
	// cut back to an earlier checkpoint is detected. It defaults to the
	// log's path with ".checkpoints" appended; put it on other storage
	// (another volume, an append-only mount) so one who can rewrite the
	// log cannot also rewrite it.
	CheckpointPath string `yaml:"checkpoint_path"`
	// SigningKeyFile is an Ed25519 private key (PEM, PKCS#8, mode 0600;
	// pgpseudo audit keygen) that signs checkpoints.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningTransitKey names a Vault Transit key of type ed25519 that
	// signs checkpoints instead (the Vault of keys.vault, its transit
	// mount); the private key never leaves Vault.
	SigningTransitKey string `yaml:"signing_transit_key"`
}

// CheckpointSuffix is appended to the log's path for the default
// checkpoint file.
const CheckpointSuffix = ".checkpoints"

// NoSigningKeyMsg is the message for a log configured without a signer
// (the proxy's configuration loader reports it under audit.signing_key_file).
const NoSigningKeyMsg = "a checkpoint signing key is required: signing_transit_key (a Vault Transit ed25519 key) or signing_key_file (pgpseudo audit keygen --out FILE)"

// DefaultCheckpointPath is the checkpoint file of a log at path when
// audit.checkpoint_path is not set.
func DefaultCheckpointPath(path string) string { return path + CheckpointSuffix }

// OnFailure and Fsync values.
const (
	OnFailureRefuse   = "refuse"
	OnFailureContinue = "continue"
	FsyncAlways       = "always"
	FsyncInterval     = "interval"
	FsyncNever        = "never"
	// Stdout is the Path value for standard output.
	Stdout = "-"
)

// Defaults.
const (
	DefaultFsyncInterval      = 10 * time.Millisecond
	DefaultRotateSize         = 100 << 20
	DefaultRotateInterval     = 24 * time.Hour
	DefaultCheckpointInterval = time.Minute
)

// WithDefaults returns c with empty fields set to their defaults. Path has
// no default.
func (c Config) WithDefaults() Config {
	if c.OnFailure == "" {
		c.OnFailure = OnFailureRefuse
	}
	if c.Fsync == "" {
		c.Fsync = FsyncInterval
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = DefaultFsyncInterval
	}
	if c.RotateSize == 0 {
		c.RotateSize = DefaultRotateSize
	}
	if c.RotateInterval == 0 {
		c.RotateInterval = DefaultRotateInterval
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.CheckpointPath == "" && c.Path != "" && c.Path != Stdout {
		c.CheckpointPath = DefaultCheckpointPath(c.Path)
	}
	return c
}

// Validate reports every problem as a *ConfigError naming its key
// ("audit.fsync" …), joined with errors.Join; each matches
// ErrInvalidConfig. Negative rotate and checkpoint values disable them.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: "audit." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Path == "" {
		bad("path", "is required (a file, or - for standard output)")
	}
	switch c.OnFailure {
	case OnFailureRefuse, OnFailureContinue:
	default:
		bad("on_failure", "must be refuse or continue, got %q", c.OnFailure)
	}
	switch c.Fsync {
	case FsyncAlways, FsyncNever:
	case FsyncInterval:
		if c.FsyncInterval <= 0 {
			bad("fsync_interval", "must be positive when fsync is interval")
		}
	default:
		bad("fsync", "must be always, interval or never, got %q", c.Fsync)
	}
	if c.RotateSize > 0 && c.RotateSize < 4096 {
		bad("rotate_size", "must be at least 4KiB (or negative to disable), got %s", c.RotateSize)
	}
	if c.RotateInterval > 0 && c.RotateInterval < time.Second {
		bad("rotate_interval", "must be at least 1s (or negative to disable), got %s", c.RotateInterval)
	}
	if c.CheckpointInterval > 0 && c.CheckpointInterval < 10*time.Millisecond {
		bad("checkpoint_interval", "must be at least 10ms (or negative to disable), got %s", c.CheckpointInterval)
	}
	if c.CheckpointPath != "" && c.CheckpointPath != Stdout && c.Path != Stdout &&
		filepath.Clean(c.CheckpointPath) == filepath.Clean(c.Path) {
		bad("checkpoint_path", "must differ from audit.path")
	}
	if c.CheckpointPath == Stdout {
		bad("checkpoint_path", "must be a file")
	}
	if c.SigningKeyFile != "" && c.SigningTransitKey != "" {
		bad("signing_key_file", "give signing_key_file or signing_transit_key, not both")
	}
	return errors.Join(errs...)
}

// ByteSize is a size in bytes; in YAML an integer or a string with a unit:
// 64MiB, 1GiB, 500MB, 4096.
type ByteSize int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize parses a size such as "64MiB", "500MB" or "4096".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || (n != 0 && (n*mult)/mult != n) {
		return 0, fmt.Errorf("invalid size %q (want e.g. 64MiB, 500MB or a number of bytes)", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML accepts an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// String formats b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for i := 3; i >= 0; i-- {
		if b != 0 && int64(b)%units[i].mult == 0 {
			return strconv.FormatInt(int64(b)/units[i].mult, 10) + units[i].suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
