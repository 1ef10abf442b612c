package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// TestUpstreamReuse (upstream.reuse): a session whose client terminated
// at rest is reset and taken by the next login of the same user with the
// same parameters: nothing of the last client's session is left
// (settings, reported parameters, prepared statements, temporary tables), and cancel
// requests reach it. A wrong password never gets it; another user, other
// startup parameters or a client that left inside a transaction block do
// not get or leave one.
func TestUpstreamReuse(t *testing.T) {
	pol := everythingPolicy(t)
	cfg := policyConfig(t, pol)
	cfg.Upstream.Reuse.MaxIdle = 4
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	ctx := context.Background()
	parked := func() float64 { return metricValue(a.metrics(t), "pgpseudo_upstream_reuse_total", `result="parked"`) }
	waitParked := func(n float64) {
		t.Helper()
		for i := 0; i < 100 && parked() < n; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if got := parked(); got < n {
			t.Fatalf("%v sessions kept, want %v", got, n)
		}
	}
	open := func(user, pass string, extra ...string) (*pgx.Conn, int) {
		t.Helper()
		c, err := pgx.Connect(ctx, p.dsn(user, pass, dbKunden, extra...))
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return c, pid
	}

	c1, pid1 := open(userAlice, passAlice)
	for _, q := range []string{"SET work_mem = '7MB'", "PREPARE left_over AS SELECT 1", "CREATE TEMP TABLE left_over (x int)",
		"SET application_name = 'left over'"} {
		if _, err := c1.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c1.Close(ctx)
	waitParked(1)

	// A wrong password does not get the kept session.
	if c, err := pgx.Connect(ctx, p.dsn(userAlice, "wrong", dbKunden)); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password logged in")
	}
	c2, pid2 := open(userAlice, passAlice)
	if pid2 != pid1 {
		t.Fatalf("the kept session was not reused: backend %d, then %d", pid1, pid2)
	}
	var workMem, app string
	var temp *string
	if err := c2.QueryRow(ctx, "SELECT current_setting('work_mem'), current_setting('application_name'), to_regclass('pg_temp.left_over')::text").Scan(&workMem, &app, &temp); err != nil {
		t.Fatal(err)
	}
	if workMem == "7MB" || app == "left over" || c2.PgConn().ParameterStatus("application_name") == "left over" || temp != nil {
		t.Errorf("the last client's session shows through: work_mem %s, application_name %q (reported %q), temp table %v",
			workMem, app, c2.PgConn().ParameterStatus("application_name"), temp)
	}
	var pe *pgconn.PgError
	if _, err := c2.Exec(ctx, "EXECUTE left_over"); !errors.As(err, &pe) || pe.Code != "26000" {
		t.Errorf("the last client's prepared statement: %v, want 26000", err)
	}
	// A cancel request reaches the reused backend.
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := c2.PgConn().CancelRequest(ctx); err != nil {
			t.Errorf("cancel request: %v", err)
		}
	}()
	start := time.Now()
	if _, err := c2.Exec(ctx, "SELECT pg_sleep(20)"); !errors.As(err, &pe) || pe.Code != "57014" || time.Since(start) > 10*time.Second {
		t.Errorf("cancel of a reused session: %v after %v, want 57014", err, time.Since(start))
	}
	// Inside a transaction block the session is not kept.
	if _, err := c2.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	c2.Close(ctx)

	// Another user or other startup parameters never take a kept one.
	c3, pid3 := open(userAlice, passAlice)
	if pid3 == pid1 {
		t.Fatal("a session left inside a transaction block was kept")
	}
	c3.Close(ctx)
	waitParked(2)
	c4, pid4 := open(userBI, samplePass)
	c5, pid5 := open(userAlice, passAlice, "application_name=other")
	if pid4 == pid3 || pid5 == pid3 {
		t.Errorf("a kept session of alice went to another login: %d / %d, kept %d", pid4, pid5, pid3)
	}
	c4.Close(ctx)
	c5.Close(ctx)
	c6, pid6 := open(userAlice, passAlice)
	defer c6.Close(ctx)
	if pid6 != pid3 {
		t.Errorf("alice's kept session %d not reused (got %d)", pid3, pid6)
	}

	// A restricted session in which the client set one of the settings
	// its drill-down values need absent is not kept: a reset leaves the
	// setting defined, and every later drill-down of the user in that
	// session would match nothing (red team round 43).
	waitParked(4)
	b1, bpid1 := open(userBI, samplePass)
	if bpid1 != pid4 {
		t.Errorf("bi_jane's kept session %d not reused (got %d)", pid4, bpid1)
	}
	discarded := func() float64 {
		return metricValue(a.metrics(t), "pgpseudo_upstream_reuse_total", `result="discarded"`)
	}
	before := discarded()
	setting := sqlinfo.DrillSetting(p.srv.DigestKeyFor("bi_analyst"), "customer")
	if _, err := b1.Exec(ctx, "SET "+setting+" = 'x'"); err != nil {
		t.Fatal(err)
	}
	b1.Close(ctx)
	for i := 0; i < 100 && discarded() <= before; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	b2, bpid2 := open(userBI, samplePass)
	defer b2.Close(ctx)
	if bpid2 == bpid1 || discarded() <= before {
		t.Errorf("a session with a drill-down setting was kept (backend %d, then %d)", bpid1, bpid2)
	}
}
