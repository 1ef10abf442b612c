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
	codeInsufficientPriv    = "42501"
	codeDataException       = "22000"
	codeProgramLimit        = "54000"
)

// errorResponse builds an ErrorResponse frame.
func errorResponse(severity, code, msg string) []byte {
	b, _ := (&pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: msg}).Encode(nil)
	return b
}

// fatal builds a FATAL ErrorResponse: the connection ends.
func fatal(code, msg string) []byte { return errorResponse("FATAL", code, msg) }

// errorFrame builds an ERROR ErrorResponse: the statement fails.
func errorFrame(code, msg string) []byte { return errorResponse("ERROR", code, msg) }

// refusal is the 42501 error for something the policy withholds.
func refusal(msg string) []byte { return errorFrame(codeInsufficientPriv, "pgpseudo: "+msg) }
