package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPgDumpRoundTrip: pg_dump -Fc through the proxy, restored with
// pg_restore into a new database, gives the same plain dump as the source.
func TestPgDumpRoundTrip(t *testing.T) {
	typesTable(t)
	p := startProxy(t, nil)
	ctx := context.Background()
	// Constraints, a view, a sequence and a function make the dump non-trivial.
	c := connect(t, directDSN(userAlice, passAlice, dbApp))
	if _, err := c.Exec(ctx, `
CREATE TABLE IF NOT EXISTS dump_parent (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS dump_child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  parent_id int REFERENCES dump_parent(id), note text, created timestamptz DEFAULT now());
INSERT INTO dump_parent (name) SELECT 'p' || g FROM generate_series(1, 500) g ON CONFLICT DO NOTHING;
INSERT INTO dump_child (parent_id, note) SELECT 1 + g % 500, repeat(E'tab\there\nnewline\\', g % 5) FROM generate_series(1, 5000) g;
CREATE OR REPLACE VIEW dump_view AS SELECT p.name, count(*) FROM dump_parent p JOIN dump_child c ON c.parent_id = p.id GROUP BY p.name;`); err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("restored_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", target, userAlice)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "app.dump")
	if _, errOut, err := runTool(t, 5*time.Minute, "pg_dump", libpqEnv(p.port, userAlice, passAlice, dbApp), "-Fc", "-f", archive); err != nil {
		t.Fatalf("pg_dump through the proxy: %v\n%s", err, errOut)
	}
	directPort := fmt.Sprint(shared.stack.PG.Port)
	if _, errOut, err := runTool(t, 5*time.Minute, "pg_restore", libpqEnv(directPort, userAlice, passAlice, target), "--exit-on-error", "-d", target, archive); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, errOut)
	}
	plain := func(db string) string {
		out, errOut, err := runTool(t, 5*time.Minute, "pg_dump", libpqEnv(directPort, userAlice, passAlice, db), "--restrict-key=pgpseudotest")
		if err != nil {
			t.Fatalf("plain pg_dump of %s: %v\n%s", db, err, errOut)
		}
		return out
	}
	src, dst := plain(dbApp), plain(target)
	if len(src) < 10000 || src != dst {
		os.WriteFile(filepath.Join(dir, "src.sql"), []byte(src), 0o644)
		os.WriteFile(filepath.Join(dir, "dst.sql"), []byte(dst), 0o644)
		t.Fatalf("restored database differs from the source (%d vs %d bytes)", len(src), len(dst))
	}
}
