package integration

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/lib/pq" // database/sql driver under test
)

var typesOnce sync.Once

// typesTable creates a table with every common type, NULLs and edge values.
func typesTable(t *testing.T) {
	t.Helper()
	typesOnce.Do(func() {
		c := connect(t, directDSN(userAlice, passAlice, dbApp))
		_, err := c.Exec(context.Background(), `
CREATE TABLE all_types (
  id int4 PRIMARY KEY, i2 int2, i8 int8, num numeric(30,8), f4 float4, f8 float8,
  t text, vc varchar(20), bp char(5), b bool, d date, ts timestamp, tstz timestamptz,
  iv interval, u uuid, j json, jb jsonb, by bytea, ai int4[], at text[]);
INSERT INTO all_types VALUES
 (1, 32767, 9223372036854775807, 12345678901234567890.12345678, 3.25, 1e300,
  'héllo wörld ✓', 'varchar', 'ab', true, '2024-02-29', '2024-02-29 23:59:59.999999',
  '1999-12-31 23:59:59+05', '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2.5, null]}', '{"b": {"c": "d"}}', '\x00ff10', '{1,NULL,-3}', '{"x","y z",NULL}'),
 (2, -32768, -9223372036854775808, -0.00000001, 'NaN', '-Infinity',
  '', '', '', false, 'infinity', '-infinity', 'infinity', '-178000000 years', '00000000-0000-0000-0000-000000000000',
  'null', '[]', '\x', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE big_text (id int PRIMARY KEY, v text);
INSERT INTO big_text SELECT 1, string_agg(md5(g::text), '') FROM generate_series(1, 32768) g;`)
		if err != nil {
			t.Fatalf("create tables: %v", err)
		}
	})
}

// queries compared direct vs through the proxy.
var compareQueries = []string{
	"SELECT * FROM all_types ORDER BY id",
	"SELECT * FROM big_text",
	"SELECT repeat('x', 1048576) AS one_mb",
	"SELECT g, md5(g::text), g * 1.5 AS n, now() > '2000-01-01' AS b FROM generate_series(1, 100000) g",
	"SELECT 1 WHERE false",
}

// digest hashes every raw column value (and NULL-ness) of a result.
type digest struct {
	rows int
	sum  string
}

func pgxDigest(t *testing.T, c *pgx.Conn, mode pgx.QueryExecMode, q string, args ...any) digest {
	t.Helper()
	rows, err := c.Query(context.Background(), q, append([]any{mode}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	h := sha256.New()
	n := 0
	for rows.Next() {
		n++
		for _, v := range rows.RawValues() {
			if v == nil {
				h.Write([]byte{0})
				continue
			}
			fmt.Fprintf(h, "%d:", len(v))
			h.Write(v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return digest{n, hex.EncodeToString(h.Sum(nil))}
}

// TestCompareDirectAndProxy runs the same queries direct and through the
// proxy with pgx (simple protocol in text, extended protocol with binary
// formats, a prepared statement executed 100 times) and lib/pq, and
// requires byte-identical results.
func TestCompareDirectAndProxy(t *testing.T) {
	typesTable(t)
	p := startProxy(t, nil)
	direct := connect(t, directDSN(userAlice, passAlice, dbApp))
	via := connect(t, p.dsn(userAlice, passAlice, dbApp))
	// The session time zone must match for timestamptz in text format.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		for _, q := range compareQueries {
			t.Run(fmt.Sprintf("pgx/%v/%.30s", mode, q), func(t *testing.T) {
				d, v := pgxDigest(t, direct, mode, q), pgxDigest(t, via, mode, q)
				if d != v {
					t.Fatalf("results differ: direct %+v, proxy %+v", d, v)
				}
			})
		}
	}
	t.Run("pgx/prepared x100", func(t *testing.T) {
		ctx := context.Background()
		const q = "SELECT id, t, num, ts, u, jb, ai FROM all_types WHERE id = $1"
		for _, c := range []*pgx.Conn{direct, via} {
			if _, err := c.Prepare(ctx, "byid", q); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ {
			id := i%3 + 1
			want := pgxDigest(t, direct, pgx.QueryExecModeCacheStatement, "byid", id)
			if got := pgxDigest(t, via, pgx.QueryExecModeCacheStatement, "byid", id); got != want || want.rows != 1 {
				t.Fatalf("execution %d: direct %+v, proxy %+v", i, want, got)
			}
		}
	})
	t.Run("lib/pq", func(t *testing.T) {
		for _, q := range compareQueries {
			d, v := pqDigest(t, directDSN(userAlice, passAlice, dbApp), q), pqDigest(t, p.dsn(userAlice, passAlice, dbApp), q)
			if d != v {
				t.Fatalf("%s: direct %+v, proxy %+v", q, d, v)
			}
		}
	})
}

func pqDigest(t *testing.T, dsn, q string) digest {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if v == nil {
				h.Write([]byte{0})
				continue
			}
			fmt.Fprintf(h, "%d:", len(v))
			h.Write(v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return digest{n, hex.EncodeToString(h.Sum(nil))}
}
