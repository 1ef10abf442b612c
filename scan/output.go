package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// Formats of WriteTo.
const (
	FormatYAML  = "yaml"
	FormatTable = "table"
	FormatJSON  = "json"
)

// Write writes the result in format: a policy YAML proposal (columns and
// token_domains in the policy file's format, confidence and reasons as
// comments), a table for people, or JSON.
func Write(w io.Writer, r *Result, format string) error {
	switch format {
	case FormatYAML, "":
		return writeYAML(w, r)
	case FormatTable:
		return writeTable(w, r)
	case FormatJSON:
		return writeJSON(w, r)
	}
	return fmt.Errorf("unknown format %q (yaml, table or json)", format)
}

func (r *Result) summary() string {
	tables := map[string]bool{}
	for _, p := range r.Proposals {
		tables[p.Table.String()] = true
	}
	return fmt.Sprintf("pgpseudo scan of database %q: %d columns proposed in %d of %d tables (%d sampled)",
		r.Database, len(r.Proposals), len(tables), r.Tables, r.Sampled)
}

// comment is a proposal's confidence and reasons, for YAML comments.
func (p Proposal) comment() string {
	return "scan: " + string(p.Confidence) + ": " + strings.Join(p.Reasons, "; ")
}

func writeYAML(w io.Writer, r *Result) error {
	root := mapping(false)
	root.HeadComment = r.summary() + ".\nA proposal, not a policy: review every entry before use (docs/scan.md)."
	for _, warn := range r.Warnings {
		root.HeadComment += "\nwarning: " + warn
	}
	domains := mapping(false)
	for _, d := range r.Domains() {
		appendPair(domains, scalar(d), mapping(true))
	}
	columns := mapping(false)
	var table *yaml.Node
	last := ""
	for _, p := range r.Proposals {
		if name := p.Table.String(); name != last || table == nil {
			table = mapping(false)
			appendPair(columns, scalar(name), table)
			last = name
		}
		k := scalar(p.Column)
		k.HeadComment = p.comment()
		appendPair(table, k, columnSpec(p, p.Domain))
	}
	if len(domains.Content) > 0 {
		appendPair(root, scalar("token_domains"), domains)
	}
	appendPair(root, scalar("columns"), columns)
	return encode(w, &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
}

// columnSpec is a proposal as a policy column entry, in flow style.
func columnSpec(p Proposal, domain string) *yaml.Node {
	n := mapping(true)
	appendPair(n, scalar("category"), scalar(p.Category))
	if p.Transform != "" {
		appendPair(n, scalar("transform"), scalar(p.Transform))
		if domain != "" {
			appendPair(n, scalar("domain"), scalar(domain))
		}
	}
	return n
}

func encode(w io.Writer, doc *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	return nil
}

func mapping(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func appendPair(m, k, v *yaml.Node) { m.Content = append(m.Content, k, v) }

func writeTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tCOLUMN\tTYPE\tCATEGORY\tTRANSFORM\tDOMAIN\tCONFIDENCE\tREASONS")
	for _, p := range r.Proposals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Table, p.Column, p.Type, p.Category,
			dash(p.Transform), dash(p.Domain), p.Confidence, strings.Join(p.Reasons, "; "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	_, err := fmt.Fprintln(w, r.summary())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jsonProposal is a proposal with its table spelt out.
type jsonProposal struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Proposal
}

func writeJSON(w io.Writer, r *Result) error {
	out := struct {
		Database     string         `json:"database"`
		Tables       int            `json:"tables"`
		Sampled      int            `json:"sampled_tables"`
		Columns      []jsonProposal `json:"columns"`
		TokenDomains []string       `json:"token_domains"`
		Warnings     []string       `json:"warnings,omitempty"`
	}{Database: r.Database, Tables: r.Tables, Sampled: r.Sampled, TokenDomains: r.Domains(), Warnings: r.Warnings, Columns: []jsonProposal{}}
	for _, p := range r.Proposals {
		out.Columns = append(out.Columns, jsonProposal{Schema: p.Table.Schema, Table: p.Table.Table, Proposal: p})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
