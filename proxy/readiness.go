package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pgpseudo/pgpseudo/admin"
)

// ReadyChecks are the conditions under which the proxy can serve every
// session its policy admits: accepting connections, upstream reachable,
// keys loaded (restricted sessions need them), audit log writable. The
// admin listener's /readyz runs them.
func (s *Server) ReadyChecks() []admin.Check {
	checks := []admin.Check{
		{Name: "accepting", Run: func(context.Context) error {
			if s.isClosing() {
				return errors.New("shutting down: new connections are refused")
			}
			return nil
		}},
		{Name: "upstream", Run: s.upstreamReachable},
	}
	if s.policy != nil {
		checks = append(checks, admin.Check{Name: "policy", Run: func(context.Context) error {
			if s.policy.cur.Load() == nil {
				return errors.New("no policy loaded")
			}
			return nil
		}})
	}
	if s.keys != nil {
		checks = append(checks, admin.Check{Name: "keys", Run: func(ctx context.Context) error {
			// A cached keyset answers at once; without one this tries
			// to load it, bounded by ctx.
			if _, err := s.keys.Keyset(ctx); err != nil {
				return fmt.Errorf("keys not loaded; restricted sessions are refused: %w", err)
			}
			if max := s.cfg.Keys.ReadyMaxAge; max > 0 {
				if at := s.keysLoadedAt.Load(); at != 0 {
					if age := time.Since(time.Unix(0, at)); age > max {
						return fmt.Errorf("keys last loaded %s ago, longer than keys.ready_max_age %s: the key provider cannot be reached (cached keys still serve)", age.Round(time.Second), max)
					}
				}
			}
			return nil
		}})
	}
	if s.aud != nil {
		checks = append(checks, admin.Check{Name: "audit", Run: func(ctx context.Context) error {
			if !s.auditDown.Load() {
				return nil
			}
			if err := s.aud.Probe(ctx); err != nil {
				return fmt.Errorf("audit log not writable; statements are refused: %w", err)
			}
			return nil
		}})
	}
	return checks
}

// upstreamReachable pings the database over the lookup connections, or
// without them opens and closes a TCP connection (which the server does
// not log: nothing was sent).
func (s *Server) upstreamReachable(ctx context.Context) error {
	if s.lookup != nil {
		p, err := s.lookup.Pool(ctx, s.cfg.Auth.AuthDatabase)
		if err == nil {
			err = p.Ping(ctx)
		}
		if err != nil {
			return fmt.Errorf("database at %s: %w", s.cfg.Upstream.Address, err)
		}
		return nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.cfg.Upstream.Address)
	if err != nil {
		return fmt.Errorf("database at %s: %w", s.cfg.Upstream.Address, err)
	}
	return c.Close()
}
