package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gouwsgi/gouwsgi/rpc/client/pki"
	"github.com/spf13/cobra"
)

func newCertCmd(g *globals) *cobra.Command {
	var outDir, keyType string
	var validity time.Duration
	var force bool
	common := func(cmd *cobra.Command, defValidity time.Duration) {
		cmd.Flags().StringVar(&outDir, "out-dir", ".", "directory to write the files into")
		cmd.Flags().StringVar(&keyType, "key-type", "ed25519", "key algorithm: ed25519 or ecdsa (P-256)")
		cmd.Flags().DurationVar(&validity, "validity", defValidity, "how long the certificate is valid")
		cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	}

	var caName string
	createCA := &cobra.Command{
		Use:   "create-ca",
		Short: "Create the cluster CA (ca.pem and ca-key.pem, mode 0600)",
		Long: `Create a self-signed CA for the cluster. Keep ca-key.pem offline once the
node certificates are made; ca.pem goes to every node (client CA for mutual
TLS) and to operators (--cacert).`,
		Example: `  gouwsgictl cert create-ca --out-dir /etc/gouwsgi/tls
  gouwsgictl cert create-ca --key-type ecdsa --validity 43800h`,
		Args: nArgs(0, 0),
		RunE: func(*cobra.Command, []string) error {
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return usageError{err}
			}
			ca, err := pki.CreateCA(pki.Options{CommonName: caName, Validity: validity, KeyType: kt})
			if err != nil {
				return err
			}
			return g.writePair(ca, filepath.Join(outDir, "ca.pem"), filepath.Join(outDir, "ca-key.pem"), force)
		},
	}
	common(createCA, 10*365*24*time.Hour)
	createCA.Flags().StringVar(&caName, "name", "gouwsgi cluster CA", "common name of the CA")

	var hosts []string
	var caCert, caKey string
	createNode := &cobra.Command{
		Use:   "create-node NAME --host HOST...",
		Short: "Create a certificate for node (or operator) NAME, signed by the CA",
		Long: `Create NAME.pem and NAME-key.pem (mode 0600), signed by the cluster CA. The
certificate is valid for TLS serving on every --host (IP address or DNS
name) and as a mutual-TLS client, so one certificate serves a node's admin
API and its calls to other nodes; operators use one too (--cert/--key).`,
		Example: `  gouwsgictl cert create-node n1 --host 10.0.0.1 --host n1.example.com
  gouwsgictl cert create-node operator --host localhost --ca tls/ca.pem --ca-key tls/ca-key.pem --out-dir tls`,
		Args: nArgs(1, 1),
		RunE: func(_ *cobra.Command, args []string) error {
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return usageError{err}
			}
			if len(hosts) == 0 {
				return usagef("at least one --host (IP address or DNS name) is required")
			}
			ca, err := pki.ReadFiles(caCert, caKey)
			if err != nil {
				return fmt.Errorf("CA (--ca, --ca-key): %w", err)
			}
			p, err := pki.CreateNode(ca, pki.Options{CommonName: args[0], Hosts: hosts, Validity: validity, KeyType: kt})
			if err != nil {
				return err
			}
			return g.writePair(p, filepath.Join(outDir, args[0]+".pem"), filepath.Join(outDir, args[0]+"-key.pem"), force)
		},
	}
	common(createNode, 365*24*time.Hour)
	createNode.Flags().StringArrayVar(&hosts, "host", nil, "IP address or DNS name the certificate is valid for (repeatable)")
	createNode.Flags().StringVar(&caCert, "ca", "ca.pem", "CA certificate")
	createNode.Flags().StringVar(&caKey, "ca-key", "ca-key.pem", "CA private key")

	return group("cert", "Create a cluster CA and node certificates", `  gouwsgictl cert create-ca
  gouwsgictl cert create-node n1 --host 10.0.0.1`, createCA, createNode)
}

func (g *globals) writePair(p pki.PEM, certPath, keyPath string, force bool) error {
	// --out-dir /etc/gouwsgi/tls works on a fresh host; a directory made
	// here holds keys, so only its owner may list it.
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if err := p.WriteFiles(certPath, keyPath, force); err != nil {
		return err
	}
	if g.output == "json" {
		b, err := json.MarshalIndent(map[string]string{"cert": certPath, "key": keyPath}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.io.Out, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(g.io.Out, "wrote %s and %s (mode 0600)\n", certPath, keyPath)
	return err
}
