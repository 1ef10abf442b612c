package scan

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sampleMethod says how a table was read, for the reasons.
type sampleMethod string

const (
	methodTablesample sampleMethod = "TABLESAMPLE SYSTEM"
	methodLimit       sampleMethod = "LIMIT scan"
)

// candidates are the columns whose values are read: text-like and date
// types. Numbers, booleans and enums are never read: their values cannot
// be told apart from any other number or label, and an enum's labels are
// the schema's, not a person's.
func candidates(t Table) []Column {
	var out []Column
	for _, c := range t.Columns {
		if c.textLike() || c.dateLike() {
			out = append(out, c)
		}
	}
	return out
}

// sampleQuery reads the candidate columns of t as text, at most n rows.
// With percent > 0 it samples blocks (TABLESAMPLE SYSTEM), cheap on large
// tables: it reads about percent of the table's pages instead of all.
func sampleQuery(t Table, cols []Column, n int, percent float64) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c.Name}.Sanitize())
		b.WriteString("::text")
	}
	b.WriteString(" FROM ")
	b.WriteString(pgx.Identifier{t.Name.Schema, t.Name.Table}.Sanitize())
	if percent > 0 {
		b.WriteString(" TABLESAMPLE SYSTEM (")
		b.WriteString(strconv.FormatFloat(percent, 'f', 6, 64))
		b.WriteString(")")
	}
	b.WriteString(" LIMIT ")
	b.WriteString(strconv.Itoa(n))
	return b.String()
}

// samplePercent is the share of t's pages TABLESAMPLE reads for about n
// rows, three times over because blocks hold uneven numbers of live rows;
// 0 means a plain LIMIT scan: the table is small, never analysed
// (reltuples ≤ 0) or partitioned (its estimate is its partitions').
func samplePercent(t Table, n int) float64 {
	if (t.Kind != 'r' && t.Kind != 'm') || t.RelTuples <= 0 || t.RelTuples < float64(4*n) {
		return 0
	}
	return min(100, 300*float64(n)/t.RelTuples)
}

// sampleTable reads one table's candidate columns in one query and
// returns their statistics; the values themselves are dropped row by row.
func sampleTable(ctx context.Context, conn *pgx.Conn, t Table, n int, now time.Time) (map[string]*stats, sampleMethod, int, error) {
	cols := candidates(t)
	if len(cols) == 0 {
		return nil, "", 0, nil
	}
	read := func(percent float64) (map[string]*stats, int, error) {
		out := map[string]*stats{}
		for _, c := range cols {
			out[c.Name] = newStats()
		}
		rows, err := conn.Query(ctx, sampleQuery(t, cols, n, percent))
		if err != nil {
			return nil, 0, err
		}
		defer rows.Close()
		vs := validators()
		count := 0
		for rows.Next() {
			count++
			for i, raw := range rows.RawValues() {
				if raw != nil {
					out[cols[i].Name].add(cols[i], string(raw), vs, now)
				}
			}
		}
		return out, count, rows.Err()
	}
	if p := samplePercent(t, n); p > 0 {
		st, count, err := read(p)
		if err != nil {
			return nil, "", 0, fmt.Errorf("sample %s: %w", t.Name, err)
		}
		if count > 0 {
			return st, methodTablesample, count, nil
		}
		// An empty sample (few live rows in many pages): read plainly.
	}
	st, count, err := read(0)
	if err != nil {
		return nil, "", 0, fmt.Errorf("sample %s: %w", t.Name, err)
	}
	return st, methodLimit, count, nil
}

// prepareSession makes the scanning session read-only, bounds each
// statement and fixes the date format the validators parse.
func prepareSession(ctx context.Context, conn *pgx.Conn, timeout time.Duration) error {
	for _, stmt := range []string{
		"SET default_transaction_read_only = on",
		fmt.Sprintf("SET statement_timeout = %d", timeout.Milliseconds()),
		"SET DateStyle = 'ISO, YMD'",
		"SET application_name = 'pgpseudo scan'",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("prepare scan session: %w", err)
		}
	}
	return nil
}
