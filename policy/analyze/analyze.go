// Package analyze is pgpseudo's fail-closed request analysis: every
// statement of a restricted session is read with PostgreSQL's own parser
// (libpg_query through pg_query_go), its column references are resolved
// against the catalog and the session's search_path, and it is refused
// unless no protected value can leave through it — not through
// expressions, predicates, ordering, functions, statistics or statements
// that write or run SQL text (DESIGN.md §4.2, docs/policy.md).
//
// The analysis is a pure function of (policy, role, search_path, catalog,
// SQL text); Cache memoises it per statement text.
//
// Values are tracked, not just names: a column passed on unchanged
// (through aliases, subqueries, CTEs, joins, views) keeps its base-table
// sources, anything computed from a protected column is refused where it
// is computed, and a protected value may leave only as a result column
// whose origin PostgreSQL's RowDescription reports (so the response side
// can rewrite it): not through set operations, VALUES, scalar subqueries,
// recursive CTEs or views the policy does not classify.
//
// Known limits, all failing closed: operators are checked only when
// schema-qualified (an unqualified operator of an extension runs its
// function unchecked, but never on a protected column); search_path
// changes are refused inside transaction blocks, with SET LOCAL and in
// set_config calls that are not the whole statement; functions in FROM
// expose unknown columns, so a name they might hold is treated as
// ambiguous.
package analyze

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Catalog answers the analysis' questions about the database. The proxy
// implements it over its catalog cache; it must be safe for concurrent use
// when Analyze is called concurrently.
type Catalog interface {
	// Relation resolves a relation name as PostgreSQL would: schema is ""
	// for an unqualified name, which is then looked up in pg_catalog
	// (unless searchPath names pg_catalog explicitly) and the schemas of
	// searchPath in order ("$user" and missing schemas skipped).
	// found=false when there is no such relation.
	Relation(ctx context.Context, schema, name string, searchPath []string) (rel *Relation, found bool, err error)
	// IsBuiltinFunction reports whether a function name can only mean
	// pg_catalog functions: for schema "" every function of that name
	// visible through searchPath must live in pg_catalog (an overload in
	// another schema could be chosen instead), for a schema the schema
	// must be pg_catalog and the function must exist there.
	IsBuiltinFunction(ctx context.Context, schema, name string, searchPath []string) (bool, error)
}

// Relation is what the analysis needs to know of a relation.
type Relation struct {
	// Name is the relation's schema-qualified name.
	Name policy.TableName
	// Root is the name whose classification applies: the top-most parent
	// of a partition or inheritance child. Zero means Name.
	Root policy.TableName
	// Kind is pg_class.relkind: r, p, v, m, f, S, …
	Kind byte
	// Columns are the user columns in attnum order. nil means unknown,
	// which only system relations (pg_catalog, information_schema) may
	// leave out.
	Columns []string
	// ViewSQL is the query of a view or materialized view as
	// pg_get_viewdef returns it under an empty search_path, so that every
	// name outside pg_catalog is schema-qualified; it is analysed with an
	// empty search path.
	ViewSQL string
}

func (r *Relation) root() policy.TableName {
	if r.Root.Table != "" {
		return r.Root
	}
	return r.Name
}

// Session is the state of the client session that the analysis depends on.
type Session struct {
	// Policy and Role decide what each column may be used for.
	Policy *policy.Policy
	Role   *policy.Role
	// SearchPath is the session's search_path now: the startup parameter
	// (ParseSearchPath), then whatever Result.SearchPath reported.
	SearchPath []string
	// DefaultSearchPath is what RESET, SET … TO DEFAULT and DISCARD ALL
	// return to: the startup parameter if the client sent one, else the
	// server's setting.
	DefaultSearchPath []string
	// Keywords is the server's keyword list (pg_get_keywords()); a
	// restricted session's statements are refused without it.
	Keywords sqlinfo.Keywords
	// InTransaction reports an open transaction block (the last
	// ReadyForQuery status was T or E). search_path changes inside one are
	// refused: a rollback would undo them without the proxy noticing.
	InTransaction bool
}

// Result is the outcome of analysing one query string.
type Result struct {
	// Refusal is set when the string must not reach the database; the
	// whole string is refused when any statement is.
	Refusal *Refusal
	// Statements describes each statement analysed, up to and including a
	// refused one.
	Statements []StatementInfo
	// SearchPath is the session's search_path once every statement has
	// run. The proxy adopts it only when the string (or, in the extended
	// protocol, the batch up to Sync) completed without error: an error
	// rolls the implicit transaction and its SET back.
	SearchPath []string
	// SearchPathChanged reports that a statement sets search_path.
	SearchPathChanged bool
	// Tree is the parse the analysis read (nil when the SQL did not
	// parse): callers describe the statements from it rather than parse
	// the text again.
	Tree *pg_query.ParseResult
}

// ColumnRead is a classified column a statement refers to.
type ColumnRead struct {
	Table    policy.TableName
	Column   string
	Decision policy.Decision
}

