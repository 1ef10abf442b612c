// Package sqlinfo reads SQL with PostgreSQL's own parser (libpg_query
// through pg_query_go) and reports what pgpseudo's response side needs:
// statement kinds, COPY targets and options, and whether a statement reads
// only the system catalogs. The full fail-closed request analysis builds on
// it.
package sqlinfo

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Statement is what pgpseudo knows of one statement of a query string.
type Statement struct {
	// Kind is the parse node name without "Stmt", e.g. "Select", "Copy".
	Kind string
	// Copy is set for COPY … TO STDOUT.
	Copy *Copy
	// CatalogOnly reports that the statement reads nothing but system
	// catalogs and calls no function that could read table data: its
	// computed columns cannot carry values of user tables. It assumes that
	// every name in CatalogNames is a system catalog; the caller must check
	// that against the database and clear CatalogOnly otherwise.
	CatalogOnly bool
	// ComputedSafe reports that no computed output column of the statement
	// can carry a table value: every expression in a select list (or a
	// function in FROM) is free of column references and subqueries, and
	// there is no set operation. Plain column references keep their origin
	// in the server's RowDescription, so they are checked there.
	ComputedSafe bool
	// Fingerprint identifies the statement's shape with every literal and
	// parameter left out (pg_query's fingerprint), for audit records.
	Fingerprint string
	// Unanalysed marks a statement described by Light only: nothing is
	// known of what it reads.
	Unanalysed bool
	// Text is the statement's source text (a part of the query string),
	// for NormalizedText; it may hold literals and must never be logged.
	Text string
	// CatalogNames are unqualified relation names starting with "pg_"
	// (pg_dump empties search_path and writes them bare).
	CatalogNames []string
}

// Copy describes COPY … TO STDOUT.
type Copy struct {
	// Relation and Columns are set for COPY table [(columns)].
	Relation *Relation
	Columns  []string
	// Query is the text of COPY (query) TO STDOUT.
	Query string
	// Format is text, csv or binary.
	Format string
	// Delimiter, Null, Quote and Escape are the effective options.
	Delimiter, Null, Quote, Escape byte
	NullString                     string
	// NullSet reports an explicit NULL option: a value equal to the NULL
	// string is then written as it is, so the field cannot tell a value
	// from NULL.
	NullSet bool
	Header  bool
	// ForceQuote are the columns FORCE_QUOTE names (csv); ForceQuoteAll
	// is FORCE_QUOTE *.
	ForceQuote    []string
	ForceQuoteAll bool
	// Unsupported names an option pgpseudo does not rewrite (e.g.
	// FORCE_QUOTE); the COPY's data is then withheld.
	Unsupported string
}

// Relation is a schema-qualified (or unqualified) relation name.
type Relation struct{ Schema, Name string }

// ProbeQuery is a SELECT with the same result columns as the COPY, used to
// learn their origins with Parse/Describe.
func (c *Copy) ProbeQuery() string {
	if c.Query != "" {
		return c.Query
	}
	cols := "*"
	if len(c.Columns) > 0 {
		q := make([]string, len(c.Columns))
		for i, col := range c.Columns {
			q[i] = quoteIdent(col)
		}
		cols = strings.Join(q, ", ")
	}
	name := quoteIdent(c.Relation.Name)
	if c.Relation.Schema != "" {
		name = quoteIdent(c.Relation.Schema) + "." + name
	}
	return "SELECT " + cols + " FROM ONLY " + name
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Parse splits sql into statements and describes each.
func Parse(sql string) ([]Statement, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return Describe(tree, sql)
}

// Describe describes the statements of a parse of sql (the analysis
// parses once and describes with the same tree).
func Describe(tree *pg_query.ParseResult, sql string) ([]Statement, error) {
	var err error
	out := make([]Statement, 0, len(tree.Stmts))
	for _, raw := range tree.Stmts {
		st := Statement{Kind: KindOf(raw.Stmt)}
		text := sql[raw.StmtLocation:]
		if raw.StmtLen > 0 && int(raw.StmtLocation+raw.StmtLen) <= len(sql) {
			text = sql[raw.StmtLocation : raw.StmtLocation+raw.StmtLen]
		}
		if fp, err := pg_query.Fingerprint(text); err == nil {
			st.Fingerprint, st.Text = fp, text
		}
		if c := raw.Stmt.GetCopyStmt(); c != nil && !c.IsFrom && c.Filename == "" && !c.IsProgram {
			if st.Copy, err = copyInfo(c, tree.Version); err != nil {
				return nil, err
			}
		}
		st.CatalogOnly, st.CatalogNames = catalogOnly(raw.Stmt)
		st.ComputedSafe = computedSafe(raw.Stmt)
		out = append(out, st)
	}
	return out, nil
}

// KindOf is a parse node's name without "Stmt" ("Select", "Copy",
// "VariableSet"; "Empty" for none).
func KindOf(n *pg_query.Node) string {
	if n == nil || n.GetNode() == nil {
		return "Empty"
	}
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return "Empty"
	}
	return strings.TrimSuffix(string(fd.Message().Name()), "Stmt")
}

