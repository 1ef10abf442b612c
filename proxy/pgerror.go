package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes pgpseudo sends itself.
const (
	codeProtocolViolation   = "08P01"
	codeInvalidAuthSpec     = "28000"
	codeInvalidPassword     = "28P01"
	codeTooManyConnections  = "53300"
	codeFeatureNotSupported = "0A000"
	codeConnectionFailure   = "08006"
	codeCannotConnectNow    = "57P03"
	codeAdminShutdown       = "57P01"
	codeIdleSessionTimeout  = "57P05"
	codeInternalError       = "XX000"
)

// fatal builds a FATAL ErrorResponse frame.
func fatal(code, msg string) []byte {
	b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}).Encode(nil)
	return b
}
