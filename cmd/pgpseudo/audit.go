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
	"path/filepath"
	"strings"
	"time"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// Exit statuses of the audit commands (docs/audit.md).
const (
	exitTampered       = 1 // the log failed verification or is malformed
	exitUsage          = 2
	exitKeyUnavailable = 3 // no usable public or signing key, or the log was signed by another
	exitUnreadable     = 4 // a log or checkpoint file cannot be read
)

const auditUsage = `pgpseudo audit — verify and query the audit log

Commands:
  verify --public-key FILE | --config FILE [--checkpoints FILE] [--partial] [--format text|json] LOG…
  query  [--user U] [--role R] [--table T] [--column C] [--decision D] [--outcome O]
         [--type T] [--since TIME] [--until TIME] [--format table|json|csv] LOG…
  report [--since TIME] [--until TIME] [--format table|json|csv] LOG…
  keygen --out FILE | --config FILE
  public-key --config FILE

verify needs no secret: the public key (audit public-key prints it) checks
every checkpoint's signature. keygen --out writes an Ed25519 signing key for
audit.signing_key_file and its public key FILE.pub; keygen --config creates
the Vault Transit key of audit.signing_transit_key.

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
		return auditKeygen(ctx, args[1:], stdout, stderr)
	case "public-key":
		return auditPublicKey(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	}
	fmt.Fprint(stderr, auditUsage)
	return &exitError{code: exitUsage, err: fmt.Errorf("audit: unknown subcommand %q", args[0])}
}

// parseArgs parses flags placed anywhere among the file arguments.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, flagError(err)
	}
	var files []string
	for fs.NArg() > 0 {
		files = append(files, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, flagError(err)
		}
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
	pubFile := fs.String("public-key", "", "PEM file with the signer's public key(s) (audit public-key prints them)")
	configPath := fs.String("config", "", "proxy configuration: take the public keys from its audit signer")
	ckpt := fs.String("checkpoints", "", "checkpoint file to check the log against (default: the one beside the log)")
	partial := fs.Bool("partial", false, "accept a set whose older files were removed")
	format := fs.String("format", "text", "output: text or json")
	files, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("audit verify: --format must be text or json, got %q", *format)}
	}
	var keys audit.PublicKeys
	switch {
	case (*pubFile == "") == (*configPath == ""):
		return &exitError{code: exitUsage, err: errors.New("audit verify: give --public-key or --config")}
	case *pubFile != "":
		if keys, err = audit.LoadPublicKeys(*pubFile); err != nil {
			return &exitError{code: exitKeyUnavailable, err: err}
		}
	default:
		if keys, err = configPublicKeys(ctx, *configPath, stderr); err != nil {
			return &exitError{code: exitKeyUnavailable, err: err}
		}
	}
	// Each chain (the proxy's log, each command's log beside it) is
	// verified on its own; the checkpoint file against the log it names.
	chains := audit.Chains(files)
	ckpts := make([]string, len(chains))
	for i, chain := range chains {
		// The checkpoint file the writer keeps beside the active file,
		// named after the chain whatever the files given are called.
		if c := audit.DefaultCheckpointPath(audit.ChainName(chain[0])); fileExists(c) {
			ckpts[i] = c
		}
	}
	if *ckpt != "" {
		i, err := audit.CheckpointChain(*ckpt, chains)
		if err != nil {
			return exitFor(err)
		}
		ckpts[i] = *ckpt
	}
	type chainResult struct {
		res audit.VerifyResult
		err error
	}
	results := make([]chainResult, len(chains))
	for i, chain := range chains {
		opts := audit.VerifyOptions{Partial: *partial, Checkpoints: ckpts[i]}
		results[i].res, results[i].err = audit.Verify(ctx, keys, chain, opts)
	}
	// A checkpoint file beside the logs whose log is gone: a log (say
	// audit-detokenize.jsonl) was removed, and a glob no longer names it.
	for _, c := range orphanCheckpoints(files, chains) {
		log := strings.TrimSuffix(c, audit.CheckpointSuffix)
		chains, ckpts = append(chains, []string{log}), append(ckpts, c)
		results = append(results, chainResult{err: &audit.TamperError{Kind: audit.MissingFile, Record: 1, File: log,
			Detail: fmt.Sprintf("the log is gone, but its checkpoint file %s is here: it was removed", filepath.Base(c))}})
	}
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
			printVerify(stdout, prefix, r.res, r.err, ckpts[i])
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

// orphanCheckpoints returns the checkpoint files in the directories of
// files whose log has neither its active file nor an archive among the
// chains given and none on disk either.
func orphanCheckpoints(files []string, chains [][]string) []string {
	given := map[string]bool{}
	for _, c := range chains {
		given[filepath.Clean(audit.ChainName(c[0]))] = true
	}
	dirs := map[string]bool{}
	var out []string
	for _, f := range files {
		d := filepath.Dir(f)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		matches, _ := filepath.Glob(filepath.Join(d, "*"+audit.CheckpointSuffix))
		for _, c := range matches {
			log := filepath.Clean(strings.TrimSuffix(c, audit.CheckpointSuffix))
			if given[log] || fileExists(log) {
				continue
			}
			ext := filepath.Ext(log)
			if archives, _ := filepath.Glob(strings.TrimSuffix(log, ext) + "-*" + ext); len(archives) > 0 {
				continue // its active file was archived; its archives are on disk
			}
			out = append(out, c)
		}
	}
	return out
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
func printVerify(w io.Writer, prefix string, res audit.VerifyResult, err error, ckpt string) {
	var te *audit.TamperError
	switch {
	case err == nil:
		fmt.Fprintf(w, "%sOK: %d records (%d…%d) in %d files, signed through record %d by key %s (%d checkpoints",
			prefix, res.Records, res.FirstSeq, res.LastSeq, len(res.Files), res.SignedThrough, strings.Join(res.SigningKeys, ", "), res.Checkpoints)
		if ckpt != "" {
			fmt.Fprintf(w, ", %d in %s", res.External, filepath.Base(ckpt))
		}
		fmt.Fprint(w, ")")
		switch {
		case res.Closed:
			fmt.Fprint(w, "; closed cleanly")
		case res.Unsigned == 0:
			fmt.Fprint(w, "; not closed (the writer is running or stopped without closing), every record signed")
		default:
			fmt.Fprintf(w, "; not closed: the last %d records are not signed yet (the writer is running or crashed, or someone else appended them)", res.Unsigned)
		}
		if len(res.Gaps) > 0 {
			var n uint64
			for _, g := range res.Gaps {
				n += g.Records
			}
			fmt.Fprintf(w, "; UNSIGNED: %d records in %d gaps no signature covers (see the warnings)", n, len(res.Gaps))
		}
		fmt.Fprintln(w)
		if ckpt == "" {
			fmt.Fprintf(w, "%s  no checkpoint file: a log cut back to an earlier checkpoint cannot be detected (give --checkpoints)\n", prefix)
		}
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

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
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
	files, err := parseArgs(fs, args, stdout)
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
		// statement_text records name the statements written after them.
		if r.StatementText != nil || f.Match(r) {
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
	files, err := parseArgs(fs, args, stdout)
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

func auditKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "", "private key file to create (mode 0600; it must not exist); the public key goes to FILE.pub")
	configPath := fs.String("config", "", "proxy configuration: create the Vault Transit key of audit.signing_transit_key")
	if err := parseFlags(fs, args, stdout); err != nil {
		return flagError(err)
	}
	if (*out == "") == (*configPath == "") || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("audit keygen: give --out FILE or --config FILE")}
	}
	if *configPath != "" {
		return withConfigSigner(ctx, *configPath, stderr, func(ctx context.Context, s config.AuditSigner) error {
			ts, ok := s.(*crypto.TransitSigner)
			if !ok {
				return errors.New("audit keygen --config: the configuration has no audit.signing_transit_key (for a key file use --out)")
			}
			created, err := ts.Create(ctx)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintln(stderr, "created the Vault Transit signing key (type ed25519)")
			} else {
				fmt.Fprintln(stderr, "the Vault Transit signing key exists")
			}
			return printPublicKeys(ctx, stdout, s)
		})
	}
	priv, pub, err := audit.GenerateSigningKey()
	if err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	defer clear(priv)
	if err := writeNewFile(*out, priv, 0o600); err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	if err := writeNewFile(*out+".pub", pub, 0o644); err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote an Ed25519 checkpoint signing key to %s (audit.signing_key_file) and its public key to %s.pub (for audit verify --public-key)\n", *out, *out)
	return nil
}

// writeNewFile creates path (which must not exist) with data.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func auditPublicKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("public-key", stderr)
	configPath := fs.String("config", "", "proxy configuration whose audit signer to read")
	if err := parseFlags(fs, args, stdout); err != nil {
		return flagError(err)
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("audit public-key: --config FILE is required")}
	}
	return withConfigSigner(ctx, *configPath, stderr, func(ctx context.Context, s config.AuditSigner) error {
		return printPublicKeys(ctx, stdout, s)
	})
}

func printPublicKeys(ctx context.Context, w io.Writer, s config.AuditSigner) error {
	pubs, err := s.PublicKeys(ctx)
	if err != nil {
		return err
	}
	for _, p := range pubs {
		b, err := audit.EncodePublicKey(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "# key_id %s\n%s", audit.KeyID(p), b)
	}
	return nil
}

// withConfigSigner runs f with the audit signer the configuration names,
// opening the key provider only for a Vault Transit signer.
func withConfigSigner(ctx context.Context, configPath string, stderr io.Writer, f func(context.Context, config.AuditSigner) error) error {
	kf, err := loadCommandConfig(configPath, false)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if kf.Audit.Path == "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s has no audit section", configPath)}
	}
	var p crypto.KeyProvider
	if kf.Audit.SigningTransitKey != "" {
		if kf.Keys.Provider != crypto.ProviderVault {
			return &exitError{code: exitUsage, err: errors.New("audit.signing_transit_key needs keys.provider: vault")}
		}
		var done func()
		ctx, p, _, done, err = openProvider(ctx, kf, stderr)
		if err != nil {
			return &exitError{code: exitKeyUnavailable, err: err}
		}
		defer done()
	}
	s, err := config.NewAuditSigner(kf.Audit, p)
	if err != nil {
		return &exitError{code: exitKeyUnavailable, err: err}
	}
	if err := f(ctx, s); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitKeyUnavailable, err: err}
	}
	return nil
}

// configPublicKeys returns the public keys of the configuration's signer.
func configPublicKeys(ctx context.Context, configPath string, stderr io.Writer) (audit.PublicKeys, error) {
	var keys audit.PublicKeys
	err := withConfigSigner(ctx, configPath, stderr, func(ctx context.Context, s config.AuditSigner) error {
		var err error
		keys, err = config.AuditPublicKeys(ctx, s)
		return err
	})
	return keys, err
}