func copyInfo(c *pg_query.CopyStmt, version int32) (*Copy, error) {
	cp := CopyOptions(c)
	if c.Relation != nil {
		cp.Relation = &Relation{Schema: c.Relation.Schemaname, Name: c.Relation.Relname}
		for _, a := range c.Attlist {
			cp.Columns = append(cp.Columns, a.GetString_().GetSval())
		}
	} else if c.Query != nil {
		q, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: c.Query}}})
		if err != nil {
			return nil, fmt.Errorf("deparse COPY query: %w", err)
		}
		cp.Query = q
	}
	return cp, nil
}

// CopyOptions returns the effective format options of a COPY (Relation,
// Columns and Query unset).
func CopyOptions(c *pg_query.CopyStmt) *Copy {
	cp := &Copy{Format: "text", Delimiter: '\t', NullString: `\N`}
	delimSet, nullSet := false, false
	for _, o := range c.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		val := defString(d)
		switch d.Defname {
		case "format":
			cp.Format = strings.ToLower(val)
		case "delimiter":
			if len(val) != 1 {
				cp.Unsupported = "DELIMITER " + val
			} else {
				cp.Delimiter, delimSet = val[0], true
			}
		case "null":
			cp.NullString, nullSet, cp.NullSet = val, true, true
		case "header":
			// The first line the server sends is passed on unchanged when
			// it is the header: a value the proxy reads otherwise than the
			// server is refused, never guessed.
			if d.Arg == nil {
				cp.Header = true
			} else if b, ok := headerChoice(val); ok {
				cp.Header = b
			} else {
				cp.Unsupported = "HEADER " + val
			}
		case "force_quote":
			if d.Arg.GetAStar() != nil {
				cp.ForceQuoteAll = true
				break
			}
			for _, n := range d.Arg.GetList().GetItems() {
				cp.ForceQuote = append(cp.ForceQuote, n.GetString_().GetSval())
			}
		case "quote":
			if len(val) == 1 {
				cp.Quote = val[0]
			}
		case "escape":
			if len(val) == 1 {
				cp.Escape = val[0]
			}
		case "encoding":
			// COPY's output encoding: bytes of the server's characters
			// must not look like delimiters, quotes or backslashes.
			if !SafeClientEncoding(val) {
				cp.Unsupported = "ENCODING " + val
			}
		case "freeze":
		default:
			cp.Unsupported = strings.ToUpper(d.Defname)
		}
	}
	if cp.Format == "csv" {
		if !delimSet {
			cp.Delimiter = ','
		}
		if !nullSet {
			cp.NullString = ""
		}
		if cp.Quote == 0 {
			cp.Quote = '"'
		}
		if cp.Escape == 0 {
			cp.Escape = cp.Quote
		}
	}
	return cp
}

