package audit

// Shadow records how the candidate policy (policy_shadow) would have
// treated a statement, or a login, differently from the policy in force.
// Nothing in it was enforced: the client got what the enforced policy
// decided. It names columns and rules, never values.
type Shadow struct {
	Session Session `json:"session"`
	// ShadowRole is the role the candidate maps the user to, "" for none.
	ShadowRole string `json:"shadow_role"`
	// PolicyHash is the candidate's "sha256:<hex>".
	PolicyHash string `json:"policy_hash"`
	// Fingerprint and Kind describe the statement as in Statement records;
	// Kind is "login" for a difference found at login.
	Fingerprint string `json:"fingerprint,omitempty"`
	Kind        string `json:"kind"`
	// Differences lists what the candidate would have done otherwise.
	Differences []ShadowDifference `json:"differences"`
}

// Shadow difference kinds.
const (
	// ShadowRefuse: the candidate would refuse the statement.
	ShadowRefuse = "would_refuse"
	// ShadowAllow: the candidate would let a refused statement run.
	ShadowAllow = "would_allow"
	// ShadowWithhold: the candidate would withhold (block or null) a
	// column the enforced policy lets out in some form.
	ShadowWithhold = "would_withhold"
	// ShadowRewrite: the candidate would send a column in another form
	// (clear instead of a token, another transform or domain).
	ShadowRewrite = "would_rewrite"
	// ShadowRefuseLogin: the candidate matches no role for the user.
	ShadowRefuseLogin = "would_refuse_login"
	// ShadowRestrict: the candidate restricts a role that sees everything
	// now; its statements are not analysed, so no per-statement
	// differences are recorded for the session.
	ShadowRestrict = "would_restrict"
)

// ShadowKinds lists every difference kind.
func ShadowKinds() []string {
	return []string{ShadowRefuse, ShadowAllow, ShadowWithhold, ShadowRewrite, ShadowRefuseLogin, ShadowRestrict}
}

// ShadowDifference is one thing the candidate would have done otherwise.
type ShadowDifference struct {
	Kind string `json:"kind"`
	// Table and Column name the column, for column differences.
	Table  string `json:"table,omitempty"`
	Column string `json:"column,omitempty"`
	// Enforced and Candidate are the two decisions, for column
	// differences; Transformers the candidate's transform when it
	// rewrites.
	Enforced  Decision `json:"enforced,omitempty"`
	Candidate Decision `json:"candidate,omitempty"`
	// EnforcedTransform and CandidateTransform name the transforms of
	// tokenized or masked decisions ("email, domain email"), so a change
	// of transform or domain shows.
	EnforcedTransform  string `json:"enforced_transform,omitempty"`
	CandidateTransform string `json:"candidate_transform,omitempty"`
	// Rule is the rule behind the candidate's decision or refusal; for
	// would_allow, the enforced refusal the candidate drops.
	Rule string `json:"rule,omitempty"`
}

func (Shadow) recordType() Type   { return TypeShadow }
func (e Shadow) attach(r *Record) { r.Shadow = &e }

func (e Shadow) validate() error {
	if err := e.Session.validate(); err != nil {
		return err
	}
	if err := checkName("shadow_role", e.ShadowRole); err != nil {
		return err
	}
	if e.PolicyHash != "" && !hashRe.MatchString(e.PolicyHash) {
		return invalidf("policy_hash %q is not algorithm:hex", e.PolicyHash)
	}
	if err := checkCode("fingerprint", e.Fingerprint, true); err != nil {
		return err
	}
	if err := checkCode("kind", e.Kind, false); err != nil {
		return err
	}
	if len(e.Differences) == 0 || len(e.Differences) > maxList {
		return invalidf("a shadow record needs 1 to %d differences", maxList)
	}
	for _, d := range e.Differences {
		if err := d.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (d ShadowDifference) validate() error {
	known := false
	for _, k := range ShadowKinds() {
		known = known || d.Kind == k
	}
	if !known {
		return invalidf("differences[].kind %q is not a shadow difference kind", d.Kind)
	}
	if err := checkNames("differences[].table", d.Table, "differences[].column", d.Column, "differences[].rule", d.Rule,
		"differences[].enforced_transform", d.EnforcedTransform, "differences[].candidate_transform", d.CandidateTransform); err != nil {
		return err
	}
	for _, dec := range []Decision{d.Enforced, d.Candidate} {
		switch dec {
		case "", DecisionAllowed, DecisionTokenized, DecisionMasked, DecisionNulled, DecisionBlocked:
		default:
			return invalidf("differences[] decision %q is not allowed, tokenized, masked, nulled or blocked", dec)
		}
	}
	return nil
}
