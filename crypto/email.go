package crypto

import (
	"bytes"
	"fmt"
)

// emailTLD is reserved (RFC 2606): pseudonymous addresses can never deliver.
const emailTLD = ".invalid"

// emailDomainBytes is the PRF output kept for the domain label (80 bits:
// 16 base32 characters; domains are few, so collisions are negligible).
const emailDomainBytes = 10

type emailT struct {
	column
	redacted
	local      *macPool
	domain     *macPool
	keepDomain bool
	prefix     []byte
	// localChars and domainChars are the base32 characters kept of each
	// MAC, maxLen the column's length (0: none); fit.go shortens them.
	localChars, domainChars, maxLen int
}

func newEmail(spec Spec, ks *Keyset, c column) (Transformer, error) {
	lk, err := ks.derive(c.version, purposeEmailLoc, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	dk, err := ks.derive(c.version, purposeEmailDom, spec.Domain, 32)
	if err != nil {
		return nil, err
	}
	return &emailT{
		column: c, local: newMACPool(lk), domain: newMACPool(dk),
		keepDomain: spec.KeepDomain, prefix: tokenPrefix(opaquePrefix, c.version),
		localChars: fullTokenChars, domainChars: fullDomainChars,
	}, nil
}

// Transform implements Transformer: tk1_<v>_<token>@<token>.invalid, or
// tk1_<v>_<token>@<original domain> with keep_domain when the domain is a
// host name (anything else after an @ could be any text, a name
// included, and is tokenized like the rest). The local token is
// keyed on the whole address exactly as stored (case and spaces kept: a
// unique column may hold addresses that differ only in them, and SQL's
// '=' tells them apart), so distinct addresses keep distinct tokens and
// equal local parts at different domains stay unlinkable. The domain
// label is keyed on the ASCII-lowercased domain, which names one host.
func (t *emailT) Transform(dst, src []byte) ([]byte, error) {
	in := trimPad(t.oid, src)
	at := bytes.LastIndexByte(in, '@')
	dom := []byte(nil)
	if at >= 0 {
		dom = bytes.TrimSpace(in[at+1:])
	}
	s := t.local.get()
	s.h.Write(in)
	sum := s.finish()
	start := len(dst)
	dst = append(dst, t.prefix...)
	body := len(dst)
	dst = tokenAlphabet.AppendEncode(dst, sum[:opaqueBytes])[:body+t.localChars]
	t.local.put(s)
	dst = append(dst, '@')
	if t.keepDomain && hostName(dom) {
		if t.maxLen > 0 && len(dst)-start+len(dom) > t.maxLen {
			// A kept domain is never cut: the value is withheld.
			return dst[:start], fmt.Errorf("%w: the address with its kept domain is longer than the column's %d characters", ErrInvalidValue, t.maxLen)
		}
		return append(dst, dom...), nil
	}
	s = t.domain.get()
	s.writeLower(dom)
	sum = s.finish()
	body = len(dst)
	dst = tokenAlphabet.AppendEncode(dst, sum[:emailDomainBytes])[:body+t.domainChars]
	t.domain.put(s)
	return append(dst, emailTLD...), nil
}

// hostName reports whether b is a mail domain: at least two dot-separated
// labels of ASCII letters, digits and inner hyphens, at most 253 bytes,
// the last a top-level domain (letters, or an IDN's xn-- form). A number
// or an account code after an @ is not kept.
func hostName(b []byte) bool {
	if len(b) == 0 || len(b) > 253 {
		return false
	}
	labels := bytes.Split(b, []byte{'.'})
	tld := labels[len(labels)-1]
	if len(labels) < 2 || len(tld) < 2 || !bytes.HasPrefix(bytes.ToLower(tld), []byte("xn--")) && bytes.ContainsFunc(tld, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		return false
	}
	for _, label := range labels {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
