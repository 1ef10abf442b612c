package audit

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report answers, per role and user, which classified columns they
// received in clear, which pseudonymised (tokenized or masked), which were
// withheld (nulled or blocked), every refused statement, and every
// detokenization, within [Since, Until).
type Report struct {
	Since    time.Time       `json:"since"`
	Until    time.Time       `json:"until"`
	Subjects []*Subject      `json:"subjects"`
	Detokens []DetokenizeUse `json:"detokenizations"`
	// Tables and Categories regroup the subjects' columns: per table and
	// per classification, who received which column and how.
	Tables     []*Group `json:"tables"`
	Categories []*Group `json:"categories"`

	index map[[2]string]*Subject
}

// Subject is one (role, user) pair.
type Subject struct {
	Role          string       `json:"role"`
	User          string       `json:"user"`
	Statements    uint64       `json:"statements"`
	Clear         []*ColumnUse `json:"clear"`
	Pseudonymised []*ColumnUse `json:"pseudonymised"`
	Withheld      []*ColumnUse `json:"withheld"`
	Refusals      []RefusalUse `json:"refusals"`
	AuthFailures  uint64       `json:"auth_failures"`
	// Unanalysed counts statements of a role that sees everything: what
	// they read is not known, so they may have received any column of
	// any table in clear.
	Unanalysed uint64 `json:"unanalysed"`
	cols       map[[2]string]*ColumnUse
}

// Group is a table's or a classification's readers.
type Group struct {
	Name    string    `json:"name"`
	Readers []Reading `json:"readers"`
}

// Reading is one subject's use of one column.
type Reading struct {
	Role       string   `json:"role"`
	User       string   `json:"user"`
	Column     string   `json:"column"`
	Decision   Decision `json:"decision"`
	Statements uint64   `json:"statements"`
	Rows       uint64   `json:"rows"`
}

