package proxy

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
	"github.com/pgpseudo/pgpseudo/proxy/rewrite"
)

// dataRowBody is a DataRow body of text values.
func dataRowBody(vals ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// textTransformers returns a constructor of text-format transformers
// under a new keyset that fails tb on error.
func textTransformers(tb testing.TB) func(crypto.Spec, uint32) crypto.Transformer {
	ks, err := crypto.NewKeyset(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return func(spec crypto.Spec, oid uint32) crypto.Transformer {
		tr, err := crypto.New(spec, ks, oid, crypto.FormatText)
		if err != nil {
			tb.Fatal(err)
		}
		return tr
	}
}

// panicking is a transformer that fails as a bug would.
type panicking struct{}

func (panicking) Transform([]byte, []byte) ([]byte, error) { panic("transformer bug") }
func (panicking) ReturnsNull() bool                        { return false }
func (panicking) KeyVersion() uint32                       { return 0 }

// TestRowRunRewrite: a run rewritten over the cores is, byte for byte,
// the rows rewritten one after the other, in their order, for every size
// around the part boundaries, with the wrappers a plan puts around
// transformers (a session's DateStyle, a cast or prefix the proxy
// computes); a bad row or a panicking transformer in any part fails the
// run.
func TestRowRunRewrite(t *testing.T) {
	tr := textTransformers(t)
	german, _ := crypto.ParseDateStyle("German, DMY")
	p := &rewrite.Plan{Cols: []rewrite.Col{
		{Action: policy.Allow},
		{Action: policy.Mask, Tr: tr(crypto.Spec{Kind: crypto.KindMask}, crypto.OIDText)},
		{Action: policy.Tokenize, Tr: crypto.Styled(tr(crypto.Spec{Kind: crypto.KindShift, Domain: "d", Days: 30}, crypto.OIDDate), crypto.OIDDate, german)},
		{Action: policy.Tokenize, Tr: rewrite.PostOp(tr(crypto.Spec{Kind: crypto.KindToken, Domain: "d"}, crypto.OIDText), sqlinfo.PostOp{Kind: 's', From: 1, For: 6}, crypto.OIDText)},
	}}
	rows := func(n int) [][]byte {
		var out [][]byte
		for i := range n {
			out = append(out, dataRowBody(fmt.Sprint(i), fmt.Sprintf("Person %d %s", i, strings.Repeat("x", i%17)),
				fmt.Sprintf("%02d.%02d.%d", 1+i%28, 1+i%12, 1950+i%60), fmt.Sprintf("person.%d@example.com", i)))
		}
		return out
	}
	// The parts follow GOMAXPROCS: run with more cores than this machine
	// may have, too.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		testRowRun(t, p, rows)
	}
}

func testRowRun(t *testing.T, p *rewrite.Plan, rows func(int) [][]byte) {
	t.Helper()
	procs := runtime.GOMAXPROCS(0)
	var run rowRun
	for _, n := range []int{0, 1, partMin - 1, partMin, 2*partMin - 1, 2 * partMin, 2*partMin + 1, 1000, runMax} {
		in := rows(n)
		want, err := rewriteRows([]byte("prefix"), in, p)
		if err != nil {
			t.Fatal(err)
		}
		// Twice: the second run reuses the part buffers.
		for range 2 {
			run.rows = in
			got, err := run.rewrite([]byte("prefix"), p)
			if err != nil {
				t.Fatalf("%d rows on %d cores: %v", n, procs, err)
			}
			if string(got) != string(want) {
				t.Fatalf("%d rows on %d cores: the run differs from the rows rewritten in order", n, procs)
			}
		}
	}
	for _, bad := range []int{0, 700, 999} {
		in := rows(1000)
		in[bad] = dataRowBody("only one value")
		run.rows = in
		if _, err := run.rewrite(nil, p); err == nil {
			t.Errorf("%d cores: a bad row at %d of 1000 did not fail the run", procs, bad)
		}
	}
	// A panic is raised on the caller's goroutine, as rewriting there
	// would have (the session's recovery ends the session), never on a
	// part's goroutine, which would end the process.
	broken := &rewrite.Plan{Cols: []rewrite.Col{{Action: policy.Allow}, {Action: policy.Tokenize, Tr: panicking{}}, {Action: policy.Allow}, {Action: policy.Allow}}}
	run.rows = rows(1000)
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "transformer bug") {
				t.Errorf("%d cores: a panicking transformer gave %v", procs, r)
			}
		}()
		_, _ = run.rewrite(nil, broken)
	}()
}

// BenchmarkRowRun rewrites runs of customer-like rows (id, name, email
// and phone tokenized) one after the other and spread over the cores, in
// ns per row: a hundred rows are what one TLS record brings, a thousand
// what a 64 KiB read of a plain connection may.
func BenchmarkRowRun(b *testing.B) {
	tr := textTransformers(b)
	col := func(spec crypto.Spec, oid uint32) rewrite.Col {
		return rewrite.Col{Action: policy.Tokenize, Tr: tr(spec, oid)}
	}
	p := &rewrite.Plan{Cols: []rewrite.Col{
		col(crypto.Spec{Kind: crypto.KindInt, Domain: "customer"}, crypto.OIDInt4),
		col(crypto.Spec{Kind: crypto.KindToken, Domain: "d"}, crypto.OIDText),
		col(crypto.Spec{Kind: crypto.KindEmail, Domain: "email"}, crypto.OIDText),
		col(crypto.Spec{Kind: crypto.KindDigits, Domain: "d", KeepPrefix: 3}, crypto.OIDText),
		{Action: policy.Allow},
	}}
	dst := make([]byte, 0, 256<<10)
	for _, n := range []int{100, 1000} {
		var run rowRun
		for i := range n {
			run.rows = append(run.rows, dataRowBody(fmt.Sprint(100000+i), fmt.Sprintf("Person %d Example", i),
				fmt.Sprintf("person.%d@example.com", i), fmt.Sprintf("+49 170 %07d", i), "Berlin"))
		}
		for _, c := range []struct {
			name string
			fn   func() ([]byte, error)
		}{
			{"in-order", func() ([]byte, error) { return rewriteRows(dst[:0], run.rows, p) }},
			{"spread", func() ([]byte, error) { return run.rewrite(dst[:0], p) }},
		} {
			b.Run(fmt.Sprintf("rows=%d/%s", n, c.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := c.fn(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
}
