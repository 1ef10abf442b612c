// Command pgpseudo is a PostgreSQL proxy that pseudonymises personal data
// in result sets according to role policies.
//
// Usage:
//
//	pgpseudo serve --config FILE
//	pgpseudo keys init|rotate|status --config FILE [--json]
//	pgpseudo detokenize --config FILE --domain DOMAIN [--json] [TOKEN…]
//	pgpseudo audit verify|query|report|keygen … LOG…
//	pgpseudo version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgpseudo:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `pgpseudo — a PostgreSQL proxy that pseudonymises personal data

Commands:
  serve --config FILE     run the proxy
  policy check --config FILE [--db]
                          validate the policy (and check it against the database)
  policy diff [--config FILE --db] OLD NEW
                          what changes, per role and column, when NEW replaces OLD
  keys init|rotate|status --config FILE [--json]
                          create, rotate or describe the keyset (docs/keys.md)
  detokenize --config FILE --domain DOMAIN [--json] [TOKEN…]
                          reverse reversible tokens (tokens from stdin if none given)
  audit verify|query|report|keygen … LOG…
                          verify, query and report on the audit log (docs/audit.md)
  scan --config FILE [--database D] [--sample N] [--format yaml|table|json] [--merge POLICY] [--out FILE]
                          find personal data and propose its classification (docs/scan.md)
  version                 print the version

Run "pgpseudo COMMAND -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		// A command's -h printed its usage on stdout: that is success.
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	switch args[0] {
	case "policy":
		return policyCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr)
	case "detokenize":
		return detokenize(ctx, args[1:], os.Stdin, stdout, stderr)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr)
	case "scan":
		return scanCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "pgpseudo", version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
}

// exitCode is the status main exits with for err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
