package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

// fileSchema is the YAML shape of a policy file (docs/policy.md).
type fileSchema struct {
	Version      int                              `yaml:"version"`
	Categories   []string                         `yaml:"categories"`
	TokenDomains map[string]DomainSpec            `yaml:"token_domains"`
	Columns      map[string]map[string]ColumnSpec `yaml:"columns"`
	Roles        map[string]RoleSpec              `yaml:"roles"`
	Functions    FunctionsSpec                    `yaml:"functions"`
}

// DomainSpec configures a token domain.
type DomainSpec struct {
	Reversible bool   `yaml:"reversible"`
	KeyVersion uint32 `yaml:"key_version"`
}

// ColumnSpec classifies one column.
type ColumnSpec struct {
	Category   string    `yaml:"category"`
	Transform  string    `yaml:"transform"`
	Domain     string    `yaml:"domain"`
	KeepDomain bool      `yaml:"keep_domain"`
	KeepPrefix int       `yaml:"keep_prefix"`
	Days       int       `yaml:"days"`
	KeepTime   bool      `yaml:"keep_time"`
	Digits     int       `yaml:"digits"`
	Bucket     string    `yaml:"bucket"`
	Constant   string    `yaml:"constant"`
	Mask       *MaskSpec `yaml:"mask"`
	// Locale, Unique and Style are the realistic fakes' options
	// (docs/policy.md); crypto refuses them on kinds they do not apply to.
	Locale string `yaml:"locale"`
	Unique bool   `yaml:"unique"`
	Style  string `yaml:"style"`
}

// MaskSpec configures the mask action for a column.
type MaskSpec struct {
	KeepFirst int `yaml:"keep_first"`
	KeepLast  int `yaml:"keep_last"`
}

// RoleSpec is one role in the file.
type RoleSpec struct {
	Match        MatchSpec         `yaml:"match"`
	Actions      map[string]string `yaml:"actions"`
	Unclassified string            `yaml:"unclassified"`
	LegalBasis   string            `yaml:"legal_basis"`
	// Subset is the rows of each table the role's dumps keep (subset.go).
	Subset map[string]string `yaml:"subset"`
}

// MatchSpec says which identities a role applies to.
type MatchSpec struct {
	Users    []string `yaml:"users"`
	MemberOf []string `yaml:"member_of"`
}

// FunctionsSpec lists functions restricted roles may call.
type FunctionsSpec struct {
	Allow []string `yaml:"allow"`
}

// implicitDomain is the token domain of a column the policy gives none:
// reserved (declared names have no ':') and length-prefixed, so neither a
// declared domain nor another column's name can produce it
// ("s.t".x and s."t.x" differ).
func implicitDomain(t TableName, column string) string {
	return fmt.Sprintf("column:%d:%s%d:%s%d:%s", len(t.Schema), t.Schema, len(t.Table), t.Table, len(column), column)
}