// StatementInfo describes one statement of a query string.
type StatementInfo struct {
	// Kind is the parse node name without "Stmt", e.g. "Select", "Copy",
	// "VariableSet".
	Kind string
	// Fingerprint identifies the statement's shape without its literals
	// (pg_query's fingerprint), for audit records.
	Fingerprint string
	// Relations lists the relations the statement reads, views and the
	// base tables behind them, in order of first reference.
	Relations []policy.TableName
	// Reads lists the classified columns the statement refers to anywhere
	// (select list, WHERE, join conditions, GROUP BY, subqueries), each
	// once with its decision, in order of first reference: for the audit
	// record, whose result columns alone miss the columns a statement
	// only filters or joins on.
	Reads []ColumnRead
	// DigestOrder reports that the statement groups or de-duplicates on a
	// pseudonymised column: its rows must be ordered by the proxy's keyed
	// digest, or they come back in clear-value order.
	DigestOrder bool
	// Outputs are the columns the statement returns (SELECT, DECLARE,
	// PREPARE, COPY), as far as the analysis resolved them.
	Outputs []Output
	// Ties are the queries inside the statement whose ties among rows the
	// proxy's digest must break (sqlinfo.TieSite).
	Ties []sqlinfo.Tie
	// Top is how the digest breaks ties among the statement's own rows
	// (its Hash is not used: Outputs say what is hashed).
	Top sqlinfo.Tie
	// Lifts are the select-list entries of the statement's own query the
	// proxy computes on the rewritten column (sqlinfo.Lift).
	Lifts []sqlinfo.Lift
	// Drills are the drill-down literals the proxy decodes (sqlinfo.Drill).
	Drills []sqlinfo.Drill
	// SortTags are, for each item of the statement's own ORDER BY, the
	// digest tag of the pseudonymised column it sorts by ("" for an
	// unprotected key): the digest ordering sorts such a key by its keyed
	// digest.
	SortTags []string
}

// orderRevealing refuses a statement over a table the role does not see in
// clear that calls a function whose result depends on the order the
// server reads rows in: that order (physical, an index's, a hash join's)
// follows the clear values, and the proxy's digest ordering of the
// result comes too late to hide it. Where the digest can break the ties
// inside the statement instead (an inner LIMIT, DISTINCT ON, row_number()
// and its kin, a ROWS frame), the statement gets those tie sites in
// a.ties and is not refused.
func (a *analyzer) orderRevealing(n *pg_query.Node) error {
	protected := false
	for _, t := range a.rels {
		protected = protected || a.pol.Protects(a.role, t)
	}
	if !protected {
		return nil
	}
	const (
		reason = "depends on the order in which the server reads rows, which follows their clear values"
		rule   = "restricted roles may not number, collect, cut or frame rows by arrival order over tables they do not see in clear, unless pgpseudo can break the ties by its keyed digest"
	)
	sels := sqlinfo.Selects(n)
	broken := map[*pg_query.WindowDef]bool{}
	// COLLATE is allowed on the statement's own ORDER BY keys, which the
	// server sorts in full.
	sortCollations := map[*pg_query.CollateClause]bool{}
	if top := sqlinfo.TopQuery(n); top != nil {
		for _, it := range top.GetSortClause() {
			if cc := it.GetSortBy().GetNode().GetCollateClause(); cc != nil {
				sortCollations[cc] = true
			}
		}
	}
	for _, st := range sqlinfo.TieSites(n) {
		if st.Unbreakable != "" {
			if st.Limit || st.DistinctOn || len(st.Windows) > 0 {
				what := "LIMIT or OFFSET inside the statement"
				switch {
				case len(st.Windows) > 0:
					what = "a window function that numbers rows, reads neighbours or is framed by ROWS"
				case !st.Limit:
					what = "DISTINCT ON"
				}
				return &Refusal{Clause: "a subquery over protected tables", Reason: what + " picks rows by the order in which the server reads them among ties, which follows their clear values, and pgpseudo cannot break those ties (" + st.Unbreakable + ")", Rule: rule}
			}
			continue
		}
		tie, ok := a.tieHash[sels[st.Select]]
		if !ok {
			return &Refusal{Clause: "a subquery over protected tables", Reason: "it decides among rows that tie in the server's order, in a query pgpseudo did not analyse", Rule: rule}
		}
		tie.Select = st.Select
		a.ties = append(a.ties, tie)
		for _, w := range st.Windows {
			broken[w] = true
		}
	}
	var ref *Refusal
	aggregates := false
	sqlinfo.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if ref != nil {
			return
		}
		if f, ok := m.Interface().(*pg_query.FuncCall); ok {
			if r := a.aggregateOrder(f, broken, rule); r != nil {
				ref = r
				return
			}
			if sqlinfo.OrderedAggregate(f) {
				aggregates = true
			}
		}
		switch x := m.Interface().(type) {
		case *pg_query.CollateClause:
			if !sortCollations[x] {
				// Two collations that conflict leave a comparison without
				// one, which fails on the rows that reach it: where the
				// server stops early, failing shows which rows it read.
				ref = &Refusal{Clause: "a statement over protected tables", Reason: "COLLATE other than on the statement's own ORDER BY keys can make a comparison fail on the rows that reach it (two collations that conflict), which shows the order in which the server reads them", Rule: rule}
			}
		case *pg_query.RangeTableSample:
			if rowDependent(false, x.GetArgs()...) || rowDependent(false, x.GetRepeatable()) {
				ref = &Refusal{Clause: "TABLESAMPLE", Reason: "a sampling argument computed from rows is checked on every run and fails out of range on some of them, which shows the order in which the server reads them", Rule: rule}
			}
		case *pg_query.SelectStmt:
			if rowDependent(x == sqlinfo.TopQuery(n), x.GetLimitCount(), x.GetLimitOffset()) {
				ref = &Refusal{Clause: "LIMIT/OFFSET", Reason: "a count computed from rows fails when negative on some of them, which shows the order in which the server reads them", Rule: rule}
				return
			}
			if what := sqlinfo.UnpairedDedup(x); what != "" {
				ref = &Refusal{Clause: "a statement over protected tables", Reason: what + " keeps, of computed values that compare equal but print differently, the one the server reads first, which names a row (use ALL, or GROUP BY in a subquery)", Rule: rule}
			}
		case *pg_query.SubLink:
			if x.GetSubLinkType() == pg_query.SubLinkType_ARRAY_SUBLINK {
				ref = &Refusal{Clause: "a statement over protected tables", Reason: "ARRAY(subquery) collects rows in the order in which the server reads them, which follows their clear values", Rule: rule}
			}
		case *pg_query.FuncCall:
			if sqlinfo.OrderRevealing(x) && !(sqlinfo.TieBreakable(x) && broken[x.GetOver()]) {
				_, name := funcName(x.GetFuncname())
				ref = &Refusal{Function: name, Clause: "a statement over protected tables", Reason: reason, Rule: rule}
			}
		case *pg_query.WindowDef:
			switch {
			case sqlinfo.FramedByArrival(x) && !broken[x]:
				ref = &Refusal{Clause: "a statement over protected tables", Reason: "a window framed by ROWS or GROUPS " + reason, Rule: rule}
			case rowDependent(false, x.GetStartOffset(), x.GetEndOffset()):
				ref = &Refusal{Clause: "a window frame", Reason: "a frame offset computed from an outer row fails when negative on some of them, which shows the order in which the server reads them", Rule: rule}
			}
		}
	})
	if ref == nil {
		if aggregates {
			a.ties = append(a.ties, sqlinfo.Tie{Select: sqlinfo.AggregatesTie})
		}
		if slices.ContainsFunc(sels, sqlinfo.Groups) {
			t := sqlinfo.Tie{Select: sqlinfo.GroupingsTie}
			for i, s := range sels {
				if a.storedKeys[s] {
					t.StoredKeys = append(t.StoredKeys, i)
				}
				if names := a.keyAliases[s]; len(names) > 0 {
					if t.KeyAliases == nil {
						t.KeyAliases = map[int][]string{}
					}
					t.KeyAliases[i] = names
				}
			}
			a.ties = append(a.ties, t)
		}
		return nil
	}
	return ref
}