// headerChoice reads COPY's HEADER value as PostgreSQL does: true, false,
// on, off in any case, or the integers 1 and 0 (match is for COPY FROM).
func headerChoice(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "on", "1":
		return true, true
	case "false", "off", "0":
		return false, true
	}
	return false, false
}

func defString(d *pg_query.DefElem) string {
	if d.Arg == nil {
		return ""
	}
	switch {
	case d.Arg.GetString_() != nil:
		return d.Arg.GetString_().GetSval()
	case d.Arg.GetBoolean() != nil:
		return fmt.Sprint(d.Arg.GetBoolean().GetBoolval())
	case d.Arg.GetInteger() != nil:
		return fmt.Sprint(d.Arg.GetInteger().GetIval())
	case d.Arg.GetTypeName() != nil:
		names := d.Arg.GetTypeName().GetNames()
		if len(names) > 0 {
			return names[len(names)-1].GetString_().GetSval()
		}
	}
	return "?"
}

// sensitiveCatalog are pg_catalog relations that hold user data: column
// statistics keep most-common values, activity views show other sessions'
// SQL text with its literals.
// SensitiveCatalog reports pg_catalog relations whose rows reveal values
// of user tables or what statements are and did, which restricted roles
// may not read (the analysis refuses them, the response side withholds
// them): column statistics (most common
// values, histograms), activity and statement statistics (other sessions'
// SQL and its literals), cumulative statistics whose counters grow with
// the data a statement processed (temporary file bytes, I/O: a sort that
// carries a value as payload spills more for a longer value), and large
// objects. Restricted roles may not read them at all.
func SensitiveCatalog(name string) bool {
	switch {
	case name == "pg_statistic", name == "pg_statistic_ext_data", name == "pg_largeobject",
		// The session's own statements as the server keeps them: rewritten
		// by pgpseudo (its digest ordering).
		name == "pg_prepared_statements", name == "pg_cursors", name == "pg_backend_memory_contexts",
		// Other sessions' locks and process ids.
		name == "pg_locks",
		strings.HasPrefix(name, "pg_stats"), strings.HasPrefix(name, "pg_stat_"), strings.HasPrefix(name, "pg_statio_"):
		return true
	}
	// pg_statistic_ext holds the definitions of statistics objects (pg_dump
	// reads it), not their data.
	return false
}

// readableStatColumns are the columns of the table statistics views a
// restricted role may read: the table's identity and its estimated row
// count, which pg_class.reltuples shows as well and count(*) counts
// (Metabase's table sync reads it). The other columns say what
// statements did (scans, writes, vacuums).
var readableStatColumns = map[string]bool{"relid": true, "schemaname": true, "relname": true, "n_live_tup": true}

// PartlyReadableCatalog reports a statistics view some columns of which a
// restricted role may read (SensitiveCatalogColumn says which not).
func PartlyReadableCatalog(name string) bool {
	return name == "pg_stat_user_tables" || name == "pg_stat_all_tables"
}

// SensitiveCatalogColumn reports a column of a pg_catalog relation a
// restricted role may not read: every column of a SensitiveCatalog
// relation but the readable ones of the table statistics views.
func SensitiveCatalogColumn(table, column string) bool {
	if PartlyReadableCatalog(table) {
		return !readableStatColumns[column]
	}
	return SensitiveCatalog(table)
}

// DeniedFunction reports functions that run SQL text or read files or
// large objects: they can return any table's data from a catalog-only
// looking query.
func DeniedFunction(name string) bool {
	n := strings.TrimPrefix(strings.ToLower(name), "pg_catalog.")
	switch {
	case strings.HasSuffix(n, "_to_xml"), strings.HasSuffix(n, "_to_xmlschema"), strings.HasSuffix(n, "_to_xml_and_xmlschema"),
		strings.HasPrefix(n, "dblink"), strings.HasPrefix(n, "lo_"), n == "loread",
		strings.HasPrefix(n, "pg_read_"), strings.HasPrefix(n, "pg_ls_"), n == "pg_stat_file",
		n == "xpath" || n == "xpath_exists", strings.HasPrefix(n, "query_to_"), n == "pg_get_backend_memory_contexts",
		// Statistics functions read what the statistics relations show;
		// current_query() and the functions behind pg_prepared_statements
		// and pg_cursors show statements as the proxy rewrote them.
		strings.HasPrefix(n, "pg_stat_"), n == "current_query",
		n == "pg_prepared_statement", n == "pg_cursor":
		return true
	}
	return false
}

