package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
)

const policyUsage = `usage: pgpseudo policy check --config FILE [--db [--database NAME]]
       pgpseudo policy diff [--config FILE [--db] [--database NAME]] OLD NEW`

// policyCmd runs `pgpseudo policy check` and `pgpseudo policy diff`.
func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, policyUsage)
		return nil
	}
	if len(args) > 0 && args[0] == "diff" {
		return policyDiff(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, policyUsage)
		return &exitError{code: 2, err: errors.New("policy: unknown or missing subcommand")}
	}
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "proxy configuration file naming the policy")
	db := fs.Bool("db", false, "also check the policy against the database's catalog")
	database := fs.String("database", "", "database to check with --db (default: policy_database, else auth.auth_database)")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return flagError(err)
	}
	if *configPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("policy check: --config is required")}
	}
	// Without --db only the policy is read: the file is decoded strictly,
	// but the database credentials it names need not exist here.
	cf, err := loadCommandConfig(*configPath, false)
	if err != nil {
		return err
	}
	if cf.Policy == "" {
		return fmt.Errorf("%s names no policy file (key: policy)", *configPath)
	}
	pol, err := policy.Load(cf.Policy)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "policy %s is valid (sha256 %s)\n", cf.Policy, pol.Hash[:16])
	for _, r := range pol.Roles {
		restricted := "sees everything in clear"
		if r.Restricted() {
			restricted = "restricted"
		}
		fmt.Fprintf(stdout, "  role %-16s %s\n", r.Name, restricted)
	}
	fmt.Fprintf(stdout, "  %d classified tables\n", len(pol.Tables()))
	if !*db {
		return nil
	}
	cfg, name, err := loadForDatabase(*configPath, *database)
	if err != nil {
		return err
	}
	tables, err := readSchema(ctx, cfg, name)
	if err != nil {
		return err
	}
	errs := 0
	for _, f := range pol.CheckSchema(tables) {
		if f.Severity == policy.SeverityError {
			errs++
		}
		fmt.Fprintln(stdout, withScanHint(pol, f))
	}
	if errs > 0 {
		return fmt.Errorf("policy check: %d problems in database %q", errs, name)
	}
	fmt.Fprintf(stdout, "database %q: every classified column exists and fits its transform\n", name)
	return nil
}

// readSchema reads database name's tables and columns as the configured
// auth_user.
func readSchema(ctx context.Context, cfg *config.Config, name string) ([]policy.DBTable, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := catalog.Connect(cctx, cfg, name)
	if err != nil {
		return nil, fmt.Errorf("connect to database %q as %s: %w", name, cfg.Auth.AuthUser, err)
	}
	defer conn.Close(ctx)
	return catalog.ReadSchema(cctx, conn)
}

// loadForDatabase loads the whole configuration for a command that reads
// a database, and names the database: the --database flag, else
// policy_database, else auth.auth_database.
func loadForDatabase(path, database string) (*config.Config, string, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, "", err
	}
	if database == "" {
		database = cfg.PolicyCheckDatabase()
	}
	return cfg, database, nil
}