// rowDependent reports a LIMIT, OFFSET or TABLESAMPLE argument that may
// differ from run to run: a column in it can only be an outer query's (or
// a LATERAL) reference, and a subquery may be one too, except in the
// statement's own query, which runs once.
func rowDependent(top bool, ns ...*pg_query.Node) bool {
	found := false
	for _, n := range ns {
		if n == nil {
			continue
		}
		var visit func(m protoreflect.Message) bool
		visit = func(m protoreflect.Message) bool {
			switch m.Interface().(type) {
			case *pg_query.ColumnRef:
				found = true
			case *pg_query.SubLink:
				found = found || !top
				return true // its own columns are its own
			}
			return sqlinfo.EachChild(m, visit)
		}
		visit(n.ProtoReflect())
	}
	return found
}

// aggregateOrder refuses an aggregate over protected tables whose result
// depends on the order it reads rows in and that the digest cannot order
// (OrderedAggregate is ordered by the rewrite): a DISTINCT call other than
// count() over a computed value (its ORDER BY may only name its
// arguments, and of equal values it keeps the one read first), mode() and
// percentile_disc() over a computed value (they return one of the tied
// input values), and such an aggregate over a window with
// ORDER BY, a RANGE or GROUPS frame or a named window (peers come in the
// server's order).
func (a *analyzer) aggregateOrder(f *pg_query.FuncCall, broken map[*pg_query.WindowDef]bool, rule string) *Refusal {
	_, name := funcName(f.GetFuncname())
	refuse := func(reason string) *Refusal {
		return &Refusal{Function: name, Clause: "a statement over protected tables", Reason: reason, Rule: rule}
	}
	bareColumns := func(ns []*pg_query.Node) bool {
		for _, n := range ns {
			if sb := n.GetSortBy(); sb != nil {
				n = sb.GetNode()
			}
			if n.GetColumnRef() == nil {
				return false
			}
		}
		return true
	}
	// Of values that compare equal it keeps one: a stored column's values
	// are what they are, but computed ones can compare equal and print
	// differently (1.0 and 1.00), which names the row read first.
	switch {
	case f.GetAggDistinct() && name != "count" && !bareColumns(f.GetArgs()):
		return refuse("with DISTINCT over a computed value keeps, of values that compare equal, the one the server reads first")
	case f.GetAggWithinGroup() && (name == "mode" || name == "percentile_disc") && !bareColumns(f.GetAggOrder()):
		return refuse("over a computed value returns one of the input values that tie, the one the server reads first")
	case !sqlinfo.OrderedAggregate(f) || f.GetOver() == nil:
		return nil
	case sqlinfo.InexactWindowOrderable(f.GetOver()), broken[f.GetOver()]:
		return nil
	}
	return refuse("over a window with ORDER BY, a RANGE or GROUPS frame or a named window, its result depends on the order in which the server reads rows that tie")
}

// Output is one result column of a statement.
type Output struct {
	// Name is the column's name; Certain says PostgreSQL is known to give
	// it that name.
	Name    string
	Certain bool
	// Withheld: the column may carry values that do not leave as they are
	// or one to one — blocked, masked, generalised (or unresolvable) —
	// which must not even decide the order of rows: rows that look alike
	// would be told apart, or found equal, by their order.
	Withheld bool
	// Blocked: the column's values never leave (a subset of Withheld).
	Blocked bool
	// Tag names the token domains of the column's protected data
	// (digestTag).
	Tag string
	// kinds are the transforms of its protected data.
	kinds []string
}