// catalogOnly walks the statement: every relation must be a system
// catalog (or a CTE of the statement), every function a pg_catalog
// function outside the deny list.
func catalogOnly(n *pg_query.Node) (bool, []string) {
	ctes := map[string]bool{}
	ok := true
	kind := KindOf(n)
	if kind != "Select" {
		return false, nil
	}
	var names []string
	var relations []*pg_query.RangeVar
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.CommonTableExpr:
			ctes[x.Ctename] = true
		case *pg_query.RangeVar:
			relations = append(relations, x)
		case *pg_query.FuncCall:
			var parts []string
			for _, p := range x.Funcname {
				parts = append(parts, p.GetString_().GetSval())
			}
			name := strings.Join(parts, ".")
			if len(parts) > 2 || len(parts) == 2 && parts[0] != "pg_catalog" || DeniedFunction(name) {
				ok = false
			}
		case *pg_query.RangeFunction, *pg_query.RangeTableFunc:
			// Set-returning functions in FROM are checked as FuncCalls.
		}
	})
	for _, r := range relations {
		switch {
		case SensitiveCatalog(r.Relname):
			ok = false
		case r.Schemaname == "pg_catalog" || r.Schemaname == "information_schema":
		case r.Schemaname == "" && ctes[r.Relname]:
			// The statement's own CTE.
		case r.Schemaname == "" && strings.HasPrefix(r.Relname, "pg_"):
			names = append(names, r.Relname)
		default:
			ok = false
		}
	}
	if !ok {
		names = nil
	}
	return ok, names
}

// Walk calls visit for m and every message below it, depth first.
func Walk(m protoreflect.Message, visit func(protoreflect.Message)) {
	visit(m)
	EachChild(m, func(c protoreflect.Message) bool {
		Walk(c, visit)
		return true
	})
}

// EachChild calls f for each message directly below m (message fields and
// the elements of message lists, in field order), until f returns false.
// It reports whether f never did.
func EachChild(m protoreflect.Message, f func(protoreflect.Message) bool) bool {
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = f(l.Get(i).Message())
			}
		default:
			ok = f(v.Message())
		}
		return ok
	})
	return ok
}

// computedSafe implements Statement.ComputedSafe.
func computedSafe(n *pg_query.Node) bool {
	switch KindOf(n) {
	case "Select", "Copy", "DeclareCursor", "Explain":
	case "Fetch", "Execute":
		// The rows come from a cursor or prepared statement defined
		// earlier: not provable from this text.
		return false
	default:
		// SET, SHOW, BEGIN…: no select list over tables.
		return true
	}
	safe := true
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.SelectStmt:
			if x.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED && x.Op != pg_query.SetOperation_SETOP_NONE {
				safe = false
			}
			for _, t := range x.TargetList {
				rt := t.GetResTarget()
				if rt == nil || rt.Val == nil || rt.Val.GetColumnRef() != nil {
					continue
				}
				if refersToData(rt.Val) {
					safe = false
				}
			}
		case *pg_query.RangeFunction:
			for _, f := range x.Functions {
				if refersToData(f) {
					safe = false
				}
			}
		}
	})
	return safe
}

// refersToData reports whether an expression reads a column or runs a
// subquery.
func refersToData(n *pg_query.Node) bool {
	found := false
	Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		switch m.Interface().(type) {
		case *pg_query.ColumnRef, *pg_query.SubLink:
			found = true
		}
	})
	return found
}

