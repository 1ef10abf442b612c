package rewrite

import (
	"bytes"
	"testing"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

func TestCopyTextEscapesRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "tab\there", "line\nbreak\r", `back\slash`, "del|im", "\b\f\v"} {
		esc := escapeCopyText(nil, []byte(v), '|')
		if bytes.IndexByte(esc, '|') >= 0 && !bytes.Contains(esc, []byte(`\|`)) {
			t.Errorf("%q: unescaped delimiter in %q", v, esc)
		}
		if got := unescapeCopyText(nil, esc); string(got) != v {
			t.Errorf("round trip of %q gave %q via %q", v, got, esc)
		}
	}
	if got := unescapeCopyText(nil, []byte(`\101\x42\N`)); string(got) != "ABN" {
		t.Errorf("octal/hex escapes: %q", got)
	}
}

// TestCopyRewriteFormats rewrites one row in text and csv with a column
// that is copied, one that is nulled and one that is redacted, and checks
// field boundaries and quoting survive.
func TestCopyRewriteFormats(t *testing.T) {
	redact, err := crypto.New(crypto.Spec{Kind: crypto.KindRedact, Constant: "x,\"y\""}, nil, crypto.OIDText, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Cols: []Col{{Action: policy.Allow}, {Action: policy.Null, Null: true}, {Action: policy.Tokenize, Tr: redact}}}
	tests := []struct {
		info     sqlinfo.Copy
		in, want string
	}{
		{sqlinfo.Copy{Format: "text", Delimiter: '\t', NullString: `\N`}, "a\\tb\tsecret\tsecret2\n", "a\\tb\t\\N\tx,\"y\"\n"},
		{sqlinfo.Copy{Format: "csv", Delimiter: ',', NullString: "", Quote: '"', Escape: '"'}, "\"a,b\",secret,\"sec\nret\"\n", "\"a,b\",,\"x,\"\"y\"\"\"\n"},
		{sqlinfo.Copy{Format: "text", Delimiter: '\t', NullString: `\N`}, "a\t\\N\t\\N\n", "a\t\\N\t\\N\n"},
	}
	for _, tt := range tests {
		info := tt.info
		c := &Copy{Info: &info, Plan: p}
		out, err := c.CopyData(nil, []byte(tt.in))
		if err != nil {
			t.Fatalf("%s %q: %v", info.Format, tt.in, err)
		}
		if got := string(out[5:]); got != tt.want {
			t.Errorf("%s %q: got %q, want %q", info.Format, tt.in, got, tt.want)
		}
	}
	c := &Copy{Info: &sqlinfo.Copy{Format: "text", Delimiter: '\t', NullString: `\N`}, Plan: p}
	if _, err := c.CopyData(nil, []byte("only\ttwo\n")); err == nil {
		t.Error("a row with too few fields was accepted")
	}
}

// TestCopyTextEscapedDelimiter: a delimiter inside a value is escaped by
// the server and stays part of the field, whatever the delimiter.
func TestCopyTextEscapedDelimiter(t *testing.T) {
	p := &Plan{Cols: []Col{{Action: policy.Null, Null: true}, {Action: policy.Allow}}}
	for _, tt := range []struct {
		delim    byte
		in, want string
	}{
		{' ', "Diabetes\\ mellitus\\ Typ\\ 2 x\n", "\\N x\n"},
		{'-', "r\\u00f6misch\\-katholisch a\\-b\n", ""},
		{'-', "r\u00f6misch\\-katholisch-a\\-b\n", "\\N-a\\-b\n"},
		{'\t', "a\\\\\tb\n", "\\N\tb\n"},
	} {
		c := &Copy{Info: &sqlinfo.Copy{Format: "text", Delimiter: tt.delim, NullString: `\N`}, Plan: p}
		out, err := c.CopyData(nil, []byte(tt.in))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: one field accepted for two columns", tt.in)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := string(out[5:]); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCopyHeaderAndForceQuote: the header line of text and csv passes as
// it is, once; FORCE_QUOTE columns keep their quotes after the rewrite,
// others are quoted only where the rewritten value needs it.
func TestCopyHeaderAndForceQuote(t *testing.T) {
	redact, err := crypto.New(crypto.Spec{Kind: crypto.KindRedact, Constant: "tok"}, nil, crypto.OIDText, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Cols: []Col{{Action: policy.Allow}, {Action: policy.Tokenize, Tr: redact}, {Action: policy.Tokenize, Tr: redact}}}
	csv := sqlinfo.Copy{Format: "csv", Delimiter: ',', NullString: "", Quote: '"', Escape: '"', Header: true}
	text := sqlinfo.Copy{Format: "text", Delimiter: '\t', NullString: `\N`, Header: true}
	for _, tt := range []struct {
		info  sqlinfo.Copy
		quote []bool
		in    []string
		want  []string
	}{
		{text, nil, []string{"city\temail\tname\n", "Berlin\ta@b.de\tAnna\n"}, []string{"city\temail\tname\n", "Berlin\ttok\ttok\n"}},
		{csv, []bool{true, true, false}, []string{"city,email,name\n", "\"Berlin\",\"a@b.de\",\"Anna, B\"\n", "\"Köln\",,x\n"},
			[]string{"city,email,name\n", "\"Berlin\",\"tok\",tok\n", "\"Köln\",,tok\n"}},
	} {
		info := tt.info
		c := &Copy{Info: &info, Plan: p, Quote: tt.quote}
		for i, in := range tt.in {
			out, err := c.CopyData(nil, []byte(in))
			if err != nil {
				t.Fatalf("%s %q: %v", info.Format, in, err)
			}
			if got := string(out[5:]); got != tt.want[i] {
				t.Errorf("%s line %d %q: got %q, want %q", info.Format, i, in, got, tt.want[i])
			}
		}
	}
}
