package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pgpseudo/pgpseudo/policy"
)

// policyDiff runs `pgpseudo policy diff OLD NEW`: what changes, role by
// role and column by column, when NEW replaces OLD. With --db, every
// column of the database is compared, unclassified ones included.
func policyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgpseudo policy diff [--config FILE [--db] [--database NAME]] OLD NEW\n\nShows, role by role and column by column, what changes when policy file NEW replaces OLD.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "proxy configuration: the database connection for --db")
	db := fs.Bool("db", false, "compare every column of the database, unclassified ones included")
	database := fs.String("database", "", "database for --db (default: policy_database, else auth.auth_database)")
	files, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("policy diff: give the OLD and NEW policy files")}
	}
	if *db && *configPath == "" {
		return &exitError{code: 2, err: errors.New("policy diff: --db needs --config for the database connection")}
	}
	old, err := policy.Load(files[0])
	if err != nil {
		return err
	}
	nw, err := policy.Load(files[1])
	if err != nil {
		return err
	}
	var tables []policy.DBTable
	if *db {
		cfg, name, err := loadForDatabase(*configPath, *database)
		if err != nil {
			return err
		}
		if tables, err = readSchema(ctx, cfg, name); err != nil {
			return err
		}
	}
	changes := policy.Diff(old, nw, tables)
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no differences")
		return nil
	}
	roles := map[string]bool{}
	for _, c := range changes {
		roles[c.Role] = true
	}
	fmt.Fprintf(stdout, "%d changes for %d roles\n", len(changes), len(roles))
	return nil
}
