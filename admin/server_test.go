package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		key  string // "" means valid
	}{
		{"off", Config{}, ""},
		{"files without listen", Config{TokenFile: "t"}, "listen"},
		{"bad listen", Config{Listen: "nope", TokenFile: "t"}, "listen"},
		{"loopback plaintext", Config{Listen: "127.0.0.1:9187", TokenFile: "t"}, ""},
		{"localhost plaintext", Config{Listen: "localhost:9187", TokenFile: "t"}, ""},
		{"network plaintext", Config{Listen: "0.0.0.0:9187", TokenFile: "t"}, "cert_file"},
		{"network tls", Config{Listen: ":9187", CertFile: "c", KeyFile: "k", TokenFile: "t"}, ""},
		{"cert without key", Config{Listen: "127.0.0.1:9187", CertFile: "c", TokenFile: "t"}, "cert_file"},
		{"no token", Config{Listen: "127.0.0.1:9187"}, "token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.key == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.key != "" && (!errors.As(err, &ce) || ce.Key != tc.key):
				t.Fatalf("got %v, want an error on %s", err, tc.key)
			}
		})
	}
}

func writeToken(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("s3cret-token\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenFileChecked(t *testing.T) {
	g := prometheus.NewRegistry()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"readable by others", writeToken(t, 0o644), "chmod 600"},
		{"missing", filepath.Join(t.TempDir(), "none"), "no such file"},
		{"empty", func() string { p := filepath.Join(t.TempDir(), "e"); os.WriteFile(p, nil, 0o600); return p }(), "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Listen: "127.0.0.1:0", TokenFile: tc.path}, g, nil, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// serve starts an admin server on a loopback port and returns its base URL.
func serve(t *testing.T, checks []Check) string {
	t.Helper()
	return serveConfig(t, Config{}, checks)
}

// serveConfig is serve with the other settings of cfg.
func serveConfig(t *testing.T, cfg Config, checks []Check) string {
	t.Helper()
	g := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pgpseudo_test_total", Help: "test"})
	g.MustRegister(c)
	c.Add(3)
	cfg.Listen, cfg.TokenFile = "127.0.0.1:0", writeToken(t, 0o600)
	s, err := New(cfg, g, checks, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.timeout, s.reuse = 300*time.Millisecond, 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	failing := errors.New("vault at https://vault.internal:8200 unreachable")
	var keysErr error
	base := serve(t, []Check{
		{"upstream", func(context.Context) error { return nil }},
		{"keys", func(context.Context) error { return keysErr }},
		{"slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	})
	for _, tc := range []struct {
		name, path, token string
		code              int
		has, hasNot       []string
	}{
		{"healthz", "/healthz", "", 200, []string{"ok"}, nil},
		{"metrics without token", "/metrics", "", 401, nil, []string{"pgpseudo_test_total"}},
		{"metrics wrong token", "/metrics", "s3cret-tokeX", 401, nil, []string{"pgpseudo_test_total"}},
		{"metrics", "/metrics", "s3cret-token", 200, []string{"pgpseudo_test_total 3"}, nil},
		{"readyz hides detail", "/readyz", "", 503, []string{"ok upstream", "ok keys", "fail slow"}, []string{"deadline"}},
		{"readyz detail", "/readyz", "s3cret-token", 503, []string{"fail slow: context deadline exceeded"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, base+tc.path, tc.token)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("body has %q:\n%s", s, body)
				}
			}
		})
	}
	keysErr = failing
	if _, body := get(t, base+"/readyz", ""); !strings.Contains(body, "fail keys\n") || strings.Contains(body, "vault.internal") {
		t.Errorf("a failing check without the token: %s", body)
	}
}

// TestProfiling: profiles are served only when asked for, and only with
// the token.
func TestProfiling(t *testing.T) {
	if code, _ := get(t, serve(t, nil)+"/debug/pprof/", "s3cret-token"); code != 404 {
		t.Errorf("profiling off: status %d, want 404", code)
	}
	on := serveConfig(t, Config{Profiling: true}, nil)
	if code, _ := get(t, on+"/debug/pprof/", ""); code != 401 {
		t.Errorf("profiling without token: status %d, want 401", code)
	}
	if code, body := get(t, on+"/debug/pprof/heap?debug=1", "s3cret-token"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("heap profile: status %d: %.200s", code, body)
	}
	if code, body := get(t, on+"/debug/pprof/profile?seconds=1", "s3cret-token"); code != 200 || len(body) == 0 {
		t.Errorf("CPU profile: status %d, %d bytes", code, len(body))
	}
}

func TestReadyWhenAllChecksHold(t *testing.T) {
	base := serve(t, []Check{{"policy", func(context.Context) error { return nil }}})
	if code, body := get(t, base+"/readyz", ""); code != 200 || body != "ok policy\n" {
		t.Fatalf("%d %q", code, body)
	}
}

// TestReadinessReused: checks run at most once per readyReuse, however
// many callers ask.
func TestReadinessReused(t *testing.T) {
	var runs atomic.Int32
	s, err := New(Config{Listen: "127.0.0.1:0", TokenFile: writeToken(t, 0o600)}, prometheus.NewRegistry(),
		[]Check{{"counted", func(context.Context) error { runs.Add(1); return nil }}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		s.runChecks()
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d runs for 20 calls within %s", n, readyReuse)
	}
}
