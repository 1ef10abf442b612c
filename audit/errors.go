package audit

import (
	"errors"
	"fmt"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrInvalidConfig means the audit configuration is invalid; every
	// problem is a *ConfigError naming its key.
	ErrInvalidConfig = errors.New("invalid audit configuration")
	// ErrInvalidRecord means an event handed to Write has a field outside
	// its documented domain (unknown decision, malformed SQLSTATE…).
	ErrInvalidRecord = errors.New("invalid audit record")
	// ErrSinkFailed means the record could not be written or made durable.
	ErrSinkFailed = errors.New("audit log write failed")
	// ErrClosed means the writer was closed.
	ErrClosed = errors.New("audit writer closed")
	// ErrKeyUnavailable means the audit key could not be obtained.
	ErrKeyUnavailable = errors.New("audit key unavailable")
	// ErrWeakKey means the audit key is shorter than MinKeySize bytes.
	ErrWeakKey = errors.New("audit key too short")
	// ErrWrongKey means the log was written with another audit key.
	ErrWrongKey = errors.New("audit log was written with another key")
	// ErrTornTail means an existing log file ends with an incomplete line
	// (a crash during a write); the writer refuses to append after it.
	ErrTornTail = errors.New("audit log ends with an incomplete record")
	// ErrTampered means verification found a modified, deleted, inserted,
	// reordered or missing record; the error is a *TamperError.
	ErrTampered = errors.New("audit log failed verification")
	// ErrMalformed means a record could not be decoded while reading.
	ErrMalformed = errors.New("malformed audit record")
)

// ConfigError is one configuration problem. Key is the dotted key path
// (e.g. "audit.fsync_interval") so callers can point at its line.
type ConfigError struct {
	Key string
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// Unwrap makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRecord}, args...)...)
}