// OrderRevealing reports a function call whose result depends on the
// order in which the server reads rows (not only on their values): window
// functions that number rows or read neighbours, windows framed by ROWS or
// GROUPS, aggregates that concatenate their input in arrival order, and
// functions that return something new on every call (random(),
// clock_timestamp()) or keep state between calls (set_config(),
// pg_export_snapshot()), evaluated in arrival order.
// Over a table whose values a role does not see in clear, that order is
// the server's (physical, index, hash) and follows the clear values.
func OrderRevealing(f *pg_query.FuncCall) bool {
	name := ""
	if fn := f.GetFuncname(); len(fn) > 0 {
		name = strings.ToLower(fn[len(fn)-1].GetString_().GetSval())
	}
	switch name {
	case "random", "random_normal", "setseed", "clock_timestamp", "timeofday", "gen_random_uuid",
		// Session or transaction state that each call changes or that
		// other calls change: evaluated row by row, it records the order
		// (set_config appending each row's value to a setting,
		// pg_export_snapshot numbering its calls, sleeps timed against a
		// timeout).
		"set_config", "pg_export_snapshot", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
		"txid_current", "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned",
		"currval", "lastval", "pg_log_backend_memory_contexts", "pg_stat_clear_snapshot",
		"pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn",
		// How a value is stored (its size, compression, TOAST chunk)
		// differs between values that print alike: on a group's key it
		// shows which row the key was kept from.
		"pg_column_size", "pg_column_compression", "pg_column_toast_chunk_id":
		return true
	}
	if strings.HasSuffix(name, "send") {
		// A type's binary output (float8send, array_send, …) keeps bits
		// its text does not show: the sign and payload of a NaN, an
		// array's NULL flag.
		return true
	}
	if w := f.GetOver(); w != nil {
		switch name {
		case "row_number", "ntile", "lag", "lead", "first_value", "last_value", "nth_value":
			return true
		}
		return FramedByArrival(w)
	}
	switch name {
	case "string_agg", "array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg",
		"json_agg_strict", "jsonb_agg_strict", "json_object_agg_strict", "jsonb_object_agg_strict",
		"json_object_agg_unique", "jsonb_object_agg_unique", "json_object_agg_unique_strict", "jsonb_object_agg_unique_strict":
		return !orderedByArguments(f)
	}
	return false
}

// FramedByArrival reports a window framed by ROWS or GROUPS: which rows
// fall into a frame depends on the order of rows that tie.
func FramedByArrival(w *pg_query.WindowDef) bool {
	const frameRows, frameGroups = 0x4, 0x8 // FRAMEOPTION_ROWS, FRAMEOPTION_GROUPS
	return w.GetFrameOptions()&(frameRows|frameGroups) != 0
}

// orderedByArguments: the aggregate's ORDER BY names each of its
// non-constant arguments, so rows that tie on it carry equal values and
// their arrival order cannot show.
func orderedByArguments(f *pg_query.FuncCall) bool {
	for _, a := range f.GetArgs() {
		if a.GetAConst() != nil {
			continue
		}
		if !slices.ContainsFunc(f.GetAggOrder(), func(o *pg_query.Node) bool { return SameExpr(o.GetSortBy().GetNode(), a) }) {
			return false
		}
	}
	return len(f.GetArgs()) > 0
}

// SameExpr compares two expressions without their source locations.
func SameExpr(a, b *pg_query.Node) bool {
	if a == nil || b == nil {
		return false
	}
	strip := func(n *pg_query.Node) proto.Message {
		c := proto.Clone(n)
		Walk(c.ProtoReflect(), func(m protoreflect.Message) {
			if fd := m.Descriptor().Fields().ByName("location"); fd != nil && fd.Kind() == protoreflect.Int32Kind {
				m.Clear(fd)
			}
		})
		return c
	}
	return proto.Equal(strip(a), strip(b))
}

// ReservedPrefix starts the names of the statements and portals that
// pgpseudo's server-side check creates in a session.
const ReservedPrefix = "pgpseudo_check"

// ReservedName reports a statement, portal or cursor name of pgpseudo's
// (PostgreSQL folds unquoted names to lower case, and so does this).
func ReservedName(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), ReservedPrefix)
}
