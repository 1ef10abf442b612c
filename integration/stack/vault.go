package stack

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Vault is a `vault server -dev -dev-tls` process: in memory, unsealed,
// with a known root token, serving https with a certificate of its own
// dev CA (pgpseudo accepts Vault over https only).
type Vault struct {
	Addr      string // https://127.0.0.1:PORT
	CAFile    string // the dev server's CA certificate (PEM)
	Port      int
	RootToken string
	LogFile   string
	Bin       string
	cmd       *exec.Cmd
	pid       int
}

// FindVaultBin returns the Vault server binary that `make vault` builds
// from the pinned Go module into the tool cache (the same key as the
// Makefile's: module version and a hash of the build's files), or
// PGPSEUDO_VAULT_BIN.
func FindVaultBin() (string, error) {
	if b := os.Getenv("PGPSEUDO_VAULT_BIN"); b != "" {
		return b, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "integration", "vaultserver")
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	main, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^require github.com/hashicorp/vault (v\S+)`).FindSubmatch(mod)
	if m == nil {
		return "", errors.New("integration/vaultserver/go.mod does not pin github.com/hashicorp/vault")
	}
	sum := sha256.Sum256(append(mod, main...))
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	b := filepath.Join(cache, "pgpseudo", "vault-"+string(m[1])+"-"+hex.EncodeToString(sum[:])[:12], "vault")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("vault server binary not found at %s; run `make vault`: %w", b, err)
	}
	return b, nil
}

// startVault starts a dev server. With detach the process outlives this
// one (for stack.sh); otherwise it is tied to ctx.
func startVault(ctx context.Context, dir string, detach bool) (*Vault, error) {
	bin, err := FindVaultBin()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "vault-tls")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	v := &Vault{
		Port: port, Addr: "https://127.0.0.1:" + strconv.Itoa(port), RootToken: randomSecret(),
		CAFile: filepath.Join(dir, "vault-ca.pem"), LogFile: filepath.Join(dir, "vault.log"), Bin: bin,
	}
	logf, err := os.Create(v.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"server", "-dev", "-dev-root-token-id=" + v.RootToken,
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port), "-dev-no-store-token",
		"-dev-tls", "-dev-tls-cert-dir=" + certDir}
	var cmd *exec.Cmd
	if detach {
		cmd = exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// The dev server must not pick up a caller's VAULT_* settings.
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start vault: %w", err)
	}
	v.cmd, v.pid = cmd, cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := v.healthCheck(certDir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// KV v2 is at secret/ in dev mode; Transit is enabled
				// at transit/ so `pgpseudo keys init` works on the stack
				// as docs/keys.md describes.
				if err := v.enableTransit(certDir); err != nil {
					_ = cmd.Process.Kill()
					return nil, err
				}
				return v, nil
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(v.LogFile)
			return nil, fmt.Errorf("vault exited during start: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, errors.New("vault did not become healthy within 60s")
		}
	}
}

// devClient is an HTTP client trusting the dev server's CA, once the
// server has written it, and the CA's PEM.
func devClient(certDir string) (*http.Client, []byte, error) {
	pem, err := os.ReadFile(filepath.Join(certDir, "vault-ca.pem"))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, errors.New("vault dev CA not written yet")
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, pem, nil
}

// enableTransit mounts the Transit secrets engine at transit/.
func (v *Vault) enableTransit(certDir string) error {
	c, _, err := devClient(certDir)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, v.Addr+"/v1/sys/mounts/transit", strings.NewReader(`{"type":"transit"}`))
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", v.RootToken)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("enable transit: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("enable transit: %s: %s", resp.Status, body)
	}
	return nil
}

// healthCheck asks the server for its health, trusting its dev CA once
// the server has written it.
func (v *Vault) healthCheck(certDir string) (*http.Response, error) {
	c, pem, err := devClient(certDir)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(v.Addr + "/v1/sys/health")
	if err == nil {
		// Vault removes its dev certificates when it stops; tests that
		// stop it still need the CA to reach the address and fail.
		if err = os.WriteFile(v.CAFile, pem, 0o600); err != nil {
			resp.Body.Close()
			return nil, err
		}
	}
	return resp, err
}

// Stop kills the dev server; its data is in memory and goes with it.
func (v *Vault) Stop() error {
	p, err := os.FindProcess(v.pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	for i := 0; i < 100; i++ {
		if p.Signal(syscall.Signal(0)) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.Kill()
}

// Pause stops the dev server's process (SIGSTOP) without ending it: its
// port still accepts connections, nothing answers — a hung Vault. Resume
// lets it run on with its data.
func (v *Vault) Pause() error { return syscall.Kill(v.pid, syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (v *Vault) Resume() error { return syscall.Kill(v.pid, syscall.SIGCONT) }
