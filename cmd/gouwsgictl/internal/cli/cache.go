package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
)

func newCacheCmd(g *globals) *cobra.Command {
	var cache string
	var linearizable bool
	addCache := func(cmd *cobra.Command) {
		cmd.Flags().StringVarP(&cache, "cache", "c", "", "cache name (default: the default cache)")
	}
	addLinearizable := func(cmd *cobra.Command) {
		cmd.Flags().BoolVar(&linearizable, "linearizable", false, "read through the Raft leader (replicated caches) instead of the local replica")
	}

	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY (raw bytes; base64 in JSON)",
		Example: `  gouwsgictl cache get /index.html
  gouwsgictl cache get --cache sessions --linearizable s:42`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Get(ctx, &adminv1.CacheServiceGetRequest{Cache: cache, Key: args[0], Linearizable: linearizable})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := w.Write(resp.GetValue())
					if err == nil && isTerminal(w) {
						_, err = io.WriteString(w, "\n")
					}
					return err
				})
			})
		},
	}
	addCache(get)
	addLinearizable(get)

	var ttl time.Duration
	var mode string
	set := &cobra.Command{
		Use:   "set KEY VALUE|-",
		Short: "Write KEY (VALUE - reads the value from standard input)",
		Long: `Write KEY. --mode update (the default) adds or replaces the key, as uWSGI's
cache_update; --mode set only adds it and fails if it exists, as uWSGI's
cache_set.`,
		Example: `  gouwsgictl cache set greeting hello
  gouwsgictl cache set --ttl 5m --cache sessions s:42 'user=7'
  gouwsgictl cache set --mode set lock:job1 me   # fails if the key exists
  gzip -c page.html | gouwsgictl cache set /page.html.gz -`,
		Args: nArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &adminv1.CacheServiceSetRequest{Cache: cache, Key: args[0], Value: []byte(args[1])}
			switch mode {
			case "update":
				req.Mode = adminv1.SetMode_SET_MODE_UPDATE
			case "set":
				req.Mode = adminv1.SetMode_SET_MODE_SET
			default:
				return usagef("invalid --mode %q: use update (add or replace) or set (add only)", mode)
			}
			if ttl < 0 {
				return usagef("--ttl must not be negative, got %s", ttl)
			}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			if args[1] == "-" {
				v, err := io.ReadAll(g.io.In)
				if err != nil {
					return fmt.Errorf("read value from standard input: %w", err)
				}
				req.Value = v
			}
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Set(ctx, req)
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "stored %s (%d bytes)\n", args[0], len(req.Value))
					return err
				})
			})
		},
	}
	addCache(set)
	set.Flags().DurationVar(&ttl, "ttl", 0, "lifetime of the item (0: never expires)")
	set.Flags().StringVar(&mode, "mode", "update", "update (add or replace) or set (add only)")

	del := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete"},
		Short:   "Delete KEY",
		Example: `  gouwsgictl cache del /index.html`,
		Args:    nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Delete(ctx, &adminv1.CacheServiceDeleteRequest{Cache: cache, Key: args[0]})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "deleted %s\n", args[0])
					return err
				})
			})
		},
	}
	addCache(del)

	keys := &cobra.Command{
		Use:   "keys",
		Short: "List the keys of a cache, one a line",
		Example: `  gouwsgictl cache keys
  gouwsgictl cache keys --cache sessions -o json`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Keys(ctx, &adminv1.CacheServiceKeysRequest{Cache: cache, Linearizable: linearizable})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					for _, k := range resp.GetKeys() {
						if _, err := fmt.Fprintln(w, k); err != nil {
							return err
						}
					}
					return nil
				})
			})
		},
	}
	addCache(keys)
	addLinearizable(keys)

	stats := &cobra.Command{
		Use:   "stats [CACHE]",
		Short: "Show cache statistics (every cache, or CACHE)",
		Example: `  gouwsgictl cache stats
  gouwsgictl cache stats sessions -o json`,
		Args: nArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Stats(ctx, &adminv1.CacheServiceStatsRequest{Cache: name})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error { return printCaches(w, resp.GetCaches()) })
			})
		},
	}

	clearCmd := &cobra.Command{
		Use:     "clear",
		Short:   "Remove every item of a cache",
		Example: `  gouwsgictl cache clear --cache sessions`,
		Args:    nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cache.Clear(ctx, &adminv1.CacheServiceClearRequest{Cache: cache})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "cleared %s\n", cacheLabel(cache))
					return err
				})
			})
		},
	}
	addCache(clearCmd)

	return group("cache", "Read and write the node's caches (local and replicated)", `  gouwsgictl cache keys
  gouwsgictl cache get /index.html
  gouwsgictl cache set --ttl 60s greeting hello`, get, set, del, keys, stats, clearCmd)
}

func cacheLabel(cache string) string {
	if cache == "" {
		return "the default cache"
	}
	return "cache " + cache
}

// isTerminal reports whether w is a terminal (then a value gets a trailing
// newline so the prompt does not stick to it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTTY(f)
}
