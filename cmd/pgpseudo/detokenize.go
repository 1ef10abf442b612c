package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
)

const detokenizeUsage = `Usage: pgpseudo detokenize --config FILE --domain DOMAIN [--json]
       [--type int4|int8] [--column SCHEMA.TABLE.COLUMN] [TOKEN…]

Prints the original value of each reversible token (tr2_…, or tr1_… of
earlier releases) made in DOMAIN, one per line in the order given. When the
configuration names a policy whose columns in DOMAIN use a type-preserving
transform (int, uuid, digits, iban, card), values are reversed with that
column's transform and key version (the domain's pinned key_version, else
the keyset's first, as the proxy makes them), and each result is tokenized again and must give the value back. Nothing is
guessed: an int domain needs --type, a domain whose columns transform
differently (keep_prefix, kind) needs --column. Without TOKEN arguments,
tokens are read from standard input, one per line (blank lines are
skipped). Nothing is printed unless every token detokenises.

Vault decides who may do this: the Vault identity must be allowed to read
and unwrap the keyset and to read <kv_mount>/data/<kv_path>/detokenize/DOMAIN
(docs/keys.md). Every use is logged (who, domain, token count —
never tokens or values).

Exit status: 0 success, 1 failure, 2 usage error.

Flags:
`

// maxTokenLine bounds one line of standard input.
const maxTokenLine = 1 << 20

// detokenize runs "pgpseudo detokenize".
func detokenize(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("detokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), detokenizeUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "proxy configuration file (YAML) with a keys: section")
	domain := fs.String("domain", "", "token domain the tokens were made in")
	asJSON := fs.Bool("json", false, "print a JSON array of strings (values may contain newlines)")
	typeName := fs.String("type", "", "column type for int domains: int4 or int8 (required for them; put -- before negative values)")
	column := fs.String("column", "", "schema.table.column the values come from, when the domain's columns transform differently")
	// A negative value given before "--" would be read as a flag, and the
	// flag package would echo it: refuse it without naming it.
	for _, a := range args {
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9' {
			return &exitError{code: 2, err: errors.New("detokenize: a value starting with '-' must come after -- (or on standard input)")}
		}
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return flagError(err)
	}
	switch {
	case *configPath == "":
		fs.Usage()
		return &exitError{code: 2, err: errors.New("detokenize: --config is required")}
	case *domain == "":
		fs.Usage()
		return &exitError{code: 2, err: errors.New("detokenize: --domain is required")}
	}
	cfg, err := loadKeysConfig(*configPath)
	if err != nil {
		return err
	}
	tokens := fs.Args()
	if len(tokens) == 0 {
		if tokens, err = readTokens(stdin); err != nil {
			return fmt.Errorf("detokenize: reading standard input: %w", err)
		}
		if len(tokens) == 0 {
			fs.Usage()
			return &exitError{code: 2, err: errors.New("detokenize: no tokens given (as arguments or on standard input)")}
		}
	}
	ctx, p, log, done, err := openProvider(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer done()

	fmt.Fprintf(stderr, "pgpseudo detokenize: %d token(s) in domain %q; %s\n", len(tokens), *domain, describeStore(cfg.Keys))
	rev, err := reverserFor(cfg.Policy, *domain, reverseOptions{column: *column, typeName: *typeName})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	values, err := detokenizeAll(ctx, p, *domain, tokens, rev)
	who := whoAmI(ctx, cfg.Keys, p)
	logDetokenize(log, who, *domain, len(tokens), err)
	if aerr := auditDetokenize(ctx, cfg, p, log, who, *domain, len(tokens), err); aerr != nil {
		return fmt.Errorf("detokenize: the audit record could not be written, so no value is shown: %w", aerr)
	}
	if err != nil {
		return fmt.Errorf("detokenize: %w", err)
	}
	return writeValues(stdout, values, *asJSON)
}

// readTokens reads one token per line; blank lines are skipped.
func readTokens(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxTokenLine)
	var tokens []string
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens, sc.Err()
}

