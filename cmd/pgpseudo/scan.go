package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pgpseudo/pgpseudo/proxy/catalog"
	"github.com/pgpseudo/pgpseudo/scan"
)

const scanUsage = `usage: pgpseudo scan --config FILE [--database NAME] [--user U --password-file F] [--sample N]
                     [--format yaml|table|json] [--merge POLICY] [--out FILE]

Finds personal data in a database by column names, sampled values and
foreign keys, and proposes its classification as policy YAML (docs/scan.md).
No sampled value is ever printed.
`

// progressAfter is how long a scan runs before it reports progress on a
// stderr that is not a terminal: quick scans stay quiet in scripts, long
// ones show they are alive.
const progressAfter = 2 * time.Second

// scanCmd runs `pgpseudo scan`.
func scanCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), scanUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "proxy configuration file: upstream address, TLS and the connecting user")
	database := fs.String("database", "", "database to scan (default: policy_database, else auth.auth_database)")
	user := fs.String("user", "", "connect as this user instead of auth.auth_user (it needs SELECT on the tables to sample them)")
	passwordFile := fs.String("password-file", "", "the --user's password file (default: auth.auth_password_file)")
	sample := fs.Int("sample", 1000, "rows sampled per table (0: names and keys only, no values read)")
	format := fs.String("format", scan.FormatYAML, "output: yaml (a policy proposal), table or json")
	merge := fs.String("merge", "", "print this policy file with the proposal merged in (existing entries win)")
	out := fs.String("out", "", "write the output to this file instead of stdout")
	timeout := fs.Duration("statement-timeout", 30*time.Second, "limit for each catalog and sampling query")
	if err := parseFlags(fs, args, stdout); err != nil {
		return flagError(err)
	}
	switch {
	case *configPath == "":
		fs.Usage()
		return &exitError{code: 2, err: errors.New("scan: --config is required")}
	case fs.NArg() > 0:
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("scan: unexpected argument %q", fs.Arg(0))}
	case *sample < 0:
		return &exitError{code: 2, err: errors.New("scan: --sample must be 0 or more")}
	case *format != scan.FormatYAML && *format != scan.FormatTable && *format != scan.FormatJSON:
		return &exitError{code: 2, err: fmt.Errorf("scan: unknown --format %q (yaml, table or json)", *format)}
	case *merge != "" && *format != scan.FormatYAML:
		return &exitError{code: 2, err: errors.New("scan: --merge writes a policy file: it takes no --format")}
	}
	var existing []byte
	if *merge != "" {
		var err error
		if existing, err = os.ReadFile(*merge); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
	}
	cfg, name, err := loadForDatabase(*configPath, *database)
	if err != nil {
		return err
	}
	// The configuration's auth_user normally reads the catalog only; a
	// user who may read the tables is given here, for this connection.
	conf := *cfg
	if *user != "" {
		conf.Auth.AuthUser = *user
	}
	if *passwordFile != "" {
		conf.Auth.AuthPasswordFile = *passwordFile
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	conn, err := catalog.Connect(cctx, &conf, name)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to database %q as %s: %w", name, conf.Auth.AuthUser, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	res, err := scan.Scan(ctx, conn, scan.Options{Sample: *sample, StatementTimeout: *timeout, Progress: progress(stderr, time.Now())})
	if err != nil {
		return fmt.Errorf("scan database %q: %w", name, err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	w, done, err := output(*out, stdout)
	if err != nil {
		return err
	}
	if *merge != "" {
		merged, added, err := scan.Merge(existing, res)
		if err != nil {
			done()
			return err
		}
		if _, err := w.Write(merged); err != nil {
			done()
			return fmt.Errorf("scan: %w", err)
		}
		fmt.Fprintf(stderr, "scan: %d proposed columns, %d added to %s (existing entries kept)\n", len(res.Proposals), added, *merge)
		return done()
	}
	if err := scan.Write(w, res, *format); err != nil {
		done()
		return err
	}
	return done()
}

// output is stdout, or the file path (written whole, then closed).
func output(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: %w", err)
	}
	var once sync.Once
	var cerr error
	return f, func() error {
		once.Do(func() {
			if cerr = f.Close(); cerr != nil {
				cerr = fmt.Errorf("scan: %w", cerr)
			}
		})
		return cerr
	}, nil
}

// progress reports "scanned 3/12 tables…" on stderr when it is a terminal,
// or once the scan has taken longer than progressAfter; only counts, never
// a table's contents.
func progress(stderr io.Writer, start time.Time) func(done, total int) {
	terminal := false
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			terminal = true
		}
	}
	return func(done, total int) {
		if terminal || time.Since(start) > progressAfter {
			fmt.Fprintf(stderr, "scanned %d/%d tables…\n", done, total)
		}
	}
}
