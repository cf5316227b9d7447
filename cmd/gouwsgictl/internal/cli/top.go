package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
)

// Terminal control sequences: alternate screen, cursor, clear.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l"
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	clearScreen = "\x1b[H\x1b[2J"
)

func newTopCmd(g *globals) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live view of workers and caches, refreshed every second (q to quit)",
		Long: `A live, refreshing view of the node's workers and caches in the manner of
uwsgitop and uwsgicachetop: requests per second per worker, status, average
response time, memory; cache fill, hits and misses. Press q to quit.`,
		Example: `  gouwsgictl top
  gouwsgictl --addr unix:///run/gouwsgi/admin.sock top --interval 2s`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usagef("--interval must be at least 100ms, got %s", interval)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			return runTop(cmd.Context(), g, c, interval)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	return cmd
}

func runTop(ctx context.Context, g *globals, c *client.Client, interval time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if in, ok := g.io.In.(*os.File); ok && isTTY(in) {
		restore, err := cbreak(in)
		if err != nil {
			return err
		}
		defer restore()
	}
	if isTerminal(g.io.Out) {
		io.WriteString(g.io.Out, enterScreen)
		defer io.WriteString(g.io.Out, leaveScreen)
	}
	go func() {
		// Quits on q. The read may outlive runTop (it blocks until the next
		// key or EOF), which is harmless: it only cancels a dead context.
		buf := make([]byte, 1)
		for {
			if _, err := g.io.In.Read(buf); err != nil {
				return
			}
			if buf[0] == 'q' || buf[0] == 'Q' {
				cancel()
				return
			}
		}
	}()

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var prev *adminv1.GetStatsResponse
	var prevAt time.Time
	for {
		callCtx, callCancel := context.WithTimeout(ctx, g.timeout)
		st, err := c.Node.GetStats(callCtx, &adminv1.GetStatsRequest{})
		callCancel()
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		var frame bytes.Buffer
		frame.WriteString(clearScreen)
		if err != nil {
			// Keep refreshing: a node restart should not end the view.
			fmt.Fprintf(&frame, "gouwsgictl top - %s - error: %s\n\nq: quit\n", g.addr, describe(g.explain(c, err)))
		} else {
			renderTop(&frame, st, prev, now.Sub(prevAt), now)
			prev, prevAt = st, now
		}
		if _, err := g.io.Out.Write(frame.Bytes()); err != nil {
			return fmt.Errorf("draw: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// renderTop draws one frame. prev (nil on the first frame) and elapsed give
// the per-second rates.
func renderTop(w io.Writer, st, prev *adminv1.GetStatsResponse, elapsed time.Duration, now time.Time) {
	var total, prevTotal uint64
	prevReqs := map[int32]uint64{}
	for _, x := range st.GetWorkers() {
		total += x.GetRequests()
	}
	for _, x := range prev.GetWorkers() {
		prevTotal += x.GetRequests()
		prevReqs[x.GetId()] = x.GetRequests()
	}
	rate := func(cur, old uint64) string {
		if prev == nil || elapsed <= 0 || cur < old {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(cur-old)/elapsed.Seconds())
	}

	fmt.Fprintf(w, "gouwsgi %s - node %s - %s - req: %d - RPS: %s - lq: %d - load: %d\n\n",
		st.GetVersion(), orDash(st.GetNodeId()), now.UTC().Format(time.RFC3339), total, rate(total, prevTotal),
		st.GetListenQueue(), st.GetLoad())

	t := newTable(w, "WID", "%", "PID", "REQ", "RPS", "EXC", "STATUS", "AVG", "RSS", "VSZ", "TX", "RESPAWN", "HC", "RUNT")
	for _, x := range st.GetWorkers() {
		t.row(inum(int64(x.GetId())), percent(x.GetRequests(), total), inum(int64(x.GetPid())), unum(x.GetRequests()),
			rate(x.GetRequests(), prevReqs[x.GetId()]), unum(x.GetExceptions()), x.GetStatus(), micros(x.GetAvgRt()),
			bytesize(x.GetRss()), bytesize(x.GetVsz()), bytesize(x.GetTx()), unum(x.GetRespawnCount()),
			unum(x.GetHarakiriCount()), micros(x.GetRunningTime()))
	}
	t.flush()
	fmt.Fprintln(w)
	printCaches(w, st.GetCaches())
	fmt.Fprintln(w, "\nq: quit")
}
