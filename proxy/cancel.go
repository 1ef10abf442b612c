package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// cancelKey is a BackendKeyData as the client sees it (protocol 3.0 keys).
type cancelKey struct {
	pid    uint32
	secret [4]byte
}

// upstreamKey is the real BackendKeyData of the upstream session.
type upstreamKey struct {
	pid    uint32
	secret []byte
}

// cancelRegistry maps the keys pgpseudo issues to the upstream's keys, so a
// client never learns an upstream key and an unknown key is never relayed.
type cancelRegistry struct {
	mu   sync.Mutex
	keys map[cancelKey]upstreamKey
	// slots bounds concurrent cancel forwards.
	slots chan struct{}
}

func newCancelRegistry() *cancelRegistry {
	return &cancelRegistry{keys: map[cancelKey]upstreamKey{}, slots: make(chan struct{}, 16)}
}

// issue registers up and returns a fresh random key for the client.
func (r *cancelRegistry) issue(up upstreamKey) cancelKey {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		k := cancelKey{pid: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff}
		copy(k.secret[:], b[4:])
		if k.pid == 0 {
			continue
		}
		r.mu.Lock()
		_, taken := r.keys[k]
		if !taken {
			r.keys[k] = up
		}
		r.mu.Unlock()
		if !taken {
			return k
		}
	}
}

func (r *cancelRegistry) forget(k cancelKey) {
	r.mu.Lock()
	delete(r.keys, k)
	r.mu.Unlock()
}

func (r *cancelRegistry) lookup(pid uint32, secret []byte) (upstreamKey, bool) {
	if len(secret) != 4 {
		return upstreamKey{}, false
	}
	k := cancelKey{pid: pid}
	copy(k.secret[:], secret)
	r.mu.Lock()
	defer r.mu.Unlock()
	up, ok := r.keys[k]
	return up, ok
}

// handleCancel forwards a CancelRequest for a key pgpseudo issued; like
// PostgreSQL it never answers the client.
func (s *Server) handleCancel(st *wire.Startup, log *zap.Logger) {
	up, ok := s.cancels.lookup(st.CancelPID, st.CancelSecret)
	if !ok {
		log.Info("cancel request with an unknown key ignored")
		return
	}
	select {
	case s.cancels.slots <- struct{}{}:
		defer func() { <-s.cancels.slots }()
	default:
		log.Warn("too many concurrent cancel requests; dropped")
		return
	}
	s.cancelUpstream(up, log)
}

// cancelUpstream sends a CancelRequest for the upstream session up.
func (s *Server) cancelUpstream(up upstreamKey, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Upstream.ConnectTimeout)
	defer cancel()
	conn, err := s.dialUpstream(ctx)
	if err != nil {
		log.Warn("cancel: cannot reach upstream", zap.Error(err))
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(s.cfg.Upstream.ConnectTimeout))
	if _, err := conn.Write(wire.AppendCancelRequest(nil, up.pid, up.secret)); err != nil {
		log.Warn("cancel: write failed", zap.Error(err))
		return
	}
	// PostgreSQL closes the connection once the cancel is delivered.
	_, _ = io.Copy(io.Discard, conn)
	log.Info("cancel request forwarded")
}
