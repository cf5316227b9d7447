package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newAlarmsCmd(g *globals) *cobra.Command {
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List open alarms (--all includes acknowledged ones)",
		Example: `  gouwsgictl alarms list
  gouwsgictl alarms list --all -o json`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Alarm.List(ctx, &adminv1.AlarmServiceListRequest{IncludeAcknowledged: all})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error { return printAlarms(w, resp.GetAlarms()) })
			})
		},
	}
	list.Flags().BoolVarP(&all, "all", "a", false, "include acknowledged alarms")

	ack := &cobra.Command{
		Use:     "ack ID",
		Short:   "Acknowledge the alarm ID",
		Example: `  gouwsgictl alarms ack 2`,
		Args:    nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usagef("alarm ID must be a positive integer, got %q", args[0])
			}
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Alarm.Acknowledge(ctx, &adminv1.AlarmServiceAcknowledgeRequest{Id: id})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "acknowledged alarm %d (%s)\n", id, resp.GetAlarm().GetName())
					return err
				})
			})
		},
	}

	raise := &cobra.Command{
		Use:     "raise NAME MESSAGE",
		Short:   "Raise the alarm NAME with MESSAGE (runs its configured action)",
		Example: `  gouwsgictl alarms raise pager "deploy of v42 failed on n2"`,
		Args:    nArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Alarm.Raise(ctx, &adminv1.AlarmServiceRaiseRequest{Name: args[0], Message: args[1]})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "raised alarm %d (%s)\n", resp.GetAlarm().GetId(), args[0])
					return err
				})
			})
		},
	}

	watch := &cobra.Command{
		Use:   "watch",
		Short: "Print alarm events as they happen, until interrupted",
		Long: `Print one line per alarm event (raised, acknowledged) until Ctrl-C. With
-o json, each event is one JSON object on its own line. --timeout does not
apply to the stream.`,
		Example: `  gouwsgictl alarms watch
  gouwsgictl alarms watch -o json | jq -r .alarm.message`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			return g.explain(c, watchAlarms(cmd.Context(), g, c))
		},
	}
	return group("alarms", "List, raise, acknowledge and watch alarms", `  gouwsgictl alarms list
  gouwsgictl alarms ack 2
  gouwsgictl alarms watch`, list, ack, raise, watch)
}

func watchAlarms(ctx context.Context, g *globals, c *client.Client) error {
	stream, err := c.Alarm.Watch(ctx, &adminv1.AlarmServiceWatchRequest{})
	if err != nil {
		return err
	}
	// The node sends headers once subscribed: from then on no event is
	// missed, which scripts can wait for on stderr.
	if _, err := stream.Header(); err != nil {
		return err
	}
	fmt.Fprintf(g.io.Err, "watching alarms on %s (Ctrl-C to stop)\n", g.addr)
	for {
		ev, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case status.Code(err) == codes.Canceled && ctx.Err() != nil:
			return nil // interrupted by the user
		case err != nil:
			return err
		}
		if g.output == "json" {
			err = writeJSONLine(g.io.Out, ev)
		} else {
			a := ev.GetAlarm()
			_, err = fmt.Fprintf(g.io.Out, "%s %s id=%d name=%s node=%s source=%s: %s\n",
				timestamp(a.GetRaisedAt()), enumName(ev.GetType().String(), "ALARM_EVENT_TYPE_"),
				a.GetId(), a.GetName(), a.GetNodeId(), a.GetSource(), a.GetMessage())
		}
		if err != nil {
			return err
		}
	}
}

func printAlarms(w io.Writer, as []*adminv1.Alarm) error {
	t := newTable(w, "ID", "NAME", "SOURCE", "NODE", "RAISED", "COUNT", "ACK", "MESSAGE")
	for _, a := range as {
		ackd := "no"
		if a.GetAcknowledged() {
			ackd = timestamp(a.GetAcknowledgedAt())
		}
		t.row(unum(a.GetId()), a.GetName(), a.GetSource(), a.GetNodeId(), timestamp(a.GetRaisedAt()),
			unum(a.GetCount()), ackd, a.GetMessage())
	}
	return t.flush()
}