// DigestColumns names the outputs the proxy's digest ordering may hash:
// all (nil, true) when none is withheld, otherwise the others by name,
// which must then be certain and unique (ok false when they are not).
func (s StatementInfo) DigestColumns() (names []string, ok bool) {
	withheld := false
	count := map[string]int{}
	for _, o := range s.Outputs {
		withheld = withheld || o.Withheld
		count[o.Name]++
	}
	if !withheld {
		return nil, true
	}
	names = []string{}
	for _, o := range s.Outputs {
		if o.Withheld {
			continue
		}
		if !o.Certain || count[o.Name] > 1 {
			return nil, false
		}
		names = append(names, o.Name)
	}
	return names, true
}

// DigestOutputs describes the statement's result columns for the digest
// ordering: all of them by name, the ones whose values leave as they are
// or one to one hashed; nil when a name is not certain.
func (s StatementInfo) DigestOutputs() *sqlinfo.Outputs {
	if len(s.Outputs) == 0 {
		return nil
	}
	o := &sqlinfo.Outputs{RowsOf: s.Top.RowsOf, SortTags: s.SortTags}
	for _, c := range s.Outputs {
		if !c.Certain {
			return nil
		}
		o.Names = append(o.Names, c.Name)
		o.Hash = append(o.Hash, !c.Withheld || s.Top.Partial && !c.Blocked)
		o.Tags = append(o.Tags, c.Tag)
		release := ""
		if s.Top.Partial && c.Withheld {
			release = sqlinfo.ReleasedForm(c.kinds)
		}
		o.Release = append(o.Release, release)
	}
	return o
}

func outputsOf(cols []column) []Output {
	out := make([]Output, 0, len(cols))
	for _, c := range cols {
		out = append(out, Output{Name: c.name, Certain: !c.uncertain, Withheld: withheld(c.val), Blocked: blockedValue(c.val), Tag: digestTag(c.val), kinds: kindsOf(c.val)})
	}
	return out
}

// topTie is how the digest breaks ties among a statement's own rows:
// what the analysis of its query decided (tieBreak), or, where there is
// none (a set operation, COPY of a table), hashing the values that leave
// in part.
func (a *analyzer) topTie(n *pg_query.Node, outs []Output) sqlinfo.Tie {
	if top := sqlinfo.TopQuery(n); top != nil {
		if t, ok := a.tieHash[top]; ok {
			return t
		}
	}
	for _, o := range outs {
		if o.Withheld && !o.Blocked {
			return sqlinfo.Tie{Partial: true}
		}
	}
	return sqlinfo.Tie{}
}

// blockedValue reports a value that never leaves (blocked, NULLed, not
// resolved, or without a table origin): the tie-breaking digest leaves it
// out. Everything else
// is hashed, masked and generalised values too: they leave in part (a
// year, the last digits) and can be joined on, so rows that differ in
// them must not be told apart by the server's order.
func blockedValue(v value) bool {
	if v.taint != nil || v.unresolved != "" {
		return true
	}
	if len(v.srcs) > 0 && (v.origin == originNone || v.mixed) {
		// Protected data without a table origin (a set operation, VALUES,
		// a scalar subquery) is withheld by the response side: it never
		// leaves. Hashed, it would meet typed-in values under its tag.
		return true
	}
	for _, s := range v.srcs {
		if s.dec.Action == policy.Block || s.dec.Action == policy.Null {
			return true
		}
	}
	return false
}

