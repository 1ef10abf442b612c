package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestFatalError(t *testing.T) {
	for _, tc := range []struct {
		e    pgproto3.ErrorResponse
		want bool
	}{
		{pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01", Message: "terminating"}, true},
		{pgproto3.ErrorResponse{Severity: "PANIC", Code: "XX000", Message: "x"}, true},
		{pgproto3.ErrorResponse{Severity: "FEHLER", SeverityUnlocalized: "FATAL", Code: "57P01", Message: "localised"}, true},
		{pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "42P01", Message: "FATAL"}, false},
	} {
		b, err := tc.e.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := fatalError(b[5:]); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.e, got, tc.want)
		}
	}
	for _, b := range [][]byte{nil, {0}, {'S'}, {'S', 'F', 'A'}} {
		if fatalError(b) {
			t.Errorf("malformed %q counted as fatal", b)
		}
	}
}

func TestUpstreamLost(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{fmt.Errorf("read: %w", net.ErrClosed), false}, // the proxy closed it
		{errors.New("protocol violation"), false},
	} {
		if got := upstreamLost(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}
