package crypto

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/prf/hkdfprf"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// rawKeys returns every root key of ks and every subkey the transformers
// derive for the given domains.
func rawKeys(t *testing.T, ks *Keyset, domains []string) [][]byte {
	t.Helper()
	var keys [][]byte
	for i := range ks.handle.Len() {
		e, err := ks.handle.Entry(i)
		if err != nil {
			t.Fatal(err)
		}
		k, ok := e.Key().(*hkdfprf.Key)
		if !ok {
			t.Fatalf("unexpected key type %T", e.Key())
		}
		keys = append(keys, k.KeyBytes().Data(insecuresecretdataaccess.Token{}))
	}
	purposes := map[string]int{purposeTokenPRF: 32, purposeTokenSIV: 64, purposeEmailLoc: 32, purposeEmailDom: 32,
		purposeDigits: 32, purposeInt: 32, purposeUUID: 32, purposeShift: 32, purposeHash: 32,
		purposeFakeFirst: 32, purposeFakeLast: 32, purposeFakeFull: 32, purposeFakeStreet: 32, purposeFakeCity: 32,
		purposeFakeCompany: 32, purposeFakeEmail: 32, purposeFakePhone: 32, purposeFakePostcode: 32}
	for _, v := range ks.Versions() {
		for p, n := range purposes {
			for _, d := range domains {
				k, err := ks.derive(v.Version, p, d, n)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// TestNoKeyMaterialInLogsOrErrors captures every log line, error string and
// formatted value produced by a run through providers and transformers
// (successes and failures), and fails if any raw or derived key appears
// in hex or base64.
func TestNoKeyMaterialInLogsOrErrors(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	var out []string
	record := func(vals ...any) {
		for _, v := range vals {
			if v == nil {
				continue
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
				out = append(out, fmt.Sprintf(verb, v))
			}
		}
	}
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "ks.json")
	p := NewFileProvider(FileConfig{Path: path}, log)
	_, err := p.Keyset(ctx)
	record(err)
	st, err := p.Init(ctx)
	record(st, err)
	_, err = p.Init(ctx)
	record(err)
	st, err = p.Rotate(ctx)
	record(st, err)
	ks, err := p.Keyset(ctx)
	record(ks, err, p)
	_ = os.Chmod(path, 0o644)
	_, err = NewFileProvider(FileConfig{Path: path}, log).Keyset(ctx)
	record(err)

	domains := []string{"d", "customers"}
	for _, pc := range propertyCases {
		for _, oid := range pc.oids {
			for _, f := range []int16{FormatText, FormatBinary} {
				spec := pc.spec
				for _, d := range domains {
					spec.Domain = d
					if !keyed(spec.Kind) {
						spec.Domain = ""
					}
					tr, err := New(spec, ks, oid, f)
					record(tr, err)
					if tr == nil {
						continue
					}
					_, err = tr.Transform(nil, []byte("\xff\x00bad value"))
					record(err)
					if r, ok := tr.(Reverser); ok {
						_, err = r.Reverse(nil, []byte("garbage"))
						record(err)
					}
				}
			}
		}
	}
	for _, tok := range []string{"tr1_1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "tr1_7_aa", "tk1_1_x"} {
		_, err := ks.Detokenize("d", []byte(tok))
		record(err)
	}
	k, _ := ks.derive(1, purposeTokenPRF, "d", 32)
	record(k, newMACPool(k))

	for _, e := range logs.All() {
		out = append(out, e.Message, fmt.Sprint(e.ContextMap()))
	}
	all := strings.Join(out, "\n")
	if len(logs.All()) == 0 || len(all) < 1000 {
		t.Fatal("captured too little to be meaningful")
	}
	for _, key := range rawKeys(t, ks, domains) {
		for _, enc := range []string{
			hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
			base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
			base64.URLEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
			string(key),
		} {
			// Also catch partial dumps: any 16-byte window of the key.
			probe := enc[:min(len(enc), 24)]
			if strings.Contains(all, probe) {
				t.Fatalf("key material found in captured output (encoding prefix %q…)", probe[:4])
			}
		}
	}
}
