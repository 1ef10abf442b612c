package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

const keysUsage = `Usage: pgpseudo keys COMMAND --config FILE [--json] [LOG…]

Commands:
  init      create the Vault Transit key (if missing and allowed) and the keyset
  rotate    add a new primary key version; old versions stay for detokenisation
  status    show versions, creation times and where the keyset is stored

FILE is the proxy configuration; only its keys: and log: sections are used.
LOG… (status and rotate) are running proxies' audit logs, e.g. each
replica's audit*.jsonl: the primary version each proxy last recorded is
shown beside the keyset's (proxies pick a rotation up within
keys.refresh_interval).
Exit status: 0 success, 1 failure, 2 usage error.
`

// keys runs "pgpseudo keys init|rotate|status".
func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return &exitError{code: 2, err: errors.New("keys: no command given (init, rotate or status)")}
	}
	sub := args[0]
	switch sub {
	case "init", "rotate", "status":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return &exitError{code: 2, err: fmt.Errorf("keys: unknown command %q", sub)}
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "proxy configuration file (YAML) with a keys: section")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return flagError(err)
	}
	logs := fs.Args()
	for _, l := range logs {
		// Checked before anything runs: a stray word must not rotate.
		if sub == "init" || !fileExists(l) {
			fs.Usage()
			return &exitError{code: 2, err: fmt.Errorf("keys %s: unexpected argument %q (LOG… must be existing audit log files)", sub, l)}
		}
	}
	if *configPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("keys %s: --config is required", sub)}
	}
	cfg, err := loadKeysConfig(*configPath)
	if err != nil {
		return err
	}
	ctx, p, log, done, err := openProvider(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer done()

	fmt.Fprintf(stderr, "pgpseudo keys %s: %s\n", sub, describeStore(cfg.Keys))
	var st crypto.Status
	switch sub {
	case "init":
		st, err = p.Init(ctx)
	case "rotate":
		st, err = rotate(ctx, cfg, p, log)
	case "status":
		st, err = p.Status(ctx)
	}
	if err != nil {
		return fmt.Errorf("keys %s: %w", sub, err)
	}
	switch sub {
	case "init":
		fmt.Fprintf(stderr, "pgpseudo keys init: created keyset with primary version %d\n", st.Primary)
	case "rotate":
		fmt.Fprintf(stderr, "pgpseudo keys rotate: new primary version %d; versions %s stay for detokenisation\n",
			st.Primary, olderVersions(st))
	}
	var proxies []proxyKeys
	if len(logs) > 0 {
		if proxies, err = proxiesInUse(ctx, logs, st.Primary); err != nil {
			return fmt.Errorf("keys %s: %w", sub, err)
		}
	}
	return printStatus(stdout, st, proxies, *asJSON)
}

// proxyKeys is the primary version a proxy last recorded in its audit log.
type proxyKeys struct {
	Log     string    `json:"log"`
	Version uint32    `json:"version"`
	Since   time.Time `json:"since"`
	Current bool      `json:"current"`
}

