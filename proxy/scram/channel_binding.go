package scram

import (
	"crypto"
	"crypto/x509"
)

// EndpointHash returns the tls-server-end-point channel binding data of a
// certificate (RFC 5929 §4.1): its hash with the signature's hash function,
// SHA-256 when that is MD5 or SHA-1. It returns nil for signature algorithms
// without a hash (Ed25519), for which PostgreSQL offers no channel binding.
func EndpointHash(cert *x509.Certificate) []byte {
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.SHA256WithRSA,
		x509.ECDSAWithSHA256, x509.SHA256WithRSAPSS:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	default:
		return nil
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil)
}
