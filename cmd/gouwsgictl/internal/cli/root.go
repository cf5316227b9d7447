package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Environment variables read as flag defaults (and, for the token, instead
// of a flag: a token on the command line would show in ps(1)).
const (
	EnvAddr      = "GOUWSGI_ADDR"
	EnvCACert    = "GOUWSGI_CACERT"
	EnvCert      = "GOUWSGI_CERT"
	EnvKey       = "GOUWSGI_KEY"
	EnvTokenFile = "GOUWSGI_TOKEN_FILE"
	EnvToken     = "GOUWSGI_TOKEN"
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// usageError marks a command line mistake (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	io         IO
	getenv     func(string) string
	addr       string
	caCert     string
	cert, key  string
	serverName string
	tokenFile  string
	timeout    time.Duration
	output     string
}

// Main runs gouwsgictl with args and returns the exit code.
func Main(ctx context.Context, args []string, stdio IO, getenv func(string) string) int {
	g := &globals{io: stdio, getenv: getenv}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ue usageError
	// cobra reports unknown commands and flags as plain errors.
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		fmt.Fprintf(stdio.Err, "Error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return ExitUsage
	}
	fmt.Fprintf(stdio.Err, "Error: %s\n", describe(err))
	return ExitError
}

// describe turns an RPC error into one line an operator can act on.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	return fmt.Sprintf("%s (%s)", st.Message(), st.Code())
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "gouwsgictl",
		Short: "Operate gouwsgi nodes and clusters",
		Long: `gouwsgictl talks to a gouwsgi node's admin API (gRPC).

The node is chosen with --addr (or $GOUWSGI_ADDR): unix:///path/to.sock or
host:port. A bearer token is read from --token-file or $GOUWSGI_TOKEN, never
from the command line. TLS: --cacert (verify the node), --cert/--key (mutual
TLS). Exit codes: 0 ok, 1 error, 2 usage.`,
		Example: `  gouwsgictl legion status
  gouwsgictl --addr unix:///run/gouwsgi/admin.sock node workers
  GOUWSGI_ADDR=10.0.0.1:7071 GOUWSGI_CACERT=ca.pem gouwsgictl -o json cache stats`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if g.output != "table" && g.output != "json" {
				return usagef("invalid output format %q: use table or json", g.output)
			}
			if g.timeout <= 0 {
				return usagef("--timeout must be positive, got %s", g.timeout)
			}
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	f := root.PersistentFlags()
	f.StringVar(&g.addr, "addr", g.env(EnvAddr, client.DefaultAddr), "admin API address: unix:///path or host:port [$"+EnvAddr+"]")
	f.StringVar(&g.caCert, "cacert", g.env(EnvCACert, ""), "CA certificate to verify the node (enables TLS) [$"+EnvCACert+"]")
	f.StringVar(&g.cert, "cert", g.env(EnvCert, ""), "client certificate for mutual TLS [$"+EnvCert+"]")
	f.StringVar(&g.key, "key", g.env(EnvKey, ""), "client key for mutual TLS [$"+EnvKey+"]")
	f.StringVar(&g.serverName, "tls-server-name", "", "name to verify in the node's certificate (default: host of --addr)")
	f.StringVar(&g.tokenFile, "token-file", g.env(EnvTokenFile, ""), "file holding the bearer token (default: $"+EnvToken+") [$"+EnvTokenFile+"]")
	f.DurationVar(&g.timeout, "timeout", 5*time.Second, "deadline of each call")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")

	root.AddCommand(newLegionCmd(g), newCacheCmd(g), newAlarmsCmd(g), newNodeCmd(g),
		newTopCmd(g), newCertCmd(g), newCompletionCmd())
	return root
}

func (g *globals) env(name, def string) string {
	if v := g.getenv(name); v != "" {
		return v
	}
	return def
}

// connect makes a client from the global flags.
func (g *globals) connect() (*client.Client, error) {
	token := strings.TrimSpace(g.getenv(EnvToken))
	if g.tokenFile != "" {
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", g.tokenFile)
		}
	}
	return client.New(client.Config{
		Addr: g.addr, CACertFile: g.caCert, CertFile: g.cert, KeyFile: g.key,
		ServerName: g.serverName, Token: token,
	})
}

// call runs fn with a connected client and a context bounded by --timeout.
func (g *globals) call(ctx context.Context, fn func(context.Context, *client.Client) error) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return g.explain(c, fn(ctx, c))
}

// explain rewrites a call that never reached the node into an error that
// says so and what to check; gRPC's own text names only the transport.
func (g *globals) explain(c *client.Client, err error) error {
	if status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("no answer from the admin API at %s within --timeout %s (a reload waits for the app to load: raise --timeout): %s",
			g.addr, g.timeout, status.Convert(err).Message())
	}
	if err == nil || !c.Unreachable(err) {
		return err
	}
	hint := "is gouwsgi running with admin = " + g.addr + "?"
	switch {
	case g.caCert == "" && g.cert == "":
		hint += " If it serves TLS, pass --cacert"
	case g.cert == "":
		hint += " If it requires mutual TLS, pass --cert and --key"
	}
	return fmt.Errorf("cannot reach the admin API at %s: %s (%s)", g.addr, status.Convert(err).Message(), hint)
}

// group makes a command that only holds subcommands; it rejects unknown
// subcommands as a usage error instead of silently printing help.
func group(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// nArgs validates the number of positional arguments as a usage error; a
// negative max means no upper bound.
func nArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usagef("%s needs at least %d argument(s), got %d", cmd.CommandPath(), min, len(args))
		case max >= 0 && len(args) > max:
			return usagef("%s takes at most %d argument(s), got %d", cmd.CommandPath(), max, len(args))
		}
		return nil
	}
}

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Example: `  source <(gouwsgictl completion bash)
  gouwsgictl completion zsh > "${fpath[1]}/_gouwsgictl"
  gouwsgictl completion fish > ~/.config/fish/completions/gouwsgictl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return usagef("unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}
