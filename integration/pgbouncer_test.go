package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// startPgBouncer runs PgBouncer (Debian's package; make bench installs it)
// in front of the test cluster as a reference for the proxy's cost: TLS
// on both legs, SCRAM with the users' own verifiers (PgBouncer passes the
// client's SCRAM keys on to the server), session pooling. It returns the
// port.
func startPgBouncer(b *testing.B, users ...string) string {
	b.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			b.Fatal("pgbouncer is not installed: run `make bench` (it installs Debian's pgbouncer package)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	ctx := context.Background()
	// Not b.TempDir(): its parent is private to root, and PgBouncer runs
	// as the postgres user.
	dir, err := os.MkdirTemp("", "pgpseudo-pgbouncer-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	// The verifiers PgBouncer checks clients against, from the server.
	c, err := shared.stack.PG.SuperConnect(ctx, "postgres")
	if err != nil {
		b.Fatal(err)
	}
	var list strings.Builder
	for _, u := range users {
		var verifier string
		if err := c.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", u).Scan(&verifier); err != nil {
			b.Fatalf("verifier of %s: %v", u, err)
		}
		fmt.Fprintf(&list, "%q %q\n", u, verifier)
	}
	c.Close(ctx)
	s := shared.stack
	copyTo := func(src, name string) string {
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			b.Fatal(err)
		}
		return dst
	}
	addr := freeAddr(b)
	_, port, _ := net.SplitHostPort(addr)
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = session
max_client_conn = 200
default_pool_size = 20
client_tls_sslmode = require
client_tls_cert_file = %s
client_tls_key_file = %s
server_tls_sslmode = verify-ca
server_tls_ca_file = %s
log_connections = 0
log_disconnections = 0
logfile = %s
pidfile = %s
`, s.PG.Port, port, copyTo(writeTemp(b, "userlist.txt", list.String()), "userlist.txt"),
		copyTo(s.Certs.ProxyCertFile, "cert.pem"), copyTo(s.Certs.ProxyKey, "key.pem"), copyTo(s.Certs.CAFile, "ca.pem"),
		filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	conf := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(conf, []byte(ini), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root, like PostgreSQL: it runs as
		// the postgres user (directly, so signals reach it).
		pg, err := user.Lookup("postgres")
		if err != nil {
			b.Fatal(err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		for _, p := range []string{dir, conf, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")} {
			if err := os.Chown(p, uid, gid); err != nil {
				b.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	if waitListening(addr) {
		return port
	}
	log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
	b.Fatalf("pgbouncer did not start:\n%s", log)
	return ""
}
