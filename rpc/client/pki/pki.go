package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// KeyType is the private key algorithm.
type KeyType string

// Supported key types.
const (
	Ed25519 KeyType = "ed25519"
	ECDSA   KeyType = "ecdsa" // P-256
)

// ParseKeyType checks a key type name.
func ParseKeyType(s string) (KeyType, error) {
	switch KeyType(strings.ToLower(s)) {
	case Ed25519:
		return Ed25519, nil
	case ECDSA:
		return ECDSA, nil
	}
	return "", fmt.Errorf("unknown key type %q: use ed25519 or ecdsa", s)
}

// Options describe a certificate to create.
type Options struct {
	CommonName string
	// Hosts are the subject alternative names: IP addresses or DNS names.
	// Ignored for a CA.
	Hosts    []string
	Validity time.Duration
	KeyType  KeyType
}

// PEM is a certificate and its private key, PEM-encoded.
type PEM struct {
	Cert, Key []byte
}

// CreateCA creates a self-signed CA certificate.
func CreateCA(opts Options) (PEM, error) {
	if opts.CommonName == "" {
		return PEM{}, errors.New("CA common name is empty")
	}
	tmpl, err := template(opts)
	if err != nil {
		return PEM{}, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	key, err := newKey(opts.KeyType)
	if err != nil {
		return PEM{}, err
	}
	return sign(tmpl, tmpl, key.Public(), key, key)
}

// CreateNode creates a certificate signed by the CA, valid as a TLS server
// (for each of opts.Hosts) and as a TLS client.
func CreateNode(ca PEM, opts Options) (PEM, error) {
	if opts.CommonName == "" {
		return PEM{}, errors.New("node common name is empty")
	}
	if len(opts.Hosts) == 0 {
		return PEM{}, errors.New("node certificate needs at least one host (IP address or DNS name)")
	}
	caCert, caKey, err := parse(ca)
	if err != nil {
		return PEM{}, fmt.Errorf("CA: %w", err)
	}
	if !caCert.IsCA {
		return PEM{}, fmt.Errorf("certificate %q is not a CA", caCert.Subject.CommonName)
	}
	tmpl, err := template(opts)
	if err != nil {
		return PEM{}, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range opts.Hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return PEM{}, errors.New("empty host in the certificate's host list")
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	key, err := newKey(opts.KeyType)
	if err != nil {
		return PEM{}, err
	}
	return sign(tmpl, caCert, key.Public(), caKey, key)
}

// WriteFiles writes the certificate and key with mode 0600, refusing to
// overwrite existing files unless force is set.
func (p PEM) WriteFiles(certPath, keyPath string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	} else {
		// Check both first so a refused key does not leave a lone cert.
		for _, path := range []string{certPath, keyPath} {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s already exists (use --force to overwrite)", path)
			}
		}
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{certPath, p.Cert}, {keyPath, p.Key}} {
		fh, err := os.OpenFile(f.path, flags, 0o600)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s already exists (use --force to overwrite)", f.path)
			}
			return fmt.Errorf("create %s: %w", f.path, err)
		}
		// An overwritten file keeps its old mode unless reset.
		werr := fh.Chmod(0o600)
		if werr == nil {
			_, werr = fh.Write(f.data)
		}
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("write %s: %w", f.path, werr)
		}
	}
	return nil
}

// ReadFiles reads a certificate and key written by WriteFiles.
func ReadFiles(certPath, keyPath string) (PEM, error) {
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return PEM{}, fmt.Errorf("read certificate: %w", err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return PEM{}, fmt.Errorf("read key: %w", err)
	}
	return PEM{Cert: cert, Key: key}, nil
}

func template(opts Options) (*x509.Certificate, error) {
	if opts.Validity <= 0 {
		return nil, fmt.Errorf("certificate validity must be positive, got %s", opts.Validity)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	// Backdate a little so a peer with a slightly slow clock accepts it.
	now := time.Now().Add(-5 * time.Minute)
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: opts.CommonName, Organization: []string{"gouwsgi"}},
		NotBefore:    now,
		NotAfter:     now.Add(opts.Validity),
	}, nil
}

func newKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case Ed25519, "":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case ECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key type %q: use ed25519 or ecdsa", kt)
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer, key crypto.Signer) (PEM, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return PEM{}, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEM{}, fmt.Errorf("encode private key: %w", err)
	}
	return PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func parse(p PEM) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(p.Cert)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	kb, _ := pem.Decode(p.Key)
	if kb == nil {
		return nil, nil, errors.New("no PEM private key found")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return cert, signer, nil
}
