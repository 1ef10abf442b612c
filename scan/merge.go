package scan

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/pgpseudo/pgpseudo/policy"
)

// Merge returns the policy file data with the proposal merged in:
// existing entries win and are never changed, tables and columns the file
// does not classify are added (none for a table with a "*" entry, which
// already covers them) with their confidence and reasons as comments, and
// the token domains they use are declared. The file's comments and order
// are kept. When a column of a foreign-key group is already classified
// with a domain, the columns added to the group take that domain, so
// joins keep working with the existing tokens.
func Merge(data []byte, r *Result) ([]byte, int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, 0, fmt.Errorf("merge: parse policy: %w", err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{mapping(false)}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, 0, fmt.Errorf("merge: the policy file is not a YAML mapping")
	}
	root := doc.Content[0]
	columns, err := section(root, "columns")
	if err != nil {
		return nil, 0, err
	}
	tables := map[policy.TableName]*yaml.Node{}
	for i := 0; i+1 < len(columns.Content); i += 2 {
		tn, err := policy.ParseTableName(columns.Content[i].Value)
		if err != nil {
			return nil, 0, fmt.Errorf("merge: columns: %w", err)
		}
		if columns.Content[i+1].Kind != yaml.MappingNode {
			return nil, 0, fmt.Errorf("merge: columns.%s is not a mapping", columns.Content[i].Value)
		}
		tables[tn] = columns.Content[i+1]
	}
	// An existing member's domain wins for its group.
	rename := map[string]string{}
	for _, p := range r.Proposals {
		if p.Domain == "" || rename[p.Domain] != "" {
			continue
		}
		if t := tables[p.Table]; t != nil {
			if spec := lookup(t, p.Column); spec != nil {
				if d := lookup(spec, "domain"); d != nil && d.Value != "" {
					rename[p.Domain] = d.Value
				}
			}
		}
	}
	added := 0
	used := map[string]bool{}
	for _, p := range r.Proposals {
		t := tables[p.Table]
		if t == nil {
			t = mapping(false)
			appendPair(columns, scalar(p.Table.String()), t)
			tables[p.Table] = t
		}
		if lookup(t, p.Column) != nil || lookup(t, "*") != nil {
			continue
		}
		domain := p.Domain
		if d, ok := rename[domain]; ok {
			domain = d
		}
		k := scalar(p.Column)
		k.HeadComment = p.comment()
		appendPair(t, k, columnSpec(p, domain))
		if domain != "" && p.Transform != "" {
			used[domain] = true
		}
		added++
	}
	if len(used) > 0 {
		domains, err := section(root, "token_domains")
		if err != nil {
			return nil, 0, err
		}
		first := true
		for _, d := range sortedKeys(used) {
			if lookup(domains, d) == nil {
				k := scalar(d)
				if first {
					k.HeadComment = "scan: proposed domains; add reversible: true for drill-down on tokens"
					first = false
				}
				appendPair(domains, k, mapping(true))
			}
		}
	}
	var out bytes.Buffer
	if err := encode(&out, &doc); err != nil {
		return nil, 0, err
	}
	return out.Bytes(), added, nil
}

// section returns root's mapping under key, adding it when missing or
// empty: token_domains before columns, columns before roles, so the file
// reads in the usual order.
func section(root *yaml.Node, key string) (*yaml.Node, error) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != key {
			continue
		}
		v := root.Content[i+1]
		switch {
		case v.Kind == yaml.MappingNode:
			return v, nil
		case v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || v.Value == ""):
			m := mapping(false)
			root.Content[i+1] = m
			return m, nil
		}
		return nil, fmt.Errorf("merge: %s is not a mapping", key)
	}
	m := mapping(false)
	before := []string{"roles"}
	if key == "token_domains" {
		before = []string{"columns", "roles"}
	}
	at := len(root.Content)
	for i := 0; i+1 < len(root.Content); i += 2 {
		if contains(before, root.Content[i].Value) {
			at = i
			break
		}
	}
	root.Content = append(root.Content[:at], append([]*yaml.Node{scalar(key), m}, root.Content[at:]...)...)
	return m, nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
