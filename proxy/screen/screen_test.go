package screen

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// TestProbes: what the server-side check plans for each statement of a
// query string, and the strings it cannot check.
func TestProbes(t *testing.T) {
	for _, tt := range []struct {
		sql      string
		typ      byte
		want     []string // probe texts
		planOnly []bool
		idx      []int
		refused  string
	}{
		{sql: "SELECT email FROM customers", typ: 'Q', want: []string{"SELECT email FROM customers"}, planOnly: []bool{false}, idx: []int{0}},
		{sql: "SHOW search_path; SELECT 1", typ: 'Q', want: []string{"SELECT 1"}, planOnly: []bool{false}, idx: []int{1}},
		{sql: "COPY customers (email) TO STDOUT", typ: 'Q', want: []string{`SELECT "email" FROM ONLY "customers"`}, planOnly: []bool{false}, idx: []int{0}},
		{sql: "EXPLAIN SELECT email FROM customers", typ: 'Q', want: []string{"SELECT email FROM customers"}, planOnly: []bool{true}, idx: []int{0}},
		{sql: "BEGIN; SELECT 1", typ: 'Q', want: []string{"SELECT 1"}, planOnly: []bool{false}, idx: []int{1}},
		{sql: "SET search_path = x; SELECT 1", typ: 'Q', refused: "statement 2 reads data after a statement that changes the session"},
		{sql: "SET search_path = x", typ: 'Q'},
	} {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		probes, idx, why := Probes(tree, tt.sql, tt.typ, nil)
		if why != tt.refused {
			t.Errorf("%s: refused %q, want %q", tt.sql, why, tt.refused)
			continue
		}
		var texts []string
		var plan []bool
		for _, p := range probes {
			texts = append(texts, p.Text)
			plan = append(plan, p.PlanOnly)
		}
		if len(texts) != len(tt.want) || !slices.Equal(plan, tt.planOnly) || !slices.Equal(idx, tt.idx) {
			t.Errorf("%s: probes %q (plan only %v, at %v), want %q (%v, %v)", tt.sql, texts, plan, idx, tt.want, tt.planOnly, tt.idx)
			continue
		}
		for i := range texts {
			if !strings.Contains(texts[i], tt.want[i]) {
				t.Errorf("%s: probe %q, want it to contain %q", tt.sql, texts[i], tt.want[i])
			}
		}
	}
	// A Parse's parameters: the declared types and the highest $n.
	tree, _ := pg_query.Parse("SELECT email FROM customers WHERE city = $2")
	probes, _, _ := Probes(tree, "SELECT email FROM customers WHERE city = $2", 'P', []uint32{25})
	if len(probes) != 1 || probes[0].NParams != 2 || !slices.Equal(probes[0].Types, []uint32{25}) {
		t.Errorf("parameters of a Parse: %+v", probes)
	}
}

func TestParamTypes(t *testing.T) {
	body := append([]byte("s1\x00SELECT $1\x00"), binary.BigEndian.AppendUint16(nil, 2)...)
	body = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(body, 25), 23)
	if got := ParamTypes(body); !slices.Equal(got, []uint32{25, 23}) {
		t.Errorf("ParamTypes: %v", got)
	}
	if got := ParamTypes(body[:len(body)-1]); got != nil {
		t.Errorf("a short body gives %v", got)
	}
}

// TestLockedStartup: a locked setting in the startup packet, as a
// parameter or in options, in each spelling the server accepts.
func TestLockedStartup(t *testing.T) {
	for _, tt := range []struct {
		params []wire.Param
		locked bool
	}{
		{[]wire.Param{{Key: "application_name", Value: "psql"}}, false},
		{[]wire.Param{{Key: "client_encoding", Value: "UTF8"}}, false},
		{[]wire.Param{{Key: "client_encoding", Value: "SJIS"}}, true},
		{[]wire.Param{{Key: "standard_conforming_strings", Value: "off"}}, true},
		{[]wire.Param{{Key: "options", Value: "-c standard_conforming_strings=off"}}, true},
		{[]wire.Param{{Key: "options", Value: "-cstandard_conforming_strings=off"}}, true},
		{[]wire.Param{{Key: "options", Value: "--standard-conforming-strings=off"}}, true},
		{[]wire.Param{{Key: "options", Value: "-c client_min_messages=debug5"}}, true},
		{[]wire.Param{{Key: "options", Value: "-c work_mem=64kB"}}, false},
		// Read as the server reads options: backslash escapes, joined
		// switches, a value in the next word, '-' for '_'.
		{[]wire.Param{{Key: "options", Value: `-c plan\_cache\_mode=force_custom_plan`}}, true},
		{[]wire.Param{{Key: "options", Value: `-c plan_cache_mod\e=force_generic_plan`}}, true},
		{[]wire.Param{{Key: "options", Value: `--plan\_cache\_mode=force_custom_plan`}}, true},
		{[]wire.Param{{Key: "options", Value: `-c client\_min\_messages=debug5`}}, true},
		{[]wire.Param{{Key: "options", Value: "-Pc client_min_messages=debug5"}}, true},
		{[]wire.Param{{Key: "options", Value: "-e -c trace-sort=on"}}, true},
		{[]wire.Param{{Key: "options", Value: `-c application_name=a\ -c\ trace_sort=on`}}, false},
		{[]wire.Param{{Key: "options", Value: "-W 0 -c work_mem=1MB"}}, false},
	} {
		if got := LockedStartup(tt.params) != ""; got != tt.locked {
			t.Errorf("%v: locked %v, want %v", tt.params, got, tt.locked)
		}
	}
}

// TestOrderingSkipsRowlessStatements: EXPLAIN and SHOW get neither the
// digest ordering nor tie-breaking (EXPLAIN would print the digest).
func TestOrderingSkipsRowlessStatements(t *testing.T) {
	tie := []sqlinfo.Tie{{Select: 0, Hash: []int{0}}}
	res := &analyze.Result{Statements: []analyze.StatementInfo{
		{Kind: "Explain", Ties: tie, DigestOrder: true},
		{Kind: "Select", Ties: tie, DigestOrder: true, Outputs: []analyze.Output{{Name: "email", Certain: true}}},
	}}
	digest, outs, ties, why := Ordering(res, nil, nil)
	if why != "" || digest[0] || ties[0] != nil || !digest[1] || outs[1] == nil || len(ties[1]) != 1 {
		t.Errorf("digest %v, outputs %v, ties %v, refused %q", digest, outs, ties, why)
	}
}