// parseImplicitDomain inverts implicitDomain.
func parseImplicitDomain(d string) (TableName, string, bool) {
	rest, ok := strings.CutPrefix(d, "column:")
	if !ok {
		return TableName{}, "", false
	}
	var parts [3]string
	for i := range parts {
		n, after, ok := strings.Cut(rest, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size < 0 || size > len(after) || strconv.Itoa(size) != n {
			return TableName{}, "", false
		}
		parts[i], rest = after[:size], after[size:]
	}
	if rest != "" {
		return TableName{}, "", false
	}
	return TableName{parts[0], parts[1]}, parts[2], true
}

// defaultMaskLast hides all but the last 4 characters.
const defaultMaskLast = 4

// maxPolicyBytes bounds a policy file.
const maxPolicyBytes = 64 << 20

// Load reads and validates a policy file. It must be a regular file (a
// symbolic link to one, as Kubernetes mounts a ConfigMap, is fine): a FIFO
// or a device in its place would block the reload, and the signals that
// wait for it, for good.
func Load(path string) (*Policy, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read policy: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if len(data) > maxPolicyBytes {
		return nil, fmt.Errorf("read policy: %s is larger than %d MiB", path, maxPolicyBytes>>20)
	}
	return Parse(path, data)
}

// Parse validates policy data; name is used in error messages.
func Parse(name string, data []byte) (*Policy, error) {
	var f fileSchema
	pos, err := yamlconf.Decode(name, data, &f)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	p := &Policy{Hash: hex.EncodeToString(sum[:]), domains: f.TokenDomains, tables: map[TableName]*tablePolicy{}}
	if f.Version != 1 {
		return nil, pos.Errorf("version", "must be 1, got %d", f.Version)
	}
	categories := slices.Clone(builtinCategories)
	for i, c := range f.Categories {
		if c == "" || slices.Contains(categories, c) {
			return nil, pos.Errorf(fmt.Sprintf("categories[%d]", i), "category %q is empty or already defined", c)
		}
		categories = append(categories, c)
	}
	for name := range f.TokenDomains {
		if !crypto.ValidDomainName(name) {
			return nil, pos.Errorf("token_domains", "token domain name %q must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit and not with \"x-\"", name)
		}
	}
	if err := p.loadColumns(f, pos, categories); err != nil {
		return nil, err
	}
	if err := p.loadRoles(f, pos, categories); err != nil {
		return nil, err
	}
	p.FunctionsAllowed = f.Functions.Allow
	return p, nil
}

func (p *Policy) loadColumns(f fileSchema, pos *yamlconf.Positions, categories []string) error {
	for tname, cols := range f.Columns {
		tpath := "columns." + tname
		tn, err := ParseTableName(tname)
		if err != nil {
			return pos.Errorf(tpath, "%v", err)
		}
		if _, dup := p.tables[tn]; dup {
			return pos.Errorf(tpath, "table %s is listed twice", tn)
		}
		tp := &tablePolicy{columns: map[string]*Column{}}
		p.tables[tn] = tp
		for cname, cs := range cols {
			cpath := tpath + "." + cname
			if cname == "" {
				return pos.Errorf(cpath, "empty column name")
			}
			if !slices.Contains(categories, cs.Category) {
				if cs.Category == "" {
					return pos.Errorf(cpath, "category is required")
				}
				return pos.Errorf(cpath+".category", "unknown category %q (known: %s)", cs.Category, strings.Join(categories, ", "))
			}
			col := &Column{Table: tn, Name: cname, Category: cs.Category, line: pos.Line(cpath)}
			if cs.Transform != "" {
				kind := crypto.Kind(cs.Transform)
				if !slices.Contains(crypto.Kinds(), kind) {
					return pos.Errorf(cpath+".transform", "unknown transform %q (known: %s)", cs.Transform, kindList())
				}
				domain := cs.Domain
				var ds DomainSpec
				if domain != "" {
					var ok bool
					if ds, ok = f.TokenDomains[domain]; !ok {
						return pos.Errorf(cpath+".domain", "token domain %q is not declared under token_domains", domain)
					}
				} else {
					if kind == crypto.KindShift {
						return pos.Errorf(cpath+".domain", "shift needs a declared token domain shared by the person's date columns: shifts of one date made with different keys can be intersected to narrow it down")
					}
					// Without a domain a column is its own domain: its tokens
					// cannot be linked to any other column's. Each column a
					// wildcard covers gets its own (see Column).
					domain = implicitDomain(tn, cname)
					col.implicitDomain = true
				}
				col.Spec = crypto.Spec{
					Kind: kind, Domain: domain, Reversible: ds.Reversible, KeyVersion: ds.KeyVersion,
					KeepDomain: cs.KeepDomain, KeepPrefix: cs.KeepPrefix, Days: cs.Days, KeepTime: cs.KeepTime,
					Digits: cs.Digits, Bucket: cs.Bucket, Constant: cs.Constant,
					Locale: cs.Locale, Unique: cs.Unique, Style: cs.Style,
				}
				if err := crypto.ValidateSpec(col.Spec); err != nil {
					return pos.Errorf(cpath, "%v", err)
				}
			} else if cs.Domain != "" || cs.KeepPrefix != 0 || cs.KeepDomain || cs.Days != 0 || cs.KeepTime || cs.Digits != 0 || cs.Bucket != "" || cs.Constant != "" ||
				cs.Locale != "" || cs.Unique || cs.Style != "" {
				return pos.Errorf(cpath, "transform options given without a transform")
			}
			m := MaskSpec{KeepLast: defaultMaskLast}
			if cs.Mask != nil {
				m = *cs.Mask
			}
			col.MaskSpec = crypto.Spec{Kind: crypto.KindMask, KeepFirst: m.KeepFirst, KeepLast: m.KeepLast}
			if err := crypto.ValidateSpec(col.MaskSpec); err != nil {
				return pos.Errorf(cpath+".mask", "%v", err)
			}
			if cname == "*" {
				tp.wildcard = col
			} else {
				tp.columns[cname] = col
			}
		}
	}
	return nil
}

func (p *Policy) loadRoles(f fileSchema, pos *yamlconf.Positions, categories []string) error {
	if len(f.Roles) == 0 {
		return pos.Errorf("roles", "at least one role is required")
	}
	names := make([]string, 0, len(f.Roles))
	for n := range f.Roles {
		names = append(names, n)
	}
	// "The first role in file order": YAML maps have no order, lines do.
	sort.Slice(names, func(i, j int) bool { return pos.Line("roles."+names[i]) < pos.Line("roles."+names[j]) })
	for _, name := range names {
		rs := f.Roles[name]
		rpath := "roles." + name
		r := &Role{Name: name, Users: rs.Match.Users, MemberOf: rs.Match.MemberOf, Actions: map[string]Action{}, LegalBasis: strings.TrimSpace(rs.LegalBasis)}
		if len(r.Users) == 0 && len(r.MemberOf) == 0 && name != "default" {
			return pos.Errorf(rpath+".match", "role %q matches nobody: give match.users or match.member_of", name)
		}
		for i, g := range r.Users {
			if !validGlob(g) {
				return pos.Errorf(fmt.Sprintf("%s.match.users[%d]", rpath, i), "invalid pattern %q", g)
			}
		}
		for i, m := range r.MemberOf {
			if m == "pg_database_owner" {
				// Its one member is whoever owns the database a session
				// connects to: no grant records it, and it differs per
				// database, so member_of cannot follow it.
				return pos.Errorf(fmt.Sprintf("%s.match.member_of[%d]", rpath, i), "pg_database_owner has no granted members (its member is each database's owner); name the owners in match.users")
			}
		}
		r.categories = categories
		if err := r.loadSubset(rs.Subset, rpath, pos); err != nil {
			return err
		}
		for cat, a := range rs.Actions {
			apath := rpath + ".actions." + cat
			if cat != "*" && !slices.Contains(categories, cat) {
				return pos.Errorf(apath, "unknown category %q (known: %s)", cat, strings.Join(categories, ", "))
			}
			act := Action(a)
			if a == "" {
				// YAML reads a bare `null` as no value at all.
				act = Null
			}
			if !slices.Contains(actions, act) {
				return pos.Errorf(apath, "unknown action %q (allow, tokenize, mask, null or block)", a)
			}
			if cat == "*" {
				// Every category the role does not name, except special
				// data, which must always be named.
				r.Default = act
				continue
			}
			r.Actions[cat] = act
		}
		if r.Actions[CategorySpecial] == Allow && r.LegalBasis == "" {
			return pos.Errorf(rpath+".actions."+CategorySpecial, "role %q allows special-category data (GDPR Art. 9) without a legal_basis", name)
		}
		if r.Actions[CategorySpecial] == Tokenize || r.Actions[CategorySpecial] == Mask {
			return pos.Errorf(rpath+".actions."+CategorySpecial, "special-category data can only be allowed (with a legal_basis), nulled or blocked")
		}
		r.Unclassified = Action(rs.Unclassified)
		switch {
		case rs.Unclassified == "" && pos.Has(rpath+".unclassified"):
			r.Unclassified = Null // a bare YAML `null`
		case rs.Unclassified == "":
			// Fail closed: what the file does not classify does not leave
			// unless the role says so.
			r.Unclassified = Block
		}
		switch r.Unclassified {
		case Allow, Null, Block:
		default:
			return pos.Errorf(rpath+".unclassified", "must be allow, null or block, got %q", rs.Unclassified)
		}
		// A role that tokenizes a category needs a transform on every
		// column of it: decided now, never at query time.
		for tn, tp := range p.tables {
			for _, col := range tp.all() {
				if r.action(col.Category) == Tokenize && col.Spec.Kind == "" {
					return &yamlconf.Error{File: pos.File(), Line: col.line, Path: "columns." + tn.key() + "." + col.Name,
						Msg: fmt.Sprintf("role %q tokenizes category %q but the column has no transform", name, col.Category)}
				}
			}
		}
		p.Roles = append(p.Roles, r)
	}
	return nil
}

func kindList() string {
	var s []string
	for _, k := range crypto.Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func (tp *tablePolicy) all() []*Column {
	out := make([]*Column, 0, len(tp.columns)+1)
	for _, c := range tp.columns {
		out = append(out, c)
	}
	if tp.wildcard != nil {
		out = append(out, tp.wildcard)
	}
	return out
}

func (t TableName) key() string { return t.Schema + "." + t.Table }