// proxiesInUse reads key_rotation records written by proxies (actor
// pgpseudo: the keys loaded at start and each rotation picked up), one
// entry per log chain that has any. The logs are read, not verified.
func proxiesInUse(ctx context.Context, logs []string, primary uint32) ([]proxyKeys, error) {
	out := []proxyKeys{}
	for _, chain := range audit.Chains(logs) {
		var last *proxyKeys
		err := audit.ReadRecords(ctx, chain, func(r *audit.Record) error {
			if k := r.KeyRotation; k != nil && k.Actor == "pgpseudo" && k.Outcome == audit.OutcomeOK {
				last = &proxyKeys{Log: chainLabel(chain), Version: k.Version, Since: r.Time}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last != nil {
			last.Current = last.Version == primary
			out = append(out, *last)
		}
	}
	return out, nil
}

// rotate adds a primary version and, when the configuration has an audit
// log, records who rotated from which version to which (key_rotation, in
// the keys command's own chain); a rotation whose record cannot be
// written reports that error.
func rotate(ctx context.Context, cfg keysFile, p crypto.KeyProvider, log *zap.Logger) (crypto.Status, error) {
	var prev uint32
	if before, err := p.Status(ctx); err == nil {
		prev = before.Primary
	}
	st, err := p.Rotate(ctx)
	who := whoAmI(ctx, cfg.Keys, p)
	ev := audit.KeyRotation{Actor: who.label(), Provider: cfg.Keys.Provider, Previous: prev, Version: st.Primary, Outcome: outcomeOf(err)}
	if aerr := auditCommand(ctx, cfg, p, log, "keys", ev); aerr != nil {
		return st, errors.Join(err, fmt.Errorf("the key_rotation audit record could not be written: %w", aerr))
	}
	return st, err
}

// keysFile is the part of the proxy configuration the key commands read.
type keysFile struct {
	Keys crypto.Config
	Log  config.Log
	// Policy and Audit are set when the file names them (detokenize uses
	// the policy's column transforms and writes audit records).
	Policy string
	Audit  audit.Config
}

// loadKeysConfig reads the proxy configuration file for the key commands.
// The file is decoded as a proxy configuration (so unknown keys and wrong
// types are still refused with their line), but only keys: (required) and
// log: are validated: an operator can point at the proxy's own file or at
// a file holding just a keys: section.
func loadKeysConfig(path string) (keysFile, error) { return loadCommandConfig(path, true) }

// loadCommandConfig is loadKeysConfig with the keys: section optional
// (the audit commands need it only for a Vault Transit signer).
func loadCommandConfig(path string, needKeys bool) (keysFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return keysFile{}, fmt.Errorf("read config: %w", err)
	}
	cfg := config.Defaults()
	pos, err := yamlconf.Decode(path, data, &cfg)
	if err != nil {
		return keysFile{}, err
	}
	if !pos.Has("keys") && needKeys {
		return keysFile{}, pos.Errorf("keys", "section is required (see docs/keys.md)")
	}
	var kc crypto.Config
	if pos.Has("keys") {
		kc = cfg.Keys.WithDefaults()
		if err := kc.Validate(); err != nil {
			return keysFile{}, pos.Errorf("keys", "%s", strings.TrimPrefix(err.Error(), crypto.ErrInvalidConfig.Error()+": "))
		}
	}
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return keysFile{}, pos.Errorf("log.level", "must be debug, info, warn or error, got %q", cfg.Log.Level)
	}
	switch cfg.Log.Format {
	case "json", "console":
	default:
		return keysFile{}, pos.Errorf("log.format", "must be json or console, got %q", cfg.Log.Format)
	}
	kf := keysFile{Keys: kc, Log: cfg.Log, Policy: cfg.Policy}
	if pos.Has("audit") {
		kf.Audit = cfg.Audit.WithDefaults()
	}
	return kf, nil
}

// newCLILogger builds a logger writing to w (the command's stderr) with the
// configured level and format.
func newCLILogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	var enc zapcore.Encoder
	if c.Format == "console" {
		enc = zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

// describeStore says where the keyset lives, for progress output.
func describeStore(c crypto.Config) string {
	if c.Provider == crypto.ProviderFile {
		return "file " + c.File.Path + " (demo/test provider: keys in clear)"
	}
	v := c.Vault
	return fmt.Sprintf("vault at %s, keyset %s/data/%s, KEK %s/keys/%s",
		v.Address, v.KVMount, strings.TrimPrefix(v.KVPath, "/"), v.TransitMount, v.TransitKey)
}

func olderVersions(st crypto.Status) string {
	var vs []string
	for _, v := range st.Versions {
		if v.Version != st.Primary {
			vs = append(vs, fmt.Sprint(v.Version))
		}
	}
	if len(vs) == 0 {
		return "(none)"
	}
	return strings.Join(vs, ", ")
}

// printStatus writes st as a table or as JSON. Status never holds key
// material.
func printStatus(w io.Writer, st crypto.Status, proxies []proxyKeys, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if proxies == nil {
			return enc.Encode(st)
		}
		return enc.Encode(struct {
			crypto.Status
			Proxies []proxyKeys `json:"proxies"`
		}{st, proxies})
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "provider:\t%s\n", st.Provider)
	fmt.Fprintf(tw, "location:\t%s\n", st.Location)
	if st.KEK != "" {
		fmt.Fprintf(tw, "kek:\t%s\n", st.KEK)
	}
	fmt.Fprintf(tw, "primary:\t%d\n", st.Primary)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "VERSION\tKEY ID\tCREATED\tPRIMARY")
	for _, v := range st.Versions {
		mark := ""
		if v.Version == st.Primary {
			mark = "*"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", v.Version, v.KeyID, v.Created.UTC().Format(time.RFC3339), mark)
	}
	if proxies != nil {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "PROXY LOG\tIN USE\tSINCE\tSTATE")
		for _, p := range proxies {
			state := "current"
			if !p.Current {
				state = "behind (picks the primary up within keys.refresh_interval, or is not running)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Log, p.Version, p.Since.UTC().Format(time.RFC3339), state)
		}
		if len(proxies) == 0 {
			fmt.Fprintln(tw, "(no proxy recorded its keys in the logs given)")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads the cell before an empty last cell; drop that.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// openProvider starts what every key command needs: the CLI logger, a
// context ended by SIGTERM or Ctrl-C, and the key provider. done releases
// them in order.
func openProvider(ctx context.Context, cfg keysFile, stderr io.Writer) (context.Context, crypto.KeyProvider, *zap.Logger, func(), error) {
	log, err := newCLILogger(cfg.Log, stderr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	p, err := crypto.NewProvider(ctx, cfg.Keys, log)
	if err != nil {
		stop()
		_ = log.Sync()
		return nil, nil, nil, nil, err
	}
	return ctx, p, log, func() {
		p.Close()
		stop()
		_ = log.Sync()
	}, nil
}
