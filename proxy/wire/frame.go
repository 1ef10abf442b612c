// Package wire frames the PostgreSQL v3 protocol stream: it reads typed
// messages with per-type size limits and writes them through one batching
// buffer. It decodes nothing it does not have to; callers hand the frames
// they need to inspect to pgproto3.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Size limits mirror PostgreSQL's own (its backend's per-message limits): messages
// that carry data may be large, control messages are tiny.
const (
	SmallMessageLimit = 10000
	LargeMessageLimit = 1<<30 - 1
	// AuthMessageLimit bounds SASL and password messages (PG_MAX_AUTH_TOKEN_LENGTH).
	AuthMessageLimit = 65535
)

// ErrMessageTooLarge reports a length beyond the limit for its message type.
var ErrMessageTooLarge = errors.New("message too large")

// ErrBadLength reports a length field smaller than the length field itself.
var ErrBadLength = errors.New("invalid message length")

// ErrUnknownType reports a message type the peer may not send.
var ErrUnknownType = errors.New("invalid message type")

// Limits returns the maximum body length for a message type, or -1 when the
// type is not allowed.
type Limits func(typ byte) int

// FrontendLimits are the limits for messages a client sends after startup.
func FrontendLimits(typ byte) int {
	switch typ {
	case 'Q', 'P', 'B', 'd', 'F':
		return LargeMessageLimit
	case 'p':
		return AuthMessageLimit
	case 'S', 'H', 'D', 'C', 'E', 'X', 'c', 'f':
		return SmallMessageLimit
	}
	return -1
}

// BackendLimits are the limits for messages a server sends. Any type is
// allowed (new servers may add some); a server is trusted more than a client
// but a length is still capped so a broken server cannot exhaust memory.
func BackendLimits(typ byte) int {
	return LargeMessageLimit
}

// Msg is one framed message. Raw holds the whole frame (type, length, body)
// and stays valid only until the next call to Reader.Next that must read
// from the network: messages read while Pending reported true are views
// of the same buffered input and stay valid together, so a relay may
// hold a run of them (see Pending).
type Msg struct {
	Type byte
	Raw  []byte
}

// Body returns the message without its 5-byte header.
func (m Msg) Body() []byte { return m.Raw[5:] }

// Reader reads framed messages.
type Reader struct {
	br     *bufio.Reader
	limits Limits
	buf    []byte
}

// readerSize keeps typical result streams in one read per 64 KiB.
const readerSize = 64 << 10

// bufKeep is the largest message buffer kept between messages; a rare huge
// message must not pin its memory for the connection's lifetime.
const bufKeep = 1 << 20

// NewReader returns a Reader over r with the given limits.
func NewReader(r io.Reader, limits Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readerSize), limits: limits}
}

// Next reads one message.
func (r *Reader) Next() (Msg, error) {
	hdr, err := r.br.Peek(5)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Msg{}, err
	}
	typ := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:5])
	limit := r.limits(typ)
	if limit < 0 {
		return Msg{}, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	if n < 4 {
		return Msg{}, fmt.Errorf("%w %d for message type %q", ErrBadLength, n, typ)
	}
	if int64(n)-4 > int64(limit) {
		return Msg{}, fmt.Errorf("%w: type %q length %d exceeds %d", ErrMessageTooLarge, typ, n, limit)
	}
	total := int(n) + 1
	if total <= r.br.Size() {
		// Most messages fit the read buffer: hand out a view of it instead
		// of copying (valid until the next call, as documented).
		raw, err := r.br.Peek(total)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Msg{}, err
		}
		_, _ = r.br.Discard(total)
		return Msg{Type: typ, Raw: raw}, nil
	}
	if cap(r.buf) > bufKeep && total <= bufKeep {
		r.buf = nil
	}
	if cap(r.buf) < total {
		r.buf = make([]byte, total, max(total, 8192))
	}
	r.buf = r.buf[:total]
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Msg{}, err
	}
	return Msg{Type: typ, Raw: r.buf}, nil
}

// Reset discards any buffered input and reads from rd, keeping the
// buffers.
func (r *Reader) Reset(rd io.Reader) { r.br.Reset(rd) }

// Buffering reports whether any input is buffered (a message, or part of
// one, that Next has not returned).
func (r *Reader) Buffering() bool { return r.br.Buffered() > 0 }

// Pending reports whether a complete message is already buffered, so a
// relay knows whether to flush before it may block on the network. Next
// then returns that message without reading, leaving the messages it
// returned before valid.
func (r *Reader) Pending() bool {
	_, ok := r.PendingType()
	return ok
}

// PendingType is the type of the complete message already buffered, if
// there is one (see Pending).
func (r *Reader) PendingType() (byte, bool) {
	n := r.br.Buffered()
	if n < 5 {
		return 0, false
	}
	hdr, _ := r.br.Peek(5)
	return hdr[0], int64(n) >= int64(binary.BigEndian.Uint32(hdr[1:5]))+1
}

// Writer batches messages into one buffer and writes it when full or when
// Flush is called.
type Writer struct {
	bw *bufio.Writer
}

// writerSize is the batch size: a relay flushes at 64 KiB or when its input
// is drained, whichever comes first.
const writerSize = 64 << 10

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, writerSize)}
}

// Write appends raw frame bytes.
func (w *Writer) Write(p []byte) (int, error) { return w.bw.Write(p) }

// Reset discards anything not yet written and writes to wr, keeping the
// buffer.
func (w *Writer) Reset(wr io.Writer) { w.bw.Reset(wr) }

// Flush writes what is buffered.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the number of bytes waiting to be written.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// Frame builds a typed message from its body parts.
func Frame(typ byte, parts ...[]byte) []byte {
	n := 5
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 5, n)
	b[0] = typ
	for _, p := range parts {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-1))
	return b
}
