package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
)

// ErrKeysUnavailable reports that tokens cannot be made because the key
// provider cannot be reached: restricted sessions are refused.
var ErrKeysUnavailable = errors.New("keys unavailable")

// policyState is one loaded policy; generation changes on every reload so
// sessions and cached plans notice.
type policyState struct {
	pol        *policy.Policy
	generation uint64
	modTime    time.Time
}

// policyHolder keeps the active policy and reloads it.
type policyHolder struct {
	path string
	log  *zap.Logger
	cur  atomic.Pointer[policyState]
	mu   sync.Mutex // serialises reloads
	// onLoad is told about every reload attempt (for the audit log).
	onLoad func(pol *policy.Policy, reload bool, err error)
}

func newPolicyHolder(path string, log *zap.Logger) (*policyHolder, error) {
	h := &policyHolder{path: path, log: log}
	pol, mod, err := loadPolicyFile(path)
	if err != nil {
		return nil, err
	}
	h.cur.Store(&policyState{pol: pol, generation: 1, modTime: mod})
	log.Info("policy loaded", zap.String("file", path), zap.String("sha256", pol.Hash), zap.Int("roles", len(pol.Roles)))
	return h, nil
}

func loadPolicyFile(path string) (*policy.Policy, time.Time, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("policy: %w", err)
	}
	pol, err := policy.Load(path)
	return pol, st.ModTime(), err
}

// reload loads the file again; an invalid file keeps the current policy.
func (h *policyHolder) reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.cur.Load()
	pol, mod, err := loadPolicyFile(h.path)
	if h.onLoad != nil {
		h.onLoad(pol, true, err)
	}
	if err != nil {
		h.log.Error("policy reload failed; the previous policy stays in force", zap.Error(err))
		return err
	}
	h.cur.Store(&policyState{pol: pol, generation: old.generation + 1, modTime: mod})
	h.log.Info("policy reloaded", zap.String("file", h.path), zap.String("sha256", pol.Hash), zap.Int("roles", len(pol.Roles)))
	return nil
}

// watch reloads when the file's modification time changes, until ctx ends.
func (h *policyHolder) watch(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		st, err := os.Stat(h.path)
		if err == nil && !st.ModTime().Equal(h.cur.Load().modTime) {
			_ = h.reload()
			// A failed reload must not retry every tick.
			if cur := h.cur.Load(); !cur.modTime.Equal(st.ModTime()) {
				h.mu.Lock()
				h.cur.Store(&policyState{pol: cur.pol, generation: cur.generation, modTime: st.ModTime()})
				h.mu.Unlock()
			}
		}
	})
}

// ReloadPolicy reloads the policy file (SIGHUP). An invalid file keeps the
// current policy and returns the error.
func (s *Server) ReloadPolicy() error {
	if s.policy == nil {
		return errors.New("no policy configured")
	}
	err := s.policy.reload()
	if s.shadow != nil {
		if serr := s.shadow.reload(); serr != nil {
			err = errors.Join(err, fmt.Errorf("policy_shadow: %w", serr))
		}
	}
	return err
}

func (s *Server) policyGeneration() uint64 {
	if s.policy == nil {
		return 0
	}
	return s.policy.cur.Load().generation
}

// keyset returns the keys for tokenization; failures are reported with
// the provider's own clear error.
func (s *Server) keyset(ctx context.Context) (*crypto.Keyset, error) {
	if s.keys == nil {
		return nil, fmt.Errorf("%w: the policy tokenizes but no keys are configured", ErrKeysUnavailable)
	}
	ks, err := s.keys.Keyset(ctx)
	if err != nil {
		// The cause names Vault's address and paths: it goes to the log,
		// and the error, which may reach a client, names only the provider.
		s.log.Warn("keys unavailable", zap.Error(err))
		return nil, fmt.Errorf("%w: the %s key provider cannot be reached (the proxy's log has the cause)", ErrKeysUnavailable, providerName(s.cfg.Keys.Provider))
	}
	return ks, nil
}

// providerName is how client messages name a key provider.
func providerName(p string) string {
	if p == crypto.ProviderVault {
		return "Vault"
	}
	return p
}

// noRole is used when a reloaded policy no longer matches a connected
// user: every column is withheld until the user reconnects.
var noRole = &policy.Role{Name: "(no matching role)", Unclassified: policy.Block, Actions: map[string]policy.Action{}}

// currentPolicy returns the policy in force and the session's role in it,
// resolving the role again after a reload.
func (s *session) currentPolicy() (*policy.Policy, *policy.Role) {
	pol, role, _ := s.policyNow()
	return pol, role
}

// policyNow is currentPolicy with the generation the role was resolved
// for. Both relay directions call it, so the cached role is locked.
func (s *session) policyNow() (*policy.Policy, *policy.Role, uint64) {
	st := s.srv.policy.cur.Load()
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	if st.generation != s.policyGen {
		role, err := st.pol.RoleFor(s.id.User, s.memberOf)
		if err != nil {
			role = noRole
		}
		if s.role == nil || role.Name != s.role.Name {
			s.log.Info("policy role for session", zap.String("role", role.Name), zap.Uint64("generation", st.generation))
		}
		s.role, s.policyGen = role, st.generation
	}
	return st.pol, s.role, s.policyGen
}

// policyLoaded is told of every load and reload attempt: it records it
// and, for a policy that loaded, checks it against the database in the
// background (never under the reload lock).
func (s *Server) policyLoaded(pol *policy.Policy, reload bool, err error) {
	s.auditPolicyLoad(pol, reload, err)
	if err == nil {
		go s.checkPolicyAgainstDB(s.baseCtx, pol)
	}
}

// auditPolicyLoad records a policy load or reload attempt.
func (s *Server) auditPolicyLoad(pol *policy.Policy, reload bool, err error) {
	ev := audit.PolicyLoad{File: audit.FitName(s.cfg.Policy), Reload: reload, Outcome: audit.OutcomeOK}
	if err != nil {
		s.metrics.policyLoads.WithLabelValues("failed").Inc()
		ev.Outcome = audit.OutcomeError
	} else {
		s.metrics.policyLoads.WithLabelValues("ok").Inc()
		ev.Hash = "sha256:" + pol.Hash
		for _, r := range pol.Roles {
			ev.Roles = append(ev.Roles, audit.FitName(r.Name))
		}
	}
	_ = s.auditWrite(ev)
}
