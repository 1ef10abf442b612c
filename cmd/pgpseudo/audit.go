package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// Exit statuses of the audit commands (docs/audit.md).
const (
	exitTampered       = 1 // the log failed verification or is malformed
	exitUsage          = 2
	exitKeyUnavailable = 3 // no usable audit key, or the log was written with another
	exitUnreadable     = 4 // a log or checkpoint file cannot be read
)

const auditUsage = `pgpseudo audit — verify and query the audit log

Commands:
  verify --config FILE | --key-file FILE [--checkpoints FILE] [--partial] [--format text|json] LOG…
  query  [--user U] [--role R] [--table T] [--column C] [--decision D] [--outcome O]
         [--type T] [--since TIME] [--until TIME] [--format table|json|csv] LOG…
  report [--since TIME] [--until TIME] [--format table|json|csv] LOG…
  keygen --out FILE

LOG… is one file or a rotated set in any order (e.g. audit*.jsonl). TIME is
RFC 3339 (2025-03-01T09:00:00Z), a date (2025-03-01, UTC) or a duration
before now (24h). Exit status: 0 OK, 1 tampered or malformed, 2 usage,
3 key unavailable or wrong, 4 file unreadable.
`

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return &exitError{code: exitUsage, err: errors.New("audit: no subcommand given")}
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr)
	case "query":
		return auditQuery(ctx, args[1:], stdout, stderr)
	case "report":
		return auditReport(ctx, args[1:], stdout, stderr)
	case "keygen":
		return auditKeygen(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	}
	fmt.Fprint(stderr, auditUsage)
	return &exitError{code: exitUsage, err: fmt.Errorf("audit: unknown subcommand %q", args[0])}
}

// parseArgs parses flags placed anywhere among the file arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) == 0 {
		fs.Usage()
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("audit %s: no log files given", fs.Name())}
	}
	return files, nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// exitFor maps an audit error to its exit status.
