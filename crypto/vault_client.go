package crypto

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// systemBundles are the operating system's CA bundles, in the order Go's
// crypto/x509 tries them on Linux. They are read directly so that
// SSL_CERT_FILE and SSL_CERT_DIR, which Go's system pool honours, cannot
// choose whom the Vault token is sent to.
func systemBundles() []string {
	return []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu
		"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
		"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
		"/etc/pki/tls/cacert.pem",                           // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
		"/etc/ssl/cert.pem",                                 // Alpine
	}
}

// vaultRoots is the CA pool Vault's certificate is verified against:
// vault.ca_file, or else the first system bundle found.
func vaultRoots(caFile string) (*x509.CertPool, error) {
	files, key := systemBundles(), "the system CA bundle"
	if caFile != "" {
		files, key = []string{caFile}, "vault.ca_file "+strconv.Quote(caFile)
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) && caFile == "" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrInvalidConfig, key)
		}
		return pool, nil
	}
	return nil, fmt.Errorf("%w: no system CA bundle found (looked in %s); set vault.ca_file", ErrInvalidConfig, strings.Join(systemBundles(), ", "))
}

// checkLibraryEnv refuses VAULT_* file variables the client library reads
// while building its defaults although pgpseudo discards the result: a
// FIFO or device there would block start-up beyond any signal.
func checkLibraryEnv() error {
	for _, v := range []string{"VAULT_CACERT", "VAULT_CAPATH", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"} {
		path := os.Getenv(v)
		if path == "" {
			continue
		}
		fi, err := os.Stat(path) // stat does not block on a FIFO
		if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
			return fmt.Errorf("%w: %s names %s, which is not a regular file; pgpseudo ignores the variable, but the Vault client library reads it: unset it", ErrInvalidConfig, v, path)
		}
	}
	return nil
}

// newVaultClient builds a Vault client from the configuration alone. The
// library's defaults read VAULT_SKIP_VERIFY, VAULT_CACERT, VAULT_CAPATH,
// VAULT_TLS_SERVER_NAME, VAULT_PROXY_ADDR, HTTP(S)_PROXY, VAULT_TOKEN,
// VAULT_NAMESPACE and VAULT_HEADERS from the environment, Go's system
// pool SSL_CERT_FILE and SSL_CERT_DIR; an inherited variable must not
// turn certificate checks off, trust another CA, route the token through
// a proxy or add headers. So the transport is built here (ca_file or the
// system bundle, server_name, TLS 1.2+, no proxy), redirects are not
// followed (the library would re-send the token to the new location),
// and the token, namespace and headers are reset.
func newVaultClient(cfg VaultConfig) (*api.Client, error) {
	roots, err := vaultRoots(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName, RootCAs: roots}
	transport := &http.Transport{
		Proxy:               nil, // never an environment proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		// HTTP/1.1 only: Go's HTTP/2 code logs headers and frames (the
		// Vault token, an AppRole secret_id, unwrapped key bytes) to
		// stderr when GODEBUG=http2debug is inherited.
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
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
		Timeout:          15 * time.Second,
		MaxRetries:       1,
		DisableRedirects: true,
	}
	if err := checkLibraryEnv(); err != nil {
		return nil, err
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
