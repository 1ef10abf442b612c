package screen

import (
	"slices"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Ordering decides which statements of an analysed query string come back
// in the proxy's digest order: rows of a table whose values the role does
// not see in clear, whatever plan the server picks (its physical order, an
// index's, a merge join's follow the clear values); the client's own
// ORDER BY stays first. outs[i] describes statement i's outputs for the
// wrapper (nil: hash the whole row), ties[i] the queries inside it whose
// ties the digest breaks. refuse says why a statement that needs the
// digest cannot get it ("" when all can).
func Ordering(res *analyze.Result, pol *policy.Policy, role *policy.Role) (digest []bool, outs []*sqlinfo.Outputs, ties [][]sqlinfo.Tie, refuse string) {
	n := len(res.Statements)
	digest, outs, ties = make([]bool, n), make([]*sqlinfo.Outputs, n), make([][]sqlinfo.Tie, n)
	for i, info := range res.Statements {
		if !ReturnsRows(info.Kind) {
			// EXPLAIN, SHOW, SET…: no rows of tables to order; EXPLAIN
			// would print the digest (and its key) in its plan.
			continue
		}
		ties[i] = info.Ties
		if !info.DigestOrder && !protectsAny(pol, role, info.Relations) {
			continue
		}
		if o := info.DigestOutputs(); o != nil {
			if !info.DigestOrder && !slices.Contains(o.Hash, true) && len(o.RowsOf) == 0 {
				continue // every column withheld: the rows look all alike
			}
			digest[i], outs[i] = true, o
			continue
		}
		// Output names not known: hash by name and keep SELECT *, which
		// needs the client's ORDER BY to name output columns.
		names, ok := info.DigestColumns()
		if info.DigestOrder || ok && i < len(res.Tree.GetStmts()) && sqlinfo.KeepsOrder(res.Tree.GetStmts()[i], res.Tree.GetVersion()) {
			digest[i] = true
			if names != nil {
				outs[i] = &sqlinfo.Outputs{Names: names, ByName: true}
			}
			continue
		}
		// Without the digest its rows would come back in the server's
		// order; with it, in another order than the client asked for.
		return nil, nil, nil, "pgpseudo cannot give the statement's rows the digest order that hides the order of protected values (the names of its output columns are not known); role " +
			role.Name + " may not run it (rule: results over tables a restricted role does not see in clear come back in the proxy's digest order; name the output columns with AS)"
	}
	return digest, outs, ties, ""
}

// ReturnsRows reports statement kinds whose rows the digest ordering
// wraps.
func ReturnsRows(kind string) bool {
	switch kind {
	case "Select", "DeclareCursor", "Copy", "Prepare":
		return true
	}
	return false
}

// protectsAny reports whether role sees any of rels other than in clear.
func protectsAny(pol *policy.Policy, role *policy.Role, rels []policy.TableName) bool {
	for _, t := range rels {
		if pol.Protects(role, t) {
			return true
		}
	}
	return false
}