// withheld reports a value that may not leave as it is or one to one
// (see Output.Withheld).
func withheld(v value) bool {
	if v.taint != nil || v.unresolved != "" {
		return true
	}
	for _, s := range v.srcs {
		switch s.dec.Action {
		case policy.Allow:
		case policy.Tokenize:
			if !s.dec.Spec.Kind.Injective() {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// maxViewDepth bounds view nesting (and catches cycles).
const maxViewDepth = 32

// Analyze analyses sql for session s. The error is only for catalog
// failures; a statement that must not run is reported in Result.Refusal.
// Sessions whose role is not restricted get statement descriptions and
// search_path tracking but never a refusal.
func Analyze(ctx context.Context, s *Session, cat Catalog, sql string) (*Result, error) {
	tree, res, err := Parse(s, sql)
	if tree == nil || err != nil {
		return res, err
	}
	return AnalyzeParsed(ctx, s, cat, sql, tree)
}

// Parse is Analyze's parse of sql: the tree, or (nil) the result for a
// statement that does not parse, refused for a restricted role. Callers
// that time the two steps apart call it, then AnalyzeParsed.
func Parse(s *Session, sql string) (*pg_query.ParseResult, *Result, error) {
	if s.Policy == nil || s.Role == nil {
		return nil, nil, errors.New("analyze: the session has no policy or role")
	}
	tree, err := pg_query.Parse(sql)
	if err == nil {
		return tree, nil, nil
	}
	res := &Result{SearchPath: s.SearchPath}
	if s.Role.Restricted() {
		res.Refusal = &Refusal{Role: s.Role.Name, StatementKind: "unparseable",
			Reason: "the statement cannot be parsed (" + err.Error() + ")",
			Rule:   "statements pgpseudo cannot parse are refused for restricted roles"}
	}
	return nil, res, nil
}

// AnalyzeParsed is Analyze on tree, the parse of sql an earlier Analyze
// returned (Result.Tree): a second policy (the shadow candidate) is
// decided on the same parse, not on a second one. tree is only read.
func AnalyzeParsed(ctx context.Context, s *Session, cat Catalog, sql string, tree *pg_query.ParseResult) (*Result, error) {
	if s.Policy == nil || s.Role == nil || tree == nil {
		return nil, errors.New("analyze: the session has no policy or role, or no parse")
	}
	restricted := s.Role.Restricted()
	res := &Result{SearchPath: s.SearchPath}
	roleName := s.Role.Name
	if restricted {
		if ref := grammarSkew(sql, s.Keywords); ref != nil {
			ref.Role = roleName
			res.Refusal = ref
			return res, nil
		}
	}
	res.Tree = tree
	a := &analyzer{ctx: ctx, s: s, cat: cat, pol: s.Policy, role: s.Role, roleName: roleName,
		restricted: restricted, searchPath: s.SearchPath, inTx: s.InTransaction,
		views: map[policy.TableName]*viewInfo{}}
	hasTxControl := false
	for _, raw := range tree.Stmts {
		if raw.Stmt.GetTransactionStmt() != nil {
			hasTxControl = true
		}
	}
	a.multiTx = hasTxControl && len(tree.Stmts) > 1
	for i, raw := range tree.Stmts {
		text := sql[raw.StmtLocation:]
		if raw.StmtLen > 0 && int(raw.StmtLocation+raw.StmtLen) <= len(sql) {
			text = sql[raw.StmtLocation : raw.StmtLocation+raw.StmtLen]
		}
		info := StatementInfo{Kind: sqlinfo.KindOf(raw.Stmt)}
		if fp, err := pg_query.Fingerprint(text); err == nil {
			info.Fingerprint = fp
		}
		a.rels, a.reads, a.nextPath, a.digestOrder, a.outputs, a.ties, a.sortTags, a.lifts, a.liftable = nil, nil, nil, false, nil, nil, nil, nil, liftNone
		a.drills, a.noDrill = nil, raw.Stmt.GetExplainStmt() != nil || raw.Stmt.GetPrepareStmt() != nil
		a.tieHash = map[*pg_query.SelectStmt]sqlinfo.Tie{}
		a.storedKeys = map[*pg_query.SelectStmt]bool{}
		a.keyAliases = map[*pg_query.SelectStmt][]string{}
		var err error
		if restricted && raw.Stmt.GetVariableSetStmt() == nil && raw.Stmt.GetVariableShowStmt() == nil &&
			raw.Stmt.GetTransactionStmt() == nil && raw.Stmt.GetDiscardStmt() == nil {
			err = shadowedCatalog(a.searchPath)
		}
		if err == nil && (restricted || raw.Stmt.GetVariableSetStmt() != nil || raw.Stmt.GetDiscardStmt() != nil || raw.Stmt.GetTransactionStmt() != nil) {
			// Unrestricted sessions only need search_path tracking.
			err = a.statement(raw.Stmt, info.Kind)
		}
		if err == nil && restricted {
			err = a.orderRevealing(raw.Stmt)
		}
		if err == nil && restricted {
			err = a.drillParams(raw.Stmt)
		}
		info.Relations, info.Reads, info.DigestOrder, info.Outputs, info.Ties = a.rels, a.reads, a.digestOrder, outputsOf(a.outputs), a.ties
		info.Top = a.topTie(raw.Stmt, info.Outputs)
		info.SortTags, info.Lifts, info.Drills = a.sortTags, a.lifts, a.drills
		res.Statements = append(res.Statements, info)
		var ref *Refusal
		switch {
		case errors.As(err, &ref):
			if !restricted {
				continue
			}
			if ref.StatementKind == "" {
				ref.StatementKind = info.Kind
			}
			ref.Role = roleName
			if len(tree.Stmts) > 1 {
				ref.Statement = i + 1
			}
			res.Refusal = ref
			return res, nil
		case err != nil:
			return nil, err
		}
		if a.nextPath != nil {
			a.searchPath = a.nextPath
		}
	}
	res.SearchPath = a.searchPath
	res.SearchPathChanged = a.pathChanged
	return res, nil
}

// reservedName refuses a statement or cursor name the proxy's server-side
// check uses: the check closes and reuses its own names.
func reservedName(name, what string) error {
	if sqlinfo.ReservedName(name) {
		return &Refusal{Reason: "the " + what + " name " + quoteIdent(name) + " is reserved for pgpseudo's server-side check",
			Rule: "names starting with " + sqlinfo.ReservedPrefix + " are pgpseudo's"}
	}
	return nil
}

// ruleGrammar is the rule of refusals for grammar skew.
const ruleGrammar = "words that pgpseudo's parser and the server's grammar read differently are refused for restricted roles (quote them as identifiers)"

// grammarSkew refuses SQL that contains a word whose keyword category
// differs between pgpseudo's parser and the server's grammar.
func grammarSkew(sql string, server sqlinfo.Keywords) *Refusal {
	if server == nil {
		return &Refusal{StatementKind: "unparseable", Reason: "the server's keyword list is not known, so pgpseudo cannot tell whether it reads the statement as pgpseudo does",
			Rule: ruleGrammar}
	}
	skew, err := sqlinfo.CheckKeywords(sql, server)
	switch {
	case err != nil:
		return &Refusal{StatementKind: "unparseable", Reason: "the statement cannot be scanned (" + err.Error() + ")",
			Rule: "statements pgpseudo cannot parse are refused for restricted roles"}
	case skew != nil:
		return &Refusal{Word: skew.Word, Reason: "is " + category(skew.Parser) + " for pgpseudo's parser but " + category(skew.Server) + " for the server",
			Rule: ruleGrammar}
	}
	return nil
}

func category(c byte) string {
	switch c {
	case 'U':
		return "an unreserved keyword"
	case 'C':
		return "a column-name keyword"
	case 'T':
		return "a type or function name keyword"
	case 'R':
		return "a reserved keyword"
	}
	return "not a keyword"
}

// analyzer holds the state of one Analyze call.
type analyzer struct {
	ctx        context.Context
	s          *Session
	cat        Catalog
	pol        *policy.Policy
	role       *policy.Role
	roleName   string
	restricted bool

	searchPath  []string
	nextPath    []string // set by the current statement, applies to the next
	pathChanged bool
	inTx        bool
	// multiTx: the string mixes transaction control with other statements.
	multiTx bool

	// views caches view analyses for this call; viewDepth bounds nesting.
	views     map[policy.TableName]*viewInfo
	viewDepth int
	// rels are the relations the current statement reads; reads the
	// classified columns it refers to.
	rels  []policy.TableName
	reads []ColumnRead
	// bareSetConfig is the call of a statement that is nothing but
	// SELECT set_config(…): only such a call surely runs, once.
	bareSetConfig *pg_query.FuncCall
	// digestOrder: the current statement groups on a pseudonymised value.
	digestOrder bool
	// outputs are the current statement's result columns.
	outputs []column
	// sortTags are the digest tags of the current statement's own sort
	// keys (StatementInfo.SortTags); lifts its lifted entries.
	sortTags []string
	lifts    []sqlinfo.Lift
	// drills are the current statement's drill-down literals; noDrill is
	// set where they may not be decoded: EXPLAIN would print the clear
	// values, PREPARE keep them in pg_prepared_statements.
	drills  []sqlinfo.Drill
	noDrill bool
	// liftable says which entries of the current statement's own query
	// may be lifted: its result is described by that query (SELECT), or
	// by the cursor a FETCH reads (DECLARE); none for PREPARE, COPY, ….
	liftable liftKind
	// tieHash are, for each query of the current statement, what its
	// tie-breaking digest hashes (tieBreak); ties are the statement's tie
	// sites.
	tieHash map[*pg_query.SelectStmt]sqlinfo.Tie
	ties    []sqlinfo.Tie
	// storedKeys are the queries whose every grouping key is a table's
	// column passed on, as far as every analysis of them found: they need
	// no companions (the server-side check still requires them where the
	// plan shows a computed key).
	storedKeys map[*pg_query.SelectStmt]bool
	// keyAliases are, by query, the GROUP BY names that name select list
	// entries rather than columns of FROM.
	keyAliases map[*pg_query.SelectStmt][]string
}

// shadowedCatalog refuses a search_path that lists pg_catalog after
// another schema: PostgreSQL then resolves unqualified operators and
// functions in that schema first, so an "=" or a "lower" there (an
// owner's, written in a language the plan does not show) would stand in
// for the built-in the analysis and the server-side check take it for
// (round 25: an "=" that compared with <= turned drill-down and every
// equality into a probe of clear values). Without pg_catalog, PostgreSQL
// searches it first.
func shadowedCatalog(path []string) error {
	for i, s := range path {
		if s == "pg_catalog" && i > 0 {
			for _, before := range path[:i] {
				if before != "pg_temp" {
					return &Refusal{Setting: "search_path", Reason: fmt.Sprintf("lists %s before pg_catalog, whose operators and functions it would shadow", quoteIdent(before)),
						Rule: "restricted sessions keep pg_catalog first in search_path"}
				}
			}
		}
	}
	return nil
}

// liftKind is which lifts a statement's own query may have.
type liftKind uint8

const (
	liftNone   liftKind = iota
	liftSelect          // any PostOp
	liftCursor          // casts without a length: FETCH shows the token itself
)

func (a *analyzer) noteRelation(t policy.TableName) {
	for _, r := range a.rels {
		if r == t {
			return
		}
	}
	a.rels = append(a.rels, t)
}

// statement analyses one top-level statement.
func (a *analyzer) statement(n *pg_query.Node, kind string) error {
	switch {
	case n.GetSelectStmt() != nil:
		a.liftable = liftSelect
		return a.topSelect(n.GetSelectStmt())
	case n.GetDeallocateStmt() != nil:
		return reservedName(n.GetDeallocateStmt().GetName(), "prepared statement")
	case n.GetVariableShowStmt() != nil, n.GetFetchStmt() != nil, n.GetClosePortalStmt() != nil:
		return nil
	case n.GetVariableSetStmt() != nil:
		return a.set(n.GetVariableSetStmt())
	case n.GetTransactionStmt() != nil:
		return a.transaction(n.GetTransactionStmt())
	case n.GetDeclareCursorStmt() != nil:
		if err := reservedName(n.GetDeclareCursorStmt().GetPortalname(), "cursor"); err != nil {
			return err
		}
		// FETCH describes the cursor's own columns: only casts that leave
		// the token as it is are lifted in a cursor's query.
		a.liftable = liftCursor
		return a.readQuery(n.GetDeclareCursorStmt().GetQuery(), "DECLARE CURSOR")
	case n.GetPrepareStmt() != nil:
		if err := reservedName(n.GetPrepareStmt().GetName(), "prepared statement"); err != nil {
			return err
		}
		return a.readQuery(n.GetPrepareStmt().GetQuery(), "PREPARE")
	case n.GetExecuteStmt() != nil:
		if err := reservedName(n.GetExecuteStmt().GetName(), "prepared statement"); err != nil {
			return err
		}
		// The prepared statement was analysed at PREPARE; its parameters
		// are expressions without columns.
		sc := &scope{}
		for _, p := range n.GetExecuteStmt().GetParams() {
			if _, err := a.expr(sc, p, ctx{clause: "EXECUTE parameters", use: useOther}); err != nil {
				return err
			}
		}
		return nil
	case n.GetCopyStmt() != nil:
		return a.copyStmt(n.GetCopyStmt())
	case n.GetLockStmt() != nil:
		return a.lock(n.GetLockStmt())
	case n.GetExplainStmt() != nil:
		return a.explain(n.GetExplainStmt())
	case n.GetDiscardStmt() != nil:
		if n.GetDiscardStmt().GetTarget() == pg_query.DiscardMode_DISCARD_ALL {
			return a.setSearchPath(a.s.DefaultSearchPath, "DISCARD ALL")
		}
		return nil
	}
	return a.refuseStatement(kind)
}

// statementName names refused statement kinds in messages.
func statementName(kind string) string {
	switch kind {
	case "Insert":
		return "INSERT"
	case "Update":
		return "UPDATE"
	case "Delete":
		return "DELETE"
	case "Merge":
		return "MERGE"
	case "Do":
		return "DO"
	case "Call":
		return "CALL"
	case "CreateTableAs":
		return "CREATE TABLE AS"
	case "Listen":
		return "LISTEN"
	case "Notify":
		return "NOTIFY"
	case "Unlisten":
		return "UNLISTEN"
	case "Vacuum":
		return "VACUUM/ANALYZE"
	case "Truncate":
		return "TRUNCATE"
	case "Load":
		return "LOAD"
	case "AlterSystem":
		return "ALTER SYSTEM"
	case "CheckPoint":
		return "CHECKPOINT"
	case "Grant":
		return "GRANT"
	case "GrantRole":
		return "GRANT"
	case "Create":
		return "CREATE TABLE"
	case "View":
		return "CREATE VIEW"
	case "Drop":
		return "DROP"
	case "CreateFunction":
		return "CREATE FUNCTION"
	case "Alter Table":
		return "ALTER TABLE"
	case "AlterTable":
		return "ALTER TABLE"
	case "Index":
		return "CREATE INDEX"
	case "Rule":
		return "CREATE RULE"
	case "CreateRole":
		return "CREATE ROLE"
	case "AlterRole":
		return "ALTER ROLE"
	case "Reindex":
		return "REINDEX"
	case "Cluster":
		return "CLUSTER"
	case "RefreshMatView":
		return "REFRESH MATERIALIZED VIEW"
	case "CreateSchema":
		return "CREATE SCHEMA"
	case "Comment":
		return "COMMENT"
	case "SecLabel":
		return "SECURITY LABEL"
	case "CreateExtension":
		return "CREATE EXTENSION"
	case "ReassignOwned":
		return "REASSIGN OWNED"
	case "DropOwned":
		return "DROP OWNED"
	case "AlterDefaultPrivileges":
		return "ALTER DEFAULT PRIVILEGES"
	case "ImportForeignSchema":
		return "IMPORT FOREIGN SCHEMA"
	}
	return ""
}

// sqlWords spells a statement kind the way SQL does: AlterRoleSet is
// ALTER ROLE SET.
func sqlWords(kind string) string {
	var b strings.Builder
	for i, r := range kind {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func (a *analyzer) refuseStatement(kind string) error {
	name := statementName(kind)
	if name == "" {
		name = sqlWords(kind)
	}
	return &Refusal{StatementKind: kind, Reason: name + " is not a read statement",
		Rule: "restricted roles may only run read statements (SELECT, SHOW, SET, transaction control, cursors, prepared statements, COPY TO STDOUT, LOCK IN ACCESS SHARE MODE, EXPLAIN, DISCARD)"}
}

// topSelect analyses a SELECT whose result goes to the client.
func (a *analyzer) topSelect(s *pg_query.SelectStmt) error {
	if s.GetIntoClause() != nil {
		return &Refusal{StatementKind: "SelectInto", Reason: "SELECT INTO creates a table",
			Rule: "restricted roles may only run read statements"}
	}
	a.bareSetConfig = bareSetConfig(s)
	cols, err := a.query(&scope{}, s, levelTop)
	a.outputs = cols
	return err
}

// bareSetConfig returns f for a statement that is exactly SELECT
// [pg_catalog.]set_config(…).
func bareSetConfig(s *pg_query.SelectStmt) *pg_query.FuncCall {
	if s.GetOp() != pg_query.SetOperation_SETOP_NONE || s.GetWithClause() != nil || len(s.GetFromClause()) > 0 ||
		s.GetWhereClause() != nil || len(s.GetGroupClause()) > 0 || s.GetHavingClause() != nil || len(s.GetWindowClause()) > 0 ||
		len(s.GetValuesLists()) > 0 || len(s.GetSortClause()) > 0 || s.GetLimitCount() != nil || s.GetLimitOffset() != nil ||
		len(s.GetDistinctClause()) > 0 || len(s.GetTargetList()) != 1 {
		return nil
	}
	f := s.GetTargetList()[0].GetResTarget().GetVal().GetFuncCall()
	if f == nil || f.GetOver() != nil || f.GetAggFilter() != nil {
		return nil
	}
	if schema, name := funcName(f.GetFuncname()); name != "set_config" || schema != "" && schema != "pg_catalog" {
		return nil
	}
	return f
}

// readQuery analyses the statement inside DECLARE, PREPARE or EXPLAIN.
func (a *analyzer) readQuery(q *pg_query.Node, within string) error {
	if q.GetSelectStmt() != nil {
		return a.topSelect(q.GetSelectStmt())
	}
	kind := sqlinfo.KindOf(q)
	err := a.refuseStatement(kind)
	var r *Refusal
	if errors.As(err, &r) {
		r.Clause = within
	}
	return err
}

func (a *analyzer) transaction(t *pg_query.TransactionStmt) error {
	switch t.GetKind() {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		a.inTx = true
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		a.inTx = false
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE,
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
	default:
		return &Refusal{StatementKind: "Transaction", Reason: "two-phase commit statements change other transactions",
			Rule: "restricted roles may only run read statements"}
	}
	return nil
}

func (a *analyzer) lock(l *pg_query.LockStmt) error {
	const accessShare = 1
	if l.GetMode() != accessShare {
		return &Refusal{StatementKind: "Lock", Reason: "LOCK in a mode other than ACCESS SHARE",
			Rule: "restricted roles may only take ACCESS SHARE locks"}
	}
	for _, r := range l.GetRelations() {
		if rv := r.GetRangeVar(); rv != nil {
			if _, err := a.lookup(rv); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *analyzer) explain(e *pg_query.ExplainStmt) error {
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		if d == nil || strings.ToLower(d.GetDefname()) != "analyze" {
			continue
		}
		if v := strings.ToLower(defString(d)); v == "" || v == "true" || v == "on" || v == "1" {
			return &Refusal{StatementKind: "Explain", Reason: "EXPLAIN ANALYZE executes the statement",
				Rule: "restricted roles may only run EXPLAIN without ANALYZE"}
		}
	}
	q := e.GetQuery()
	if q.GetExecuteStmt() != nil {
		// The plan of a prepared statement is the plan of the statement as
		// pgpseudo rewrote it, digest key included.
		return &Refusal{StatementKind: "Explain", Reason: "EXPLAIN EXECUTE shows a prepared statement as pgpseudo rewrote it",
			Rule: "restricted roles may EXPLAIN statements, not prepared statements"}
	}
	// Plans show row estimates from column statistics: what would be
	// refused to run is refused to explain.
	return a.readQuery(q, "EXPLAIN")
}

func defString(d *pg_query.DefElem) string {
	arg := d.GetArg()
	switch {
	case arg == nil:
		return ""
	case arg.GetString_() != nil:
		return arg.GetString_().GetSval()
	case arg.GetBoolean() != nil:
		return fmt.Sprint(arg.GetBoolean().GetBoolval())
	case arg.GetInteger() != nil:
		return fmt.Sprint(arg.GetInteger().GetIval())
	case arg.GetAConst() != nil:
		c := arg.GetAConst()
		switch {
		case c.GetSval() != nil:
			return c.GetSval().GetSval()
		case c.GetBoolval() != nil:
			return fmt.Sprint(c.GetBoolval().GetBoolval())
		case c.GetIval() != nil:
			return fmt.Sprint(c.GetIval().GetIval())
		}
	}
	return "?"
}

func (a *analyzer) copyStmt(c *pg_query.CopyStmt) error {
	const rule = "restricted roles may only run COPY … TO STDOUT"
	switch {
	case c.GetIsFrom():
		return &Refusal{StatementKind: "Copy", Reason: "COPY FROM writes a table", Rule: rule}
	case c.GetIsProgram() || c.GetFilename() != "":
		return &Refusal{StatementKind: "Copy", Reason: "COPY TO a file or program writes on the server", Rule: rule}
	}
	opts := sqlinfo.CopyOptions(c)
	if opts.Unsupported != "" {
		return &Refusal{StatementKind: "Copy", Reason: "COPY option " + opts.Unsupported + " is not supported",
			Rule: "COPY output of restricted roles must be rewritable per column (no ENCODING but UTF8, options as PostgreSQL reads them)"}
	}
	var cols []column
	if q := c.GetQuery(); q != nil {
		sel := q.GetSelectStmt()
		if sel == nil {
			return a.readQuery(q, "COPY")
		}
		var err error
		if cols, err = a.query(&scope{}, sel, levelTop); err != nil {
			var r *Refusal
			if errors.As(err, &r) && r.Clause == "" {
				r.Clause = "COPY"
			}
			return err
		}
	} else {
		rv := c.GetRelation()
		if rv == nil {
			return &Refusal{StatementKind: "Copy", Reason: "COPY without a relation or query", Rule: rule}
		}
		// COPY table [(columns)] TO STDOUT outputs the columns bare, as
		// SELECT would; the response side rewrites them.
		r, err := a.rangeVar(&scope{}, rv)
		if err != nil {
			return err
		}
		cols = r.cols
		if len(c.GetAttlist()) > 0 {
			cols = nil
			for _, n := range c.GetAttlist() {
				name := n.GetString_().GetSval()
				col, ok := r.column(name)
				if !ok {
					return a.unknownColumn(r, name, "COPY")
				}
				cols = append(cols, col)
			}
		}
		for _, col := range cols {
			if err := a.check(col.val, ctx{clause: "COPY", use: useOutput}); err != nil {
				return err
			}
		}
		if r.unknown {
			if err := a.check(r.unknownVal, ctx{clause: "COPY", use: useOutput}); err != nil {
				return err
			}
			cols = append(cols, column{name: "?column?", val: r.unknownVal})
		}
	}
	a.outputs = cols
	if opts.NullSet && opts.Format != "binary" {
		// A value equal to the NULL string is written unchanged, so it
		// would confirm a guessed clear value.
		for _, col := range cols {
			if len(col.val.srcs) > 0 || col.val.taint != nil {
				s := &source{column: col.name}
				if len(col.val.srcs) > 0 {
					s = col.val.srcs[0]
				}
				return &Refusal{Table: s.table, Column: s.column, Action: s.dec.Action, Category: s.dec.Category, Clause: "COPY", How: "with the NULL option",
					Reason: "is protected, and a value equal to the NULL string would leave unchanged",
					Rule:   "COPY of protected columns uses the default NULL string"}
			}
		}
	}
	return nil
}
