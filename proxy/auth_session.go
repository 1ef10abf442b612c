package proxy

import (
	"context"
	"crypto/tls"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/proxy/scram"
	"github.com/pgpseudo/pgpseudo/proxy/wire"
)

// authSession is a session as the login sees it (auth.Session).
type authSession struct{ s *session }

func (a authSession) User() string { return a.s.id.User }

func (a authSession) ClientBinding() []byte {
	if _, ok := a.s.client.(*tls.Conn); ok {
		return a.s.srv.serverCB
	}
	return nil
}

func (a authSession) OpenUpstream(ctx context.Context, params []wire.Param) error {
	return a.s.openUpstream(ctx, params)
}

func (a authSession) ReuseUpstream(params []wire.Param) bool {
	return a.s.reuseUpstream(params)
}

func (a authSession) UpstreamBinding() []byte {
	if tc, ok := a.s.up.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			return scram.EndpointHash(certs[0])
		}
	}
	return nil
}

func (a authSession) Client() (*wire.Reader, *wire.Writer)   { return a.s.cr, a.s.cw }
func (a authSession) Upstream() (*wire.Reader, *wire.Writer) { return a.s.ur, a.s.uw }
func (a authSession) Log() *zap.Logger                       { return a.s.log }