// detokenizeAll reverses every token or fails as a whole. Errors name the
// token's position, never the token.
func detokenizeAll(ctx context.Context, p crypto.KeyProvider, domain string, tokens []string, rev *reverser) ([]string, error) {
	// Vault scopes detokenisation per domain, checked before the keyset
	// is unwrapped; the file provider has no identities to scope.
	if s, ok := p.(crypto.DetokenizeAuthorizer); ok {
		if err := s.AllowDetokenize(ctx, domain); err != nil {
			return nil, err
		}
	}
	ks, err := p.Keyset(ctx)
	if err != nil {
		return nil, err
	}
	var vr *crypto.ValueReverser
	if rev != nil {
		if vr, err = crypto.NewValueReverser(rev.spec, ks, rev.typeOID); err != nil {
			return nil, err
		}
	}
	values := make([]string, len(tokens))
	for i, tok := range tokens {
		var v string
		var err error
		if vr != nil {
			v, err = vr.Reverse(tok)
		} else {
			v, err = crypto.Detokenize(ctx, p, domain, tok)
		}
		if err != nil {
			return nil, fmt.Errorf("token %d of %d: %w", i+1, len(tokens), err)
		}
		values[i] = v
	}
	return values, nil
}

// writeValues prints one value per line, or a JSON array. A value holding a
// line break cannot be printed one per line without ambiguity.
func writeValues(w io.Writer, values []string, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(values)
	}
	for i, v := range values {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("detokenize: value %d contains a line break; use --json", i+1)
		}
	}
	bw := bufio.NewWriter(w)
	for _, v := range values {
		bw.WriteString(v)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// actor is who asked for a detokenisation, as far as the key store tells.
type actor struct {
	// Name is the Vault token's display name, or the local user for the
	// file provider; empty when it could not be found out.
	Name string
	// EntityID is the Vault identity entity of the token, if any.
	EntityID string
	// Method is the auth method: token, approle, kubernetes or file.
	Method string
}

// logDetokenize records one detokenisation: who, the domain and how many
// tokens — never the tokens or the values. It is the single place the
// audit record will hook into.
func logDetokenize(log *zap.Logger, who actor, domain string, count int, err error) {
	fields := []zap.Field{
		zap.String("who", who.Name),
		zap.String("auth_method", who.Method),
		zap.String("domain", domain),
		zap.Int("tokens", count),
	}
	if who.EntityID != "" {
		fields = append(fields, zap.String("vault_entity_id", who.EntityID))
	}
	if err != nil {
		log.Warn("detokenize failed", append(fields, zap.Error(err))...)
		return
	}
	log.Info("detokenized", fields...)
}

// whoAmI finds out who is detokenising: for Vault, the provider's own
// login looked up over its own verified client (never a second client
// that could follow VAULT_SKIP_VERIFY or another address), for the file
// provider the local user. It never fails: unknown parts stay empty.
func whoAmI(ctx context.Context, c crypto.Config, p crypto.KeyProvider) actor {
	if c.Provider == crypto.ProviderFile {
		a := actor{Method: crypto.ProviderFile}
		if u, err := user.Current(); err == nil {
			a.Name = u.Username
		}
		return a
	}
	a := actor{Method: c.Vault.Auth.Method}
	if v, ok := p.(crypto.Identifier); ok {
		if id, err := v.Identity(ctx); err == nil {
			a.Name, a.EntityID = id.Name, id.EntityID
		}
	}
	if a.Name == "" && c.Vault.Auth.Method == crypto.AuthKubernetes {
		a.Name = "kubernetes role " + c.Vault.Auth.KubernetesRole
	}
	return a
}

// reverser is how a type-preserving domain's values are reversed.
type reverser struct {
	spec    crypto.Spec
	typeOID uint32
}

// reverserFor looks the domain up in the policy (when the configuration
// names one); nil means text tokens. It refuses to guess: a domain whose
// columns transform differently needs --column, an int domain --type.
func reverserFor(policyPath, domain string, opt reverseOptions) (*reverser, error) {
	if policyPath == "" {
		if opt.column != "" {
			return nil, errors.New("detokenize: --column needs a configuration that names the policy")
		}
		return nil, nil
	}
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	cols := pol.DomainColumns(domain)
	if len(cols) == 0 {
		return nil, fmt.Errorf("detokenize: the policy has no column in token domain %q", domain)
	}
	col, err := pickColumn(cols, domain, opt.column)
	if err != nil {
		return nil, err
	}
	spec := col.Spec
	switch spec.Kind {
	case crypto.KindInt:
		// Not int2: FF1 refuses its 65,536 values (below 10^6). An int4
		// and an int8 permutation reverse each other's values to wrong
		// numbers, so the width is never assumed.
		oids := map[string]uint32{"int4": crypto.OIDInt4, "int8": crypto.OIDInt8}
		oid, ok := oids[opt.typeName]
		if !ok {
			return nil, fmt.Errorf("detokenize: domain %q uses int: give the column's type with --type int4 or --type int8", domain)
		}
		return &reverser{spec: spec, typeOID: oid}, nil
	case crypto.KindUUID:
		return &reverser{spec: spec, typeOID: crypto.OIDUUID}, nil
	case crypto.KindDigits, crypto.KindIBAN, crypto.KindCard:
		return &reverser{spec: spec, typeOID: crypto.OIDText}, nil
	case crypto.KindToken:
		return nil, nil // reversible tokens name their key version
	}
	return nil, fmt.Errorf("detokenize: domain %q uses %s, which cannot be reversed", domain, spec.Kind)
}

// reverseOptions are detokenize's flags for type-preserving domains.
type reverseOptions struct {
	column   string // schema.table.column
	typeName string // int4 or int8
}

// pickColumn chooses the column whose transform reverses the domain's
// values: the one --column names (schema.table.column, quoted as psql
// shows names that need it), or the domain's only kind of transform.
func pickColumn(cols []*policy.Column, domain, name string) (*policy.Column, error) {
	if name != "" {
		var found []*policy.Column
		for _, c := range cols {
			quoted := c.QualifiedName()
			if quoted == name || (c.Table.Schema+"."+c.Table.Table+"."+c.Name == name && !strings.Contains(c.Table.Schema+c.Table.Table+c.Name, ".")) {
				found = append(found, c)
			}
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
			return nil, fmt.Errorf("detokenize: --column %s is not a column of token domain %q (names with dots are quoted: \"s.t\".x.\"c\")", name, domain)
		}
		return nil, fmt.Errorf("detokenize: --column %s names more than one column of token domain %q; quote the names", name, domain)
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.QualifiedName())
		if !sameReversal(c.Spec, cols[0].Spec) {
			return nil, fmt.Errorf("detokenize: the columns of token domain %q transform differently (%s); name the one the values come from with --column", domain, strings.Join(names, ", "))
		}
	}
	return cols[0], nil
}

