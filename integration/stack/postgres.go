package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster: SCRAM only, TLS only, on a
// free loopback port.
type Postgres struct {
	BinDir   string
	DataDir  string
	SockDir  string
	Port     int
	LogFile  string
	Password string // of the superuser "postgres"
	// AuthUser and AuthPassword are the low-privilege lookup role the proxy
	// uses to fetch SCRAM verifiers through pgpseudo.get_auth().
	AuthUser, AuthPassword string
	owner                  *user.User
}

// Addr is host:port of the cluster.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// FindPGBin returns the directory of the newest installed PostgreSQL
// server binaries (Debian keeps them out of PATH), or PGPSEUDO_PG_BIN.
func FindPGBin() (string, error) {
	if d := os.Getenv("PGPSEUDO_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found; run `make deps` (installs Debian's postgresql package)")
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// asOwner runs a PostgreSQL binary as the cluster owner: initdb and
// postgres refuse to run as root, so as root they run as "postgres".
func (p *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(p.BinDir, name)
	if p.owner != nil {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", p.owner.Username, "--", bin}, args...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

func (p *Postgres) chown(paths ...string) error {
	if p.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(p.owner.Uid)
	gid, _ := strconv.Atoi(p.owner.Gid)
	for _, path := range paths {
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// startPostgres creates and starts a cluster under dir.
func startPostgres(ctx context.Context, dir string, certs *Certs) (*Postgres, error) {
	bin, err := FindPGBin()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		BinDir: bin, DataDir: filepath.Join(dir, "pgdata"), SockDir: filepath.Join(dir, "pgsock"),
		Port: port, LogFile: filepath.Join(dir, "postgres.log"),
		Password: randomSecret(), AuthUser: "pgpseudo_auth", AuthPassword: randomSecret(),
	}
	if os.Geteuid() == 0 {
		if p.owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (Debian's postgresql package creates it): %w", err)
		}
	}
	// The server reads its key and certificate as the cluster owner.
	srvCert, srvKey := filepath.Join(dir, "pg-server.crt"), filepath.Join(dir, "pg-server.key")
	for src, dst := range map[string]string{certs.ServerCertFile: srvCert, certs.ServerKey: srvKey} {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pg-superuser.pw")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	for _, d := range []string{p.DataDir, p.SockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(p.LogFile, nil, 0o600); err != nil {
		return nil, err
	}
	if err := p.chown(p.DataDir, p.SockDir, srvCert, srvKey, pwfile, p.LogFile); err != nil {
		return nil, err
	}
	if out, err := p.command(ctx, "initdb", "-D", p.DataDir, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '%s'
ssl_key_file = '%s'
ssl_min_protocol_version = 'TLSv1.2'
max_connections = 1100
shared_buffers = '128MB'
fsync = off
synchronous_commit = off
full_page_writes = off
log_connections = on
log_statement = 'all'
`, p.Port, p.SockDir, srvCert, srvKey)
	if err := appendFile(filepath.Join(p.DataDir, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	// TCP clients must use TLS and SCRAM; only the local socket (the test
	// harness, as the superuser) is trusted.
	hba := "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(p.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	if err := p.chown(filepath.Join(p.DataDir, "pg_hba.conf")); err != nil {
		return nil, err
	}
	if out, err := p.command(ctx, "pg_ctl", "-D", p.DataDir, "-l", p.LogFile, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.LogFile)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	if err := p.setup(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// setup creates the lookup role and its SECURITY DEFINER function.
func (p *Postgres) setup(ctx context.Context) error {
	return p.Exec(ctx, "postgres",
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, p.AuthUser, p.AuthPassword),
		`CREATE SCHEMA pgpseudo`,
		`CREATE FUNCTION pgpseudo.get_auth(p_user text, OUT rolname text, OUT rolpassword text)
		 RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS
		 $$ SELECT a.rolname::text, a.rolpassword FROM pg_catalog.pg_authid a
		    WHERE a.rolname = p_user AND a.rolcanlogin
		      AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > now()) $$`,
		`REVOKE ALL ON FUNCTION pgpseudo.get_auth(text) FROM PUBLIC`,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA pgpseudo TO %s`, p.AuthUser),
		fmt.Sprintf(`GRANT EXECUTE ON FUNCTION pgpseudo.get_auth(text) TO %s`, p.AuthUser),
	)
}

// SuperConnect connects as the superuser over the trusted local socket.
func (p *Postgres) SuperConnect(ctx context.Context, database string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", p.SockDir, p.Port, database))
}

// Exec runs statements as the superuser in database.
func (p *Postgres) Exec(ctx context.Context, database string, stmts ...string) error {
	c, err := p.SuperConnect(ctx, database)
	if err != nil {
		return fmt.Errorf("connect as superuser: %w", err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

// Stop stops the cluster.
func (p *Postgres) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := p.command(ctx, "pg_ctl", "-D", p.DataDir, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Start starts a stopped cluster and waits until it accepts connections.
func (p *Postgres) Start() error { return p.pgCtl("-l", p.LogFile, "-w", "-t", "60", "start") }

// Restart restarts the cluster in fast mode: sessions are told 57P01.
func (p *Postgres) Restart() error {
	return p.pgCtl("-l", p.LogFile, "-m", "fast", "-w", "-t", "60", "restart")
}

func (p *Postgres) pgCtl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := p.command(ctx, "pg_ctl", append([]string{"-D", p.DataDir}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", args[len(args)-1], err, out)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
