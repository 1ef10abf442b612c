package crypto

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
	"go.uber.org/zap"
)

// ensureLogin logs in once and starts token renewal.
func (p *VaultProvider) ensureLogin(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loggedIn {
		return nil
	}
	info, err := p.login(ctx)
	if err != nil {
		p.loginFailures.Add(1)
		return err
	}
	p.loggedIn = true
	if !p.renewing {
		p.renewing = true
		p.wg.Add(1)
		go p.renewLoop(info)
	}
	return nil
}

// login authenticates with the configured method and sets the client token.
// Credentials are read from files each time, so rotated files are honoured;
// they never appear in errors or logs.
func (p *VaultProvider) login(ctx context.Context) (tokenInfo, error) {
	a := p.cfg.Auth
	loginPath := "auth/" + strings.Trim(a.Mount, "/") + "/login"
	var method api.AuthMethod
	switch a.Method {
	case AuthToken:
		tok := os.Getenv("VAULT_TOKEN")
		src := "VAULT_TOKEN"
		if a.TokenFile != "" {
			b, err := readCredential(a.TokenFile, "vault.auth.token_file")
			if err != nil {
				return tokenInfo{}, err
			}
			tok, src = b, a.TokenFile
		}
		if tok == "" {
			return tokenInfo{}, fmt.Errorf("vault at %s: %w: no token (set vault.auth.token_file or VAULT_TOKEN)", p.cfg.Address, ErrAuthFailed)
		}
		p.client.SetToken(tok)
		sec, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return tokenInfo{}, vaultErr(p.cfg.Address, "looking up token from", src, true, err)
		}
		ttl, _ := sec.TokenTTL()
		renewable, _ := sec.TokenIsRenewable()
		return tokenInfo{ttl: ttl, renewable: renewable}, nil
	case AuthAppRole:
		// The credentials are read here, with readCredential's checks
		// (size, no FIFO), and handed to Vault's own AppRole client.
		roleID, err := readCredential(a.RoleIDFile, "vault.auth.role_id_file")
		if err != nil {
			return tokenInfo{}, err
		}
		secretID, err := readCredential(a.SecretIDFile, "vault.auth.secret_id_file")
		if err != nil {
			return tokenInfo{}, err
		}
		if method, err = approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(a.Mount)); err != nil {
			return tokenInfo{}, fmt.Errorf("%w: vault.auth: %w", ErrInvalidConfig, err)
		}
	case AuthKubernetes:
		jwt, err := readCredential(a.JWTPath, "vault.auth.jwt_path")
		if err != nil {
			return tokenInfo{}, err
		}
		if method, err = kubernetes.NewKubernetesAuth(a.KubernetesRole, kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(a.Mount)); err != nil {
			return tokenInfo{}, fmt.Errorf("%w: vault.auth: %w", ErrInvalidConfig, err)
		}
	default:
		return tokenInfo{}, fmt.Errorf("%w: vault.auth.method %q", ErrInvalidConfig, a.Method)
	}
	p.client.ClearToken()
	// Login sets the client's token from the answer.
	sec, err := p.client.Auth().Login(ctx, method)
	if err != nil {
		return tokenInfo{}, vaultErr(p.cfg.Address, "logging in at", loginPath, true, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return tokenInfo{}, fmt.Errorf("vault at %s: logging in at %s: %w: no token in response", p.cfg.Address, loginPath, ErrAuthFailed)
	}
	p.log.Info("logged in to vault", zap.String("address", p.cfg.Address), zap.String("method", a.Method),
		zap.Duration("ttl", time.Duration(sec.Auth.LeaseDuration)*time.Second))
	return tokenInfo{ttl: time.Duration(sec.Auth.LeaseDuration) * time.Second, renewable: sec.Auth.Renewable}, nil
}

func readCredential(path, key string) (string, error) {
	// The error names the file, never its content.
	fail := func(err error) (string, error) { return "", fmt.Errorf("%w: %s: %w", ErrAuthFailed, key, err) }
	// O_NONBLOCK: a FIFO in the credential's place must not hang login.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return fail(fmt.Errorf("%s is not a regular file", path))
	case fi.Mode().Perm()&0o004 != 0 && key != "vault.auth.jwt_path":
		// Kubernetes mounts service account tokens world-readable inside
		// the pod; a Vault token or AppRole credential must not be.
		return fail(fmt.Errorf("%s is readable by every user (mode %04o); run chmod o-r", path, fi.Mode().Perm()))
	case fi.Size() > maxCredential:
		return fail(fmt.Errorf("%s is larger than %d bytes", path, maxCredential))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredential))
	if err != nil {
		return fail(err)
	}
	return strings.TrimSpace(string(b)), nil
}

// maxCredential bounds a credential file (a Kubernetes JWT is a few KiB).
const maxCredential = 64 << 10

// Renewal timing.
const (
	minRenewWait = 5 * time.Second
	maxBackoff   = 2 * time.Minute
)

// renewLoop keeps the login alive until the provider closes: renew the
// token at two thirds of its TTL; if renewal fails or the token cannot be
// renewed, log in again, retrying with exponential backoff and jitter.
// Cached keys keep serving meanwhile.
func (p *VaultProvider) renewLoop(info tokenInfo) {
	defer p.wg.Done()
	for {
		if info.ttl <= 0 {
			return // a non-expiring token (e.g. root) needs no renewal
		}
		if !sleepCtx(p.ctx, max(info.ttl*2/3, minRenewWait)) {
			return
		}
		if info.renewable {
			sec, err := p.client.Auth().Token().RenewSelfWithContext(p.ctx, 0)
			if err == nil && sec != nil && sec.Auth != nil {
				info.ttl = time.Duration(sec.Auth.LeaseDuration) * time.Second
				p.log.Debug("renewed vault token", zap.Duration("ttl", info.ttl))
				// Renewal cannot go past the token's max TTL: once the
				// granted TTL stops covering a wait, log in again.
				if info.ttl > minRenewWait {
					continue
				}
			} else if err != nil {
				p.renewFailures.Add(1)
				p.log.Warn("vault token renewal failed; logging in again",
					zap.Error(vaultErr(p.cfg.Address, "renewing", "auth/token/renew-self", false, err)))
			}
		}
		backoff := time.Second
		for {
			ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
			next, err := p.login(ctx)
			cancel()
			if err == nil {
				info = next
				break
			}
			p.loginFailures.Add(1)
			p.log.Warn("vault login failed; cached keys stay in service", zap.Error(err), zap.Duration("retry_in", backoff))
			if !sleepCtx(p.ctx, backoff+rand.N(backoff/2+1)) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