// ColumnUse counts statements and rows in which a column left with one
// decision.
type ColumnUse struct {
	// Column is "schema.table.column"; Class its classification.
	Column     string    `json:"column"`
	Table      string    `json:"-"`
	Class      string    `json:"class"`
	Decision   Decision  `json:"decision"`
	Statements uint64    `json:"statements"`
	Rows       uint64    `json:"rows"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
}

// RefusalUse is one refused statement.
type RefusalUse struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Fingerprint string    `json:"fingerprint"`
	Rule        string    `json:"rule"`
	Table       string    `json:"table,omitempty"`
	Column      string    `json:"column,omitempty"`
	SQLState    string    `json:"sqlstate"`
}

// DetokenizeUse is one detokenization.
type DetokenizeUse struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Domain  string    `json:"domain"`
	Tokens  uint64    `json:"tokens"`
	Outcome Outcome   `json:"outcome"`
}

// NewReport starts an empty report for [since, until) (zero: unbounded).
func NewReport(since, until time.Time) *Report {
	return &Report{Since: since, Until: until, Subjects: []*Subject{}, Detokens: []DetokenizeUse{}, index: map[[2]string]*Subject{}}
}

func (rp *Report) subject(role, user string) *Subject {
	k := [2]string{role, user}
	s := rp.index[k]
	if s == nil {
		s = &Subject{Role: role, User: user, Clear: []*ColumnUse{}, Pseudonymised: []*ColumnUse{},
			Withheld: []*ColumnUse{}, Refusals: []RefusalUse{}, cols: map[[2]string]*ColumnUse{}}
		rp.index[k] = s
		rp.Subjects = append(rp.Subjects, s)
	}
	return s
}

// Add accounts for r if it is in the report's time window.
func (rp *Report) Add(r *Record) {
	if f := (Filter{Since: rp.Since, Until: rp.Until}); !f.Match(r) {
		return
	}
	switch {
	case r.Statement != nil:
		st := r.Statement
		s := rp.subject(st.Session.Role, st.Session.User)
		s.Statements++
		if st.Unanalysed && st.Outcome != OutcomeRefused {
			s.Unanalysed++
		}
		if st.Outcome == OutcomeRefused {
			ru := RefusalUse{Seq: r.Seq, Time: r.Time, Fingerprint: st.Fingerprint, SQLState: st.SQLState}
			if st.Refusal != nil {
				ru.Rule, ru.Table, ru.Column = st.Refusal.Rule, st.Refusal.Table, st.Refusal.Column
			}
			s.Refusals = append(s.Refusals, ru)
			return
		}
		for _, c := range st.Columns {
			if c.Referred {
				continue // referred to, not received
			}
			name := c.Table + "." + c.Column
			k := [2]string{name, string(c.Decision)}
			u := s.cols[k]
			if u == nil {
				u = &ColumnUse{Column: name, Table: c.Table, Class: c.Class, Decision: c.Decision, First: r.Time}
				s.cols[k] = u
				switch c.Decision {
				case DecisionAllowed:
					s.Clear = append(s.Clear, u)
				case DecisionTokenized, DecisionMasked:
					s.Pseudonymised = append(s.Pseudonymised, u)
				default:
					s.Withheld = append(s.Withheld, u)
				}
			}
			u.Statements++
			u.Rows += st.Rows
			u.Last = r.Time
		}
	case r.AuthFailure != nil:
		rp.subject("", r.AuthFailure.User).AuthFailures++
	case r.Detokenize != nil:
		d := r.Detokenize
		rp.Detokens = append(rp.Detokens, DetokenizeUse{Seq: r.Seq, Time: r.Time, Actor: d.Actor, Domain: d.Domain, Tokens: d.Tokens, Outcome: d.Outcome})
	}
}

// sort orders subjects by role and user, columns by name.
func (rp *Report) sort() {
	slices.SortFunc(rp.Subjects, func(a, b *Subject) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.User, b.User))
	})
	byCol := func(a, b *ColumnUse) int {
		return cmp.Or(cmp.Compare(a.Column, b.Column), cmp.Compare(a.Decision, b.Decision))
	}
	for _, s := range rp.Subjects {
		slices.SortFunc(s.Clear, byCol)
		slices.SortFunc(s.Pseudonymised, byCol)
		slices.SortFunc(s.Withheld, byCol)
	}
	rp.Tables = rp.regroup(func(u *ColumnUse) string { return u.Table })
	rp.Categories = rp.regroup(func(u *ColumnUse) string { return u.Class })
}

// regroup lists every subject's column uses under the group key gives,
// groups and readers in order.
func (rp *Report) regroup(key func(*ColumnUse) string) []*Group {
	byName := map[string]*Group{}
	for _, s := range rp.Subjects {
		for _, us := range [][]*ColumnUse{s.Clear, s.Pseudonymised, s.Withheld} {
			for _, u := range us {
				g := byName[key(u)]
				if g == nil {
					g = &Group{Name: key(u), Readers: []Reading{}}
					byName[key(u)] = g
				}
				g.Readers = append(g.Readers, Reading{Role: s.Role, User: s.User, Column: u.Column, Decision: u.Decision, Statements: u.Statements, Rows: u.Rows})
			}
		}
	}
	out := make([]*Group, 0, len(byName))
	for _, g := range byName {
		slices.SortFunc(g.Readers, func(a, b Reading) int {
			return cmp.Or(cmp.Compare(a.Column, b.Column), cmp.Compare(a.Role, b.Role), cmp.Compare(a.User, b.User), cmp.Compare(a.Decision, b.Decision))
		})
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *Group) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// WriteTo writes the report in format table, json or csv.
func (rp *Report) WriteTo(w io.Writer, format string) error {
	rp.sort()
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rp)
	case FormatCSV:
		return rp.writeCSV(w)
	case FormatTable:
		return rp.writeText(w)
	}
	return fmt.Errorf("unknown format %q (want table, json or csv)", format)
}

func (rp *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"role", "user", "category", "column", "decision", "statements", "rows", "first", "last", "seq", "rule", "fingerprint", "class"})
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	for _, s := range rp.Subjects {
		for _, g := range []struct {
			name string
			us   []*ColumnUse
		}{{"clear", s.Clear}, {"pseudonymised", s.Pseudonymised}, {"withheld", s.Withheld}} {
			for _, u := range g.us {
				cw.Write([]string{s.Role, s.User, g.name, u.Column, string(u.Decision), strconv.FormatUint(u.Statements, 10),
					strconv.FormatUint(u.Rows, 10), ts(u.First), ts(u.Last), "", "", "", u.Class})
			}
		}
		if s.Unanalysed > 0 {
			cw.Write([]string{s.Role, s.User, "unanalysed", "*", "", strconv.FormatUint(s.Unanalysed, 10), "", "", "", "", "", "", ""})
		}
		for _, f := range s.Refusals {
			col := ""
			if f.Column != "" {
				col = f.Table + "." + f.Column
			}
			cw.Write([]string{s.Role, s.User, "refused", col, "", "1", "0", ts(f.Time), ts(f.Time),
				strconv.FormatUint(f.Seq, 10), f.Rule, f.Fingerprint, ""})
		}
	}
	for _, d := range rp.Detokens {
		cw.Write([]string{"", d.Actor, "detokenize", d.Domain, string(d.Outcome), "1", strconv.FormatUint(d.Tokens, 10),
			ts(d.Time), ts(d.Time), strconv.FormatUint(d.Seq, 10), "", "", ""})
	}
	cw.Flush()
	return cw.Error()
}

func (rp *Report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	window := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "Access report %s … %s\n", window(rp.Since), window(rp.Until))
	for _, s := range rp.Subjects {
		fmt.Fprintf(tw, "\nrole %s, user %s: %d statements, %d refused, %d authentication failures\n",
			dash(s.Role), dash(s.User), s.Statements, len(s.Refusals), s.AuthFailures)
		if s.Unanalysed > 0 {
			fmt.Fprintf(tw, "  not analysed: %d statements (the role sees everything: any column of any table may have been received in clear)\n", s.Unanalysed)
		}
		for _, g := range []struct {
			name string
			us   []*ColumnUse
		}{{"in clear", s.Clear}, {"pseudonymised", s.Pseudonymised}, {"withheld", s.Withheld}} {
			if len(g.us) == 0 {
				continue
			}
			fmt.Fprintf(tw, "  %s:\n", g.name)
			for _, u := range g.us {
				fmt.Fprintf(tw, "    %s\t%s\t%d statements\t%d rows\t%s … %s\n", dash(u.Column), u.Decision, u.Statements, u.Rows,
					u.First.Format(time.RFC3339), u.Last.Format(time.RFC3339))
			}
		}
		if len(s.Refusals) > 0 {
			fmt.Fprintf(tw, "  refused:\n")
			for _, f := range s.Refusals {
				fmt.Fprintf(tw, "    #%d\t%s\t%s\t%s\t%s\n", f.Seq, f.Time.Format(time.RFC3339), f.Rule,
					dash(joinDot(f.Table, f.Column)), tabless(clip(f.Fingerprint, 80)))
			}
		}
	}
	for _, v := range []struct {
		title  string
		groups []*Group
	}{{"by table", rp.Tables}, {"by category", rp.Categories}} {
		if len(v.groups) == 0 && !slices.ContainsFunc(rp.Subjects, func(s *Subject) bool { return s.Unanalysed > 0 }) {
			continue
		}
		fmt.Fprintf(tw, "\n%s:\n", v.title)
		for _, s := range rp.Subjects {
			if s.Unanalysed > 0 {
				fmt.Fprintf(tw, "  any:\trole %s, user %s\t%d statements not analysed\n", dash(s.Role), dash(s.User), s.Unanalysed)
			}
		}
		for _, g := range v.groups {
			fmt.Fprintf(tw, "  %s:\n", dash(g.Name))
			for _, r := range g.Readers {
				fmt.Fprintf(tw, "    %s\trole %s, user %s\t%s\t%d statements\t%d rows\n", dash(r.Column), dash(r.Role), dash(r.User), r.Decision, r.Statements, r.Rows)
			}
		}
	}
	if len(rp.Detokens) > 0 {
		fmt.Fprintf(tw, "\ndetokenizations:\n")
		for _, d := range rp.Detokens {
			fmt.Fprintf(tw, "  #%d\t%s\t%s\tdomain %s\t%d tokens\t%s\n", d.Seq, d.Time.Format(time.RFC3339), dash(d.Actor), dash(d.Domain), d.Tokens, d.Outcome)
		}
	}
	return tw.Flush()
}

func joinDot(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "." + b
}
