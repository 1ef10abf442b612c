// Package plancheck is pgpseudo's server-resolved check of a restricted
// role's statement: the statement's plan, as the server itself resolved it
// (EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) in the session, generic for
// statements with parameters), is checked against the policy.
//
// The static analysis (policy/analyze) reads the statement with
// pgpseudo's own parser and resolves names with the catalog: it can differ
// from the server on scoping, search_path, grammar or lexing. The plan
// cannot: every relation in it is named by the server with its schema
// (scan nodes), every column reference is printed against the scan that
// produces it, every expression the executor evaluates is printed in the
// node that evaluates it (outputs, filters, join and index conditions,
// sort, group and hash keys, subplans, init plans, CTEs, function calls).
// A statement runs only when both lines allow it; where they disagree the
// statement is refused and the disagreement logged.
//
// Where the plan leaves something out, the check assumes the worst:
//   - column aliases (FROM t AS x(a, b)) rename columns in the printed
//     plan, so a relation the statement or a view gives column aliases
//     counts as "any of its columns" wherever it is referenced;
//   - a subquery's or CTE's columns are referenced by name; names are
//     taken from the statement only where they are certain (explicit AS,
//     bare column references, alias lists), otherwise a reference counts
//     as every column the subquery outputs;
//   - above an Append (UNION ALL, partitions) the plan prints the first
//     member's expression for every member;
//   - VALUES lists, window definitions and (before PostgreSQL 17) the
//     comparison of IN/ANY/ALL subplans are not printed: they count as
//     using every protected column within reach.
//
// The result also says, for every output column of the statement, which
// protected columns it carries, so the response side can withhold a
// computed column the plan cannot prove clean (docs/security.md).
package plancheck