func exitFor(err error) error {
	code := exitTampered
	var pe *fs.PathError
	switch {
	case errors.Is(err, audit.ErrKeyUnavailable), errors.Is(err, audit.ErrWrongKey):
		code = exitKeyUnavailable
	case errors.Is(err, audit.ErrTampered), errors.Is(err, audit.ErrMalformed):
		code = exitTampered
	case errors.As(err, &pe):
		code = exitUnreadable
	}
	return &exitError{code: code, err: err}
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	keyFile := fs.String("key-file", "", "file holding the audit key (hex or base64)")
	configPath := fs.String("config", "", "proxy configuration: take the audit key from its key provider (as the proxy does)")
	ckpt := fs.String("checkpoints", "", "checkpoint file to check the log against")
	partial := fs.Bool("partial", false, "accept a set whose older files were removed")
	format := fs.String("format", "text", "output: text or json")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("audit verify: --format must be text or json, got %q", *format)}
	}
	var key []byte
	switch {
	case (*keyFile == "") == (*configPath == ""):
		return &exitError{code: exitUsage, err: errors.New("audit verify: give --config or --key-file")}
	case *keyFile != "":
		if key, err = audit.LoadKeyFile(*keyFile); err != nil {
			return exitFor(err)
		}
	default:
		if key, err = providerAuditKey(ctx, *configPath, stderr); err != nil {
			return &exitError{code: exitKeyUnavailable, err: err}
		}
	}
	// Each chain (the proxy's log, each command's log beside it) is
	// verified on its own; the checkpoint file against the log it names.
	chains := audit.Chains(files)
	ckptChain := -1
	if *ckpt != "" {
		if ckptChain, err = audit.CheckpointChain(*ckpt, chains); err != nil {
			clear(key)
			return exitFor(err)
		}
	}
	type chainResult struct {
		res audit.VerifyResult
		err error
	}
	results := make([]chainResult, len(chains))
	for i, chain := range chains {
		opts := audit.VerifyOptions{Partial: *partial}
		if i == ckptChain {
			opts.Checkpoints = *ckpt
		}
		results[i].res, results[i].err = audit.Verify(ctx, audit.StaticKey(key), chain, opts)
	}
	clear(key)
	var worst error
	for _, r := range results {
		if r.err != nil && (worst == nil || exitCode(exitFor(r.err)) > exitCode(exitFor(worst))) {
			worst = r.err
		}
	}
	if *format == "json" {
		type out struct {
			Status string `json:"status"`
			audit.VerifyResult
			Problem *audit.TamperError `json:"problem,omitempty"`
			Error   string             `json:"error,omitempty"`
		}
		outs := make([]out, len(results))
		for i, r := range results {
			outs[i] = out{Status: "ok", VerifyResult: r.res}
			var te *audit.TamperError
			switch {
			case errors.As(r.err, &te):
				outs[i].Status, outs[i].Problem = "tampered", te
			case r.err != nil:
				outs[i].Status, outs[i].Error = "error", r.err.Error()
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(outs) == 1 {
			enc.Encode(outs[0])
		} else {
			status := "ok"
			for _, o := range outs {
				if o.Status != "ok" && status != "error" {
					status = o.Status
				}
			}
			enc.Encode(struct {
				Status string `json:"status"`
				Chains []out  `json:"chains"`
			}{status, outs})
		}
	} else {
		for i, r := range results {
			prefix := ""
			if len(results) > 1 {
				prefix = chainLabel(chains[i]) + ": "
			}
			printVerify(stdout, prefix, r.res, r.err, i == ckptChain, *ckpt)
		}
	}
	for _, r := range results {
		for _, w := range r.res.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	if worst != nil {
		return exitFor(worst)
	}
	return nil
}

// chainLabel names a chain by its active file (the one without an
// archive's sequence number), else its first file.
func chainLabel(files []string) string {
	for _, f := range files {
		if !audit.IsArchive(f) {
			return f
		}
	}
	return files[0]
}

// printVerify writes one chain's verdict in words.
func printVerify(w io.Writer, prefix string, res audit.VerifyResult, err error, checked bool, ckpt string) {
	var te *audit.TamperError
	switch {
	case err == nil:
		state := "closed cleanly"
		if !res.Closed {
			state = "not closed (writer running or crashed, or its end removed: verify with --checkpoints)"
		}
		fmt.Fprintf(w, "%sOK: %d records (%d…%d) in %d files, %d checkpoints", prefix, res.Records, res.FirstSeq, res.LastSeq, len(res.Files), res.Checkpoints)
		if checked {
			fmt.Fprintf(w, ", %d checked against %s", res.External, ckpt)
		}
		fmt.Fprintf(w, "; %s\n", state)
	case errors.As(err, &te):
		fmt.Fprintf(w, "%sTAMPERED: record %d %s at %s", prefix, te.Record, te.Kind, te.File)
		if te.Line > 0 {
			fmt.Fprintf(w, ":%d", te.Line)
		}
		fmt.Fprintf(w, ": %s\n", te.Detail)
	default:
		fmt.Fprintf(w, "%sERROR: %v\n", prefix, err)
	}
}

// timeFlag parses TIME arguments.
type timeFlag struct {
	t   *time.Time
	now func() time.Time
}

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f timeFlag) Set(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*f.t = t
			return nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d > 0 {
		*f.t = f.now().Add(-d)
		return nil
	}
	return fmt.Errorf("want RFC 3339 time, a date or a duration, got %q", s)
}

func timeFlags(fs *flag.FlagSet, f *audit.Filter) {
	fs.Var(timeFlag{&f.Since, time.Now}, "since", "records at or after TIME")
	fs.Var(timeFlag{&f.Until, time.Now}, "until", "records before TIME")
}

func auditQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", stderr)
	var f audit.Filter
	fs.StringVar(&f.User, "user", "", "user (session user, auth failure user, detokenize or rotation actor)")
	fs.StringVar(&f.Role, "role", "", "policy role")
	fs.StringVar(&f.Table, "table", "", "table: name or schema.name")
	fs.StringVar(&f.Column, "column", "", "column: name, table.name or schema.table.name")
	decision := fs.String("decision", "", "allowed, tokenized, masked, nulled or blocked")
	outcome := fs.String("outcome", "", "ok, refused, error or cancelled")
	types := fs.String("type", "", "record types, comma-separated (statement, connection_start…)")
	client := fs.String("client", "", "client address or prefix (10.0.0.5, 10.0.0.0/8): its connections' records")
	timeFlags(fs, &f)
	format := fs.String("format", audit.FormatTable, "output: table, json or csv")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkEnum("decision", *decision, audit.Decisions()); err != nil {
		return err
	}
	if err := checkEnum("outcome", *outcome, audit.Outcomes()); err != nil {
		return err
	}
	f.Decision, f.Outcome = audit.Decision(*decision), audit.Outcome(*outcome)
	if *client != "" {
		if f.Client, err = parseClient(*client); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("audit query: --client: %w", err)}
		}
	}
	if *types != "" {
		for _, t := range strings.Split(*types, ",") {
			if err := checkEnum("type", t, audit.Types()); err != nil {
				return err
			}
			f.Types = append(f.Types, audit.Type(t))
		}
	}
	rw, err := audit.NewRecordWriter(stdout, *format)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("audit query: %w", err)}
	}
	err = audit.ReadRecords(ctx, files, func(r *audit.Record) error {
		if f.Match(r) {
			return rw.Write(r)
		}
		return nil
	})
	if ferr := rw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return exitFor(err)
	}
	return nil
}

// parseClient reads an address or a prefix.
func parseClient(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an IP address or prefix, got %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func checkEnum[T ~string](name, v string, valid []T) error {
	if v == "" {
		return nil
	}
	var names []string
	for _, x := range valid {
		if string(x) == v {
			return nil
		}
		names = append(names, string(x))
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("--%s must be one of %s, got %q", name, strings.Join(names, ", "), v)}
}

func auditReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	var f audit.Filter
	timeFlags(fs, &f)
	format := fs.String("format", audit.FormatTable, "output: table, json or csv")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch *format {
	case audit.FormatTable, audit.FormatJSON, audit.FormatCSV:
	default:
		return &exitError{code: exitUsage, err: fmt.Errorf("audit report: --format must be table, json or csv, got %q", *format)}
	}
	rp := audit.NewReport(f.Since, f.Until)
	if err := audit.ReadRecords(ctx, files, func(r *audit.Record) error { rp.Add(r); return nil }); err != nil {
		return exitFor(err)
	}
	return rp.WriteTo(stdout, *format)
}

func auditKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "", "file to create (mode 0600); it must not exist")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("audit keygen: --out FILE is required")}
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	key := audit.GenerateKey()
	_, err = f.Write(audit.EncodeKey(key))
	clear(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote a new audit key to %s (for tests and demos; production keys come from the key provider)\n", *out)
	return nil
}

// providerAuditKey derives the audit key from the configured key provider,
// the way the proxy does.
func providerAuditKey(ctx context.Context, configPath string, stderr io.Writer) ([]byte, error) {
	kf, err := loadKeysConfig(configPath)
	if err != nil {
		return nil, err
	}
	ctx, p, _, done, err := openProvider(ctx, kf, stderr)
	if err != nil {
		return nil, err
	}
	defer done()
	return crypto.AuditKeySource{Provider: p}.AuditKey(ctx)
}
