// Package secure derives a legion's cluster credentials from its shared
// secret: the memberlist gossip key and a TLS certificate authority.
//
// Every node computes the same CA from the secret alone (HKDF-SHA256 ->
// ed25519 seed -> self-signed certificate with fixed fields), then makes
// its own short-lived leaf certificate signed by it at start. Mutual TLS
// with that CA as the only root means a host without the secret can
// neither dial a node nor accept one: the handshake fails on both ends.
// Operators who prefer their own PKI pass explicit files instead (Files).
package secure

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// ServerName is the name every legion leaf certificate carries and every
// client verifies; node addresses change, the cluster's name does not.
const ServerName = "gouwsgi-legion"

// salt separates our derivations from any other use of the same secret.
const salt = "gouwsgi legion v1"

// ErrEmptySecret is returned when a derivation is asked for an empty secret.
var ErrEmptySecret = errors.New("legion secret is empty")

func derive(secret, info string, n int) ([]byte, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), []byte(salt), info, n)
	if err != nil {
		return nil, fmt.Errorf("derive %s: %w", info, err)
	}
	return key, nil
}

// GossipKey returns the 32-byte AES-256 key for memberlist's SecretKey.
func GossipKey(secret string) ([]byte, error) { return derive(secret, "gossip key", 32) }

// CA is the certificate authority derived from a legion secret.
type CA struct {
	Cert *x509.Certificate
	key  ed25519.PrivateKey
}

// DeriveCA builds the legion's CA. The same secret always gives the same
// key and the same certificate bytes.
func DeriveCA(secret string) (*CA, error) {
	seed, err := derive(secret, "ca ed25519 seed", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gouwsgi legion CA", Organization: []string{"gouwsgi"}},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2124, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	// ed25519 signatures are deterministic, so is the certificate.
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create legion CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse legion CA: %w", err)
	}
	return &CA{Cert: cert, key: key}, nil
}

// Leaf issues a fresh leaf certificate for nodeID, valid for both server
// and client authentication, signed by the CA.
func (ca *CA) Leaf(nodeID string, validity time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("leaf serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID, Organization: []string{"gouwsgi"}},
		DNSNames:     []string{ServerName},
		NotBefore:    now.Add(-time.Hour), // tolerate peers whose clocks lag
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign leaf for %s: %w", nodeID, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Files names an operator-provided PEM certificate, key and CA bundle.
type Files struct {
	Cert, Key, CA string
}

// Configs returns the server and client TLS configurations for one node.
// Both require the peer to present a certificate issued by the legion CA.
func Configs(leaf tls.Certificate, roots *x509.CertPool) (server, client *tls.Config) {
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf},
		RootCAs:      roots,
		ServerName:   ServerName,
	}
	return server, client
}

// FromSecret returns the TLS configurations for nodeID derived from secret.
func FromSecret(secret, nodeID string) (server, client *tls.Config, err error) {
	ca, err := DeriveCA(secret)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := ca.Leaf(nodeID, 365*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	server, client = Configs(leaf, roots)
	return server, client, nil
}

// FromFiles returns the TLS configurations from operator-provided files.
// The certificate must carry the DNS name ServerName.
func FromFiles(f Files) (server, client *tls.Config, err error) {
	leaf, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("load legion-tls-cert %s / legion-tls-key %s: %w", f.Cert, f.Key, err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("read legion-tls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("legion-tls-ca %s holds no PEM certificate", f.CA)
	}
	server, client = Configs(leaf, roots)
	return server, client, nil
}
