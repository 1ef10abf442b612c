// Package scan discovers personal data in a database and proposes its
// classification as a policy file (docs/scan.md): by column names
// (German and English dictionaries over identifier tokens), by sampled
// values (validators with check digits where the format has them), and
// by foreign keys, so that joined columns share a token domain. It never
// prints, logs or returns a sampled value: reasons name the rule and the
// hit rate only.
package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/policy"
)

// Options configure a scan.
type Options struct {
	// Sample is the row cap per table; 0 classifies by names and keys
	// only, reading no values.
	Sample int
	// StatementTimeout bounds each catalog and sampling query.
	StatementTimeout time.Duration
	// Now is the reference for dates of birth (zero: time.Now()).
	Now time.Time
	// Progress, if set, is called after each table.
	Progress func(done, total int)
}

// Result is a scan's proposal.
type Result struct {
	Database string `json:"database"`
	// Tables is the number of tables read from the catalog, Sampled the
	// number whose values were read.
	Tables    int        `json:"tables"`
	Sampled   int        `json:"sampled_tables"`
	Proposals []Proposal `json:"columns"`
	// Warnings are tables that could not be sampled (classified by names
	// and keys only), with the server's reason.
	Warnings []string `json:"warnings,omitempty"`
}

// Domains lists the token domains the proposal uses, sorted.
func (r *Result) Domains() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range r.Proposals {
		if p.Domain != "" && !seen[p.Domain] {
			seen[p.Domain] = true
			out = append(out, p.Domain)
		}
	}
	sort.Strings(out)
	return out
}

// Scan reads the catalog of the database conn is connected to, samples
// each table's candidate columns with one query per table and proposes a
// classification. The session is made read-only first.
func Scan(ctx context.Context, conn *pgx.Conn, opts Options) (*Result, error) {
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 30 * time.Second
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := prepareSession(ctx, conn, opts.StatementTimeout); err != nil {
		return nil, err
	}
	s, err := ReadSchema(ctx, conn)
	if err != nil {
		return nil, err
	}
	res := &Result{Database: conn.Config().Database, Tables: len(s.Tables)}
	samples := map[policy.TableName]tableSample{}
	for i, t := range s.Tables {
		if opts.Sample > 0 && len(candidates(t)) > 0 {
			st, method, rows, err := sampleTable(ctx, conn, t, opts.Sample, now)
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("scan: %w", ctx.Err())
				}
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: not sampled, classified by names and keys only: %s", t.Name, safeReason(err)))
			} else {
				samples[t.Name] = tableSample{stats: st, method: method, rows: rows}
				res.Sampled++
			}
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(s.Tables))
		}
	}
	res.Proposals = propose(s, samples)
	return res, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// safeReason says why sampling a table failed without the server's text
// where it could quote data: permission and timeout messages name only
// the table; any other server error (a conversion error can show a
// value's bytes) is reported by its SQLSTATE alone.
func safeReason(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error() // connection-level: no data in it
	}
	switch pe.Code {
	case "42501", "57014", "55P03", "25006":
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return "server error (SQLSTATE " + pe.Code + ")"
}
