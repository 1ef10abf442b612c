package plancheck

import (
	"encoding/json"
	"fmt"
	"sort"
)

// node is one plan node of EXPLAIN (VERBOSE, FORMAT JSON).
type node struct {
	typ                                       string
	parentRel                                 string // Outer, Inner, Subquery, InitPlan, SubPlan, Member
	subplan                                   string // "SubPlan 1", "InitPlan 1 (returns $0)", "CTE x"
	relName, schema, alias, cteName, strategy string
	index                                     string // an index scan's index
	sampling                                  string // a sample scan's method
	// joinType and innerUnique: a join's type (Inner, Semi, …) and
	// whether it stops at the first match of each outer row.
	joinType    string
	innerUnique bool
	// cutChecked: how far a CTE's plan was checked as cut short.
	cutChecked cut
	// sets is the number of grouping sets of an Aggregate with GROUPING
	// SETS, ROLLUP or CUBE, empty ones included (0 without).
	sets   int
	output []string
	// props are the node's expression-bearing properties, in key order.
	props  []prop
	kids   []*node
	parent *node
	// outVals are the values of output (computed once).
	outVals []val
	done    bool
	busy    bool
}

// prop is one property whose values are expressions.
type prop struct {
	key   string
	exprs []string
}

// notExpressions are the properties of plan nodes that are names, flags
// or counts. Every other string property is read as an expression, so a
// property a newer server adds is checked (or, if it cannot be read,
// refuses the statement) rather than ignored.
var notExpressions = map[string]bool{
	"Node Type": true, "Parent Relationship": true, "Subplan Name": true, "Parallel Aware": true,
	"Async Capable": true, "Join Type": true, "Inner Unique": true, "Relation Name": true, "Schema": true,
	"Alias": true, "Index Name": true, "Scan Direction": true, "CTE Name": true, "Tuplestore Name": true,
	"Function Name": true, "Strategy": true, "Partial Mode": true, "Command": true, "Operation": true,
	"Custom Plan Provider": true, "Workers Planned": true, "Single Copy": true, "Subplans Removed": true,
	"Cache Mode": true, "Disabled": true, "Disabled Nodes": true, "Sampling Method": true,
	"Table Function Name": true, "Plans": true, "Output": true,
}

// parsePlan decodes EXPLAIN's JSON: an array with one object whose "Plan"
// is the root.
func parsePlan(data []byte) (*node, error) {
	var top []map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if len(top) != 1 {
		return nil, fmt.Errorf("plan: %d top-level entries", len(top))
	}
	root, ok := top[0]["Plan"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("plan: no Plan")
	}
	return buildNode(root, nil)
}

func buildNode(m map[string]any, parent *node) (*node, error) {
	n := &node{parent: parent}
	str := func(k string) string { s, _ := m[k].(string); return s }
	n.typ, n.parentRel, n.subplan = str("Node Type"), str("Parent Relationship"), str("Subplan Name")
	n.relName, n.schema, n.alias, n.cteName, n.strategy = str("Relation Name"), str("Schema"), str("Alias"), str("CTE Name"), str("Strategy")
	n.index, n.sampling, n.joinType = str("Index Name"), str("Sampling Method"), str("Join Type")
	n.innerUnique, _ = m["Inner Unique"].(bool)
	if n.typ == "" {
		return nil, fmt.Errorf("plan: a node without a type")
	}
	if out, ok := m["Output"]; ok {
		list, err := strings1(out)
		if err != nil {
			return nil, fmt.Errorf("plan: %s Output: %w", n.typ, err)
		}
		n.output = list
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if notExpressions[k] {
			continue
		}
		switch v := m[k].(type) {
		case bool, float64, nil:
		default:
			if k == "Grouping Sets" {
				// One Group Key per set: a key and its companion must be
				// in the same one.
				sets, count := groupingSets(v)
				for _, set := range sets {
					n.props = append(n.props, prop{key: "Group Key", exprs: set})
				}
				n.sets = count
				continue
			}
			var exprs []string
			collectStrings(v, &exprs)
			if len(exprs) > 0 {
				n.props = append(n.props, prop{key: k, exprs: exprs})
			}
		}
	}
	if kids, ok := m["Plans"].([]any); ok {
		for _, k := range kids {
			km, ok := k.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("plan: a child of %s is not a node", n.typ)
			}
			kn, err := buildNode(km, n)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kn)
		}
	}
	return n, nil
}

// groupingSets reads the sets of a Grouping Sets property: a list of
// objects whose "Group Keys" and "Hash Keys" are lists of key lists. What
// does not have that form is read as one set of all its strings.
//
// count is the number of sets, empty ones included: each gives its own
// rows.
func groupingSets(v any) (sets [][]string, count int) {
	rest := func(x any) {
		var all []string
		collectStrings(x, &all)
		count++
		if len(all) > 0 {
			sets = append(sets, all)
		}
	}
	list, ok := v.([]any)
	if !ok {
		rest(v)
		return sets, count
	}
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			rest(el)
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kl, ok := m[k].([]any)
			if !ok || k != "Group Keys" && k != "Hash Keys" {
				rest(m[k])
				continue
			}
			for _, set := range kl {
				if ss, err := strings1(set); err == nil {
					count++
					if len(ss) > 0 {
						sets = append(sets, ss)
					}
				} else {
					rest(set)
				}
			}
		}
	}
	return sets, count
}

// strings1 reads a list of strings.
func strings1(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("not a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// collectStrings gathers the strings of a value, through nested lists and
// objects (Grouping Sets hold lists of key lists; names of their keys are
// not expressions).
func collectStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			collectStrings(e, out)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			collectStrings(x[k], out)
		}
	}
}

// walk visits every node of the plan.
func (n *node) walk(f func(*node)) {
	f(n)
	for _, k := range n.kids {
		k.walk(f)
	}
}

// isScan reports nodes that produce rows of a range table entry, named by
// their Alias.
func (n *node) isScan() bool { return n.alias != "" }

// appendLike are nodes whose output is the union of their members: above
// them the plan prints the first member's expressions for all of them.
func (n *node) appendLike() bool {
	switch n.typ {
	case "Append", "Merge Append", "Recursive Union", "SetOp", "HashSetOp":
		return true
	}
	return false
}
