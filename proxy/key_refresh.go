package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/audit"
)

// keyRefreshTimeout bounds one keyset reload.
const keyRefreshTimeout = 30 * time.Second

// watchKeys loads the keyset at once and then every interval until ctx
// ends, so a rotation made elsewhere (keys rotate, an operator's tooling)
// reaches a running proxy without a restart. Tokens made afterwards carry
// the new primary version; the transformer cache is keyed by keyset, so
// new plans use it. A failed reload keeps the cached keys in service (the
// provider logs it).
func (s *Server) watchKeys(ctx context.Context, every time.Duration) {
	s.refreshKeys(ctx)
	tick(ctx, every, func() { s.refreshKeys(ctx) })
}

// tick calls fn every interval until ctx ends.
func tick(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// refreshKeys reloads the keyset once. The first load and every new
// primary version are recorded in the audit log (key_rotation, actor
// pgpseudo; previous 0 for the keys loaded at start), which is what keys
// status --audit reads to say what each running proxy uses.
func (s *Server) refreshKeys(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, keyRefreshTimeout)
	defer cancel()
	ks, err := s.keys.Refresh(rctx)
	if err != nil {
		s.metrics.keyRefreshes.WithLabelValues("failed").Inc()
		return
	}
	s.metrics.keyRefreshes.WithLabelValues("ok").Inc()
	s.metrics.keysLoaded.SetToCurrentTime()
	s.keysLoadedAt.Store(time.Now().UnixNano())
	prev := s.keysInUse.Swap(ks.Primary())
	if ks.Primary() == prev {
		return
	}
	if prev != 0 {
		s.keyGen.Add(1)
		s.log.Info("key rotation picked up: new tokens use the new primary version",
			zap.Uint32("previous", prev), zap.Uint32("primary", ks.Primary()))
	} else {
		s.log.Info("keys loaded", zap.Uint32("primary", ks.Primary()))
	}
	if err := s.auditWrite(audit.KeyRotation{Actor: "pgpseudo", Provider: s.cfg.Keys.Provider,
		Previous: prev, Version: ks.Primary(), Outcome: audit.OutcomeOK}); err != nil {
		s.log.Error("audit record of the keys in use failed", zap.Error(err))
	}
}
