package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
)

func newNodeCmd(g *globals) *cobra.Command {
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show the node's stats: workers, sockets and caches (as the uWSGI stats server)",
		Example: `  gouwsgictl node stats
  gouwsgictl node stats -o json | jq '.workers[] | {id, status, requests}'`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				st, err := c.Node.GetStats(ctx, &adminv1.GetStatsRequest{})
				if err != nil {
					return err
				}
				return g.emit(st, func(w io.Writer) error { return printStats(w, st) })
			})
		},
	}
	workers := &cobra.Command{
		Use:     "workers",
		Short:   "List the node's workers",
		Example: `  gouwsgictl node workers`,
		Args:    nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Node.ListWorkers(ctx, &adminv1.ListWorkersRequest{})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error { return printWorkers(w, resp.GetWorkers()) })
			})
		},
	}
	var chain bool
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Reload the workers gracefully (all at once, or one by one with --chain)",
		Example: `  gouwsgictl node reload
  gouwsgictl node reload --chain   # one worker at a time, no capacity dip`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Node.Reload(ctx, &adminv1.ReloadRequest{Chain: chain})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					what := "reload"
					if chain {
						what = "chain reload"
					}
					_, err := fmt.Fprintf(w, "%s requested\n", what)
					return err
				})
			})
		},
	}
	reload.Flags().BoolVar(&chain, "chain", false, "reload one worker at a time, waiting for each to accept again")
	scale := &cobra.Command{
		Use:   "scale DELTA",
		Short: "Add (positive DELTA) or remove (negative DELTA) workers",
		Example: `  gouwsgictl node scale 2
  gouwsgictl node scale -- -1`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			delta, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil || delta == 0 {
				return usagef("DELTA must be a non-zero integer, got %q", args[0])
			}
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Node.ScaleWorkers(ctx, &adminv1.ScaleWorkersRequest{Delta: int32(delta)})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "workers: %d\n", resp.GetWorkers())
					return err
				})
			})
		},
	}
	return group("node", "Inspect and control the node's workers", `  gouwsgictl node stats
  gouwsgictl node workers
  gouwsgictl node reload --chain`, stats, workers, reload, scale)
}

func printStats(w io.Writer, st *adminv1.GetStatsResponse) error {
	fmt.Fprintf(w, "node %s  version %s  pid %d  uid %d  gid %d  cwd %s\n",
		orDash(st.GetNodeId()), st.GetVersion(), st.GetPid(), st.GetUid(), st.GetGid(), st.GetCwd())
	fmt.Fprintf(w, "load %d  listen queue %d  listen queue errors %d  signal queue %d\n\n",
		st.GetLoad(), st.GetListenQueue(), st.GetListenQueueErrors(), st.GetSignalQueue())
	if err := printWorkers(w, st.GetWorkers()); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "SOCKET", "PROTO", "QUEUE", "MAX", "SHARED", "OFFLOAD")
	for _, s := range st.GetSockets() {
		t.row(s.GetName(), s.GetProto(), unum(s.GetQueue()), unum(s.GetMaxQueue()),
			inum(int64(s.GetShared())), inum(int64(s.GetCanOffload())))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printCaches(w, st.GetCaches())
}

func printWorkers(w io.Writer, ws []*adminv1.Worker) error {
	t := newTable(w, "WID", "PID", "STATUS", "ACCEPT", "REQ", "DELTA", "EXC", "HARAKIRI", "AVG", "RSS", "VSZ", "TX", "RESPAWN", "LAST SPAWN")
	for _, x := range ws {
		t.row(inum(int64(x.GetId())), inum(int64(x.GetPid())), x.GetStatus(), strconv.FormatBool(x.GetAccepting()),
			unum(x.GetRequests()), unum(x.GetDeltaRequests()), unum(x.GetExceptions()), unum(x.GetHarakiriCount()),
			micros(x.GetAvgRt()), bytesize(x.GetRss()), bytesize(x.GetVsz()), bytesize(x.GetTx()),
			unum(x.GetRespawnCount()), unixTime(x.GetLastSpawn()))
	}
	return t.flush()
}

func printCaches(w io.Writer, cs []*adminv1.Cache) error {
	t := newTable(w, "CACHE", "ITEMS", "MAX", "USE%", "HITS", "MISS", "HIT%", "FULL", "BLOCKSIZE", "HASH", "REPLICATED")
	for _, c := range cs {
		t.row(c.GetName(), unum(c.GetItems()), unum(c.GetMaxItems()), percent(c.GetItems(), c.GetMaxItems()),
			unum(c.GetHits()), unum(c.GetMiss()), percent(c.GetHits(), c.GetHits()+c.GetMiss()),
			unum(c.GetFull()), bytesize(c.GetBlocksize()), c.GetHash(), strconv.FormatBool(c.GetReplicated()))
	}
	return t.flush()
}
