// Package yamlconf decodes YAML configuration files strictly: an unknown key,
// a value of the wrong type or a failed validation is reported with the file,
// the line and the dotted path of the key, so an operator can fix it without
// guessing.
package yamlconf

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration error tied to a place in a file.
type Error struct {
	File string // file name as given to Decode
	Line int    // 1-based line, 0 when unknown
	Path string // dotted key path, e.g. "upstream.tls.mode"
	Msg  string
}

// Error formats the error as file:line: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Positions maps every key path seen in a file to its line, so that checks
// run after decoding can still point at the offending line.
type Positions struct {
	file  string
	lines map[string]int
}

// Line returns the line of path, or of its nearest present parent, or 0.
func (p *Positions) Line(path string) int {
	for {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// Errorf returns an *Error for the key at path.
func (p *Positions) Errorf(path, format string, args ...any) error {
	return &Error{File: p.file, Line: p.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// pathAt returns the deepest key path on line, or "".
func (p *Positions) pathAt(line int) string {
	best := ""
	for path, l := range p.lines {
		if l == line && len(path) > len(best) {
			best = path
		}
	}
	return best
}

// Has reports whether the file set the key at path explicitly.
func (p *Positions) Has(path string) bool {
	_, ok := p.lines[path]
	return ok
}

// Decode parses data (named file in messages) into out, which must be a
// pointer to a struct with yaml tags. Keys that out does not declare are
// refused. It returns the positions of all keys for later validation.
func Decode(file string, data []byte, out any) (*Positions, error) {
	pos := &Positions{file: file, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Line: lineOf(err.Error()), Msg: stripLine(err.Error())}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "file is empty"}
	}
	root := doc.Content[0]
	if err := pos.walk(root, reflect.TypeOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	if err := root.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			line := lineOf(te.Errors[0])
			return nil, &Error{File: file, Line: line, Path: pos.pathAt(line), Msg: stripLine(te.Errors[0])}
		}
		return nil, &Error{File: file, Msg: err.Error()}
	}
	return pos, nil
}

var lineRe = regexp.MustCompile(`line (\d+): `)

func lineOf(msg string) int {
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func stripLine(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	return lineRe.ReplaceAllString(msg, "")
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// walk records key lines and refuses keys that t does not declare.
func (p *Positions) walk(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == reflect.TypeOf(time.Duration(0)) && n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		// yaml would refuse it with a type error that does not say what
		// to write instead; a bare number has no unit to guess.
		return &Error{File: p.file, Line: n.Line, Path: path, Msg: fmt.Sprintf("a duration needs a unit: write %ss (or ms, m, h)", n.Value)}
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() == "time" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{File: p.file, Line: n.Line, Path: path, Msg: "expected a mapping of keys"}
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			p.lines[kp] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				return &Error{File: p.file, Line: k.Line, Path: kp, Msg: "unknown key" + suggest(k.Value, fields)}
			}
			if err := p.walk(v, f, kp); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			p.lines[kp] = k.Line
			if err := p.walk(v, t.Elem(), kp); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			p.lines[ip] = c.Line
			if err := p.walk(c, t.Elem(), ip); err != nil {
				return err
			}
		}
	}
	return nil
}

// structFields maps yaml key names to field types, following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

// File returns the file name errors are reported against.
func (p *Positions) File() string { return p.file }