// sameReversal reports whether two specs reverse values alike.
func sameReversal(a, b crypto.Spec) bool {
	return a.Kind == b.Kind && a.KeepPrefix == b.KeepPrefix && a.KeyVersion == b.KeyVersion && a.Reversible == b.Reversible
}

// auditDetokenize writes the detokenisation's audit record when the
// configuration has an audit log.
func auditDetokenize(ctx context.Context, cfg keysFile, p crypto.KeyProvider, log *zap.Logger, who actor, domain string, n int, derr error) error {
	return auditCommand(ctx, cfg, p, log, "detokenize", audit.Detokenize{Actor: who.label(), Domain: domain, Tokens: uint64(n), Outcome: outcomeOf(derr)})
}

// auditCommand writes one record of a command to its own audit chain
// beside the proxy's log (audit.jsonl → audit-<name>.jsonl), when the
// configuration has an audit log: the proxy owns that log's chain.
func auditCommand(ctx context.Context, cfg keysFile, p crypto.KeyProvider, log *zap.Logger, name string, ev audit.Event) error {
	if cfg.Audit.Path == "" || cfg.Audit.Path == "-" {
		return nil
	}
	ac := cfg.Audit.WithDefaults()
	ac.Path = commandLogPath(ac.Path, name)
	if ac.CheckpointPath == audit.DefaultCheckpointPath(cfg.Audit.Path) {
		ac.CheckpointPath = audit.DefaultCheckpointPath(ac.Path)
	} else {
		ac.CheckpointPath = commandLogPath(ac.CheckpointPath, name)
	}
	signer, err := config.NewAuditSigner(ac, p)
	if err != nil {
		return err
	}
	w, err := audit.New(ctx, ac, signer, log)
	if err != nil {
		return err
	}
	werr := w.Write(ctx, ev)
	return errors.Join(werr, w.Close())
}

// outcomeOf is a command's audit outcome.
func outcomeOf(err error) audit.Outcome {
	if err != nil {
		return audit.OutcomeError
	}
	return audit.OutcomeOK
}

// label names an actor in a record: its name, else its auth method.
func (a actor) label() string {
	if a.Name != "" {
		return a.Name
	}
	return a.Method
}

// commandLogPath is a command's audit log beside the proxy's:
// audit.jsonl → audit-<name>.jsonl.
func commandLogPath(path, name string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + name + ext
}
