// Command stackctl starts and stops the integration test stack for people:
// integration/stack.sh calls it. State lives in a directory (default
// .stack at the repository root) so `down` and `env` find a running stack.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgpseudo/pgpseudo/integration/stack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("stackctl", flag.ContinueOnError)
	dir := fs.String("dir", "", "state directory (default: .stack in the repository)")
	noVault := fs.Bool("no-vault", false, "start PostgreSQL only")
	if len(args) == 0 {
		return errors.New("usage: stackctl up|down|env [--dir DIR] [--no-vault]")
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		root, err := stack.RepoRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".stack")
	}
	envFile := filepath.Join(*dir, "env")
	switch cmd {
	case "up":
		if _, err := os.Stat(envFile); err == nil {
			return fmt.Errorf("a stack is already up in %s; run `integration/stack.sh down` first", *dir)
		}
		fmt.Fprintln(os.Stderr, "starting PostgreSQL (throwaway cluster, SCRAM + TLS)…")
		s, err := stack.Start(context.Background(), stack.Options{Dir: *dir, NoVault: *noVault, Detach: true})
		if err != nil {
			return err
		}
		if err := os.WriteFile(envFile, []byte(s.EnvLines()), 0o600); err != nil {
			return err
		}
		fmt.Print(s.EnvLines())
		fmt.Fprintf(os.Stderr, "stack is up; `eval \"$(integration/stack.sh env)\"` sets these variables\n")
		return nil
	case "env":
		b, err := os.ReadFile(envFile)
		if err != nil {
			return fmt.Errorf("no stack is up (%w)", err)
		}
		fmt.Print(string(b))
		return nil
	case "down":
		env, err := readEnv(envFile)
		if err != nil {
			return fmt.Errorf("no stack is up (%w)", err)
		}
		// make demo leaves a proxy running; it goes down with the stack.
		if b, err := os.ReadFile(filepath.Join(*dir, "pgpseudo.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		if pid, err := strconv.Atoi(env["PGPSEUDO_VAULT_PID"]); err == nil {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		ctl := filepath.Join(env["PGPSEUDO_PG_BIN"], "pg_ctl")
		args := []string{ctl, "-D", filepath.Join(*dir, "pgdata"), "-m", "fast", "-w", "stop"}
		if os.Geteuid() == 0 {
			args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
		}
		c := exec.Command(args[0], args[1:]...)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "pg_ctl stop:", err)
		}
		return os.RemoveAll(*dir)
	}
	return fmt.Errorf("unknown command %q (want up, down or env)", cmd)
}

func readEnv(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, nil
}
