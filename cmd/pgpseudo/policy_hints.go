package main

import (
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/scan"
)

// severityWarning marks an unclassified column that `pgpseudo scan` would
// classify by its name alone: likely personal data the policy misses. It
// does not fail the check.
const severityWarning policy.Severity = "warning"

// withScanHint turns the finding for an unclassified column into a warning
// when scan's name dictionaries (no values read) classify the column or
// its table, e.g. "public.x.email: unclassified, scan would classify as
// contact (name matches e-mail (email))".
func withScanHint(pol *policy.Policy, f policy.Finding) policy.Finding {
	if f.Severity != policy.SeverityInfo || f.Column == "" || pol.Column(f.Table, f.Column) != nil {
		return f
	}
	m, ok := scan.ClassifyName(f.Table, f.Column)
	if !ok {
		// A column of a table named for special data, unless its name
		// says it is a key (scan makes keys of those, joined by their
		// foreign keys, which this check does not read).
		toks := scan.Tokens(f.Column)
		if len(toks) > 0 && toks[len(toks)-1] == "id" {
			return f
		}
		if m, ok = scan.SpecialTable(f.Table); !ok {
			return f
		}
	}
	f.Severity = severityWarning
	f.Message = "unclassified, scan would classify as " + m.Kind.Category() + " (" + m.Rule + ")"
	return f
}
