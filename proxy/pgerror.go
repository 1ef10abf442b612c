package proxy

import (
	"bytes"

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

// fatalError reports whether an ErrorResponse body has severity FATAL or
// PANIC: the server ends the session after it.
func fatalError(body []byte) bool {
	for len(body) > 1 && body[0] != 0 {
		typ := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return false
		}
		v := string(body[1 : 1+end])
		if (typ == 'V' || typ == 'S') && (v == "FATAL" || v == "PANIC") {
			return true
		}
		body = body[2+end:]
	}
	return false
}

// errorSeverity is the unlocalised severity of an ErrorResponse body
// (ERROR when it has none).
func errorSeverity(body []byte) string {
	sev := "ERROR"
	for len(body) > 1 && body[0] != 0 {
		typ := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		switch v := string(body[1 : 1+end]); {
		case typ == 'V':
			return v
		case typ == 'S':
			sev = v
		}
		body = body[2+end:]
	}
	return sev
}
