package crypto

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/vault/api"
)

// newVaultClient builds a Vault client from the configuration alone. The
// library's defaults read VAULT_SKIP_VERIFY, VAULT_CACERT, VAULT_CAPATH,
// VAULT_TLS_SERVER_NAME, VAULT_PROXY_ADDR, HTTP(S)_PROXY, VAULT_TOKEN,
// VAULT_NAMESPACE and VAULT_HEADERS from the environment; an inherited
// variable must not turn certificate checks off, trust another CA, route
// the token through a proxy or add headers. So the transport is built
// here (system roots or ca_file, server_name, TLS 1.2+, no proxy, no
// redirects) and the token, namespace and headers are reset.
func newVaultClient(cfg VaultConfig) (*api.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: vault.ca_file %q: %w", ErrInvalidConfig, cfg.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: vault.ca_file %q holds no PEM certificate", ErrInvalidConfig, cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:               nil, // never an environment proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	conf := &api.Config{
		Address: cfg.Address,
		HttpClient: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			// Vault's client handles redirects itself; the token must not
			// follow one to another host.
			return http.ErrUseLastResponse
		}},
		Timeout:    15 * time.Second,
		MaxRetries: 1,
	}
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("%w: vault client (pgpseudo ignores VAULT_* variables, but the client library refused one; unset them): %w", ErrInvalidConfig, err)
	}
	client.ClearToken() // never VAULT_TOKEN implicitly; login decides
	client.ClearNamespace()
	client.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	if err := client.SetAddress(cfg.Address); err != nil {
		return nil, fmt.Errorf("%w: vault.address: %w", ErrInvalidConfig, err)
	}
	return client, nil
}
