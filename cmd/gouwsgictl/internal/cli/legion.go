package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"github.com/gouwsgi/gouwsgi/rpc/client"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
)

func newLegionCmd(g *globals) *cobra.Command {
	status := &cobra.Command{
		Use:   "status",
		Short: "Show Raft, every legion's lord, epoch and VIPs, and the members",
		Long: `Show the cluster as the node at --addr sees it: its Raft role, the leader,
term and indexes; per legion the lord, the lord's fencing epoch and the VIPs;
per member the gossip health, Raft role, last contact and valor per legion.`,
		Example: `  gouwsgictl legion status
  gouwsgictl legion status -o json | jq -r '.legions[] | "\(.name) \(.lord)"'`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				st, err := c.Legion.Status(ctx, &adminv1.StatusRequest{})
				if err != nil {
					return err
				}
				return g.emit(st, func(w io.Writer) error { return printLegionStatus(w, st) })
			})
		},
	}
	members := &cobra.Command{
		Use:     "members",
		Short:   "List the cluster members with their addresses, health and Raft role",
		Example: `  gouwsgictl legion members`,
		Args:    nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Legion.ListMembers(ctx, &adminv1.ListMembersRequest{})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					t := newTable(w, "NODE", "ADDR", "RAFT ADDR", "ADMIN ADDR", "HEALTH", "RAFT", "LAST CONTACT")
					for _, m := range resp.GetMembers() {
						t.row(m.GetNodeId(), m.GetAddr(), orDash(m.GetRaftAddr()), orDash(m.GetAdminAddr()),
							health(m), role(m.GetRaftRole()), duration(m.GetLastContact()))
					}
					return t.flush()
				})
			})
		},
	}
	resign := &cobra.Command{
		Use:     "resign LEGION",
		Short:   "Make the lord of LEGION step down; the next lord gets a new epoch",
		Example: `  gouwsgictl legion resign web`,
		Args:    nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Legion.ResignLord(ctx, &adminv1.ResignLordRequest{Legion: args[0]})
				if err != nil {
					return err
				}
				return g.printLordChange(resp, resp.GetLegion())
			})
		},
	}
	transfer := &cobra.Command{
		Use:     "transfer LEGION NODE",
		Short:   "Hand the lordship of LEGION to NODE",
		Example: `  gouwsgictl legion transfer web n2`,
		Args:    nArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Legion.TransferLord(ctx, &adminv1.TransferLordRequest{Legion: args[0], NodeId: args[1]})
				if err != nil {
					return err
				}
				return g.printLordChange(resp, resp.GetLegion())
			})
		},
	}
	join := &cobra.Command{
		Use:     "join ADDR...",
		Short:   "Make the node join a cluster through the gossip addresses of its members",
		Example: `  gouwsgictl --addr 10.0.0.4:7071 legion join 10.0.0.1:7946 10.0.0.2:7946`,
		Args:    nArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Legion.Join(ctx, &adminv1.JoinRequest{Addrs: args})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "joined through %d of %d address(es)\n", resp.GetJoined(), len(args))
					return err
				})
			})
		},
	}
	remove := &cobra.Command{
		Use:     "remove NODE",
		Short:   "Remove a dead node from the cluster and from Raft",
		Example: `  gouwsgictl legion remove n3`,
		Args:    nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Legion.RemoveNode(ctx, &adminv1.RemoveNodeRequest{NodeId: args[0]})
				if err != nil {
					return err
				}
				return g.emit(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "removed %s\n", args[0])
					return err
				})
			})
		},
	}
	return group("legion", "Inspect and operate the cluster and its legions", `  gouwsgictl legion status
  gouwsgictl legion transfer web n2`, status, members, resign, transfer, join, remove)
}

func (g *globals) printLordChange(resp proto.Message, l *adminv1.Legion) error {
	return g.emit(resp, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "legion %s: lord %s (epoch %d)\n", l.GetName(), orDash(l.GetLord()), l.GetEpoch())
		return err
	})
}

func printLegionStatus(w io.Writer, st *adminv1.StatusResponse) error {
	leader := orDash(st.GetLeaderId())
	if st.GetLeaderAddr() != "" {
		leader += " at " + st.GetLeaderAddr()
	}
	fmt.Fprintf(w, "node %s (%s)  leader %s  term %d  commit %d  applied %d\n\n",
		st.GetNodeId(), role(st.GetRaftRole()), leader, st.GetRaftTerm(), st.GetRaftCommitIndex(), st.GetRaftAppliedIndex())

	t := newTable(w, "LEGION", "LORD", "EPOCH", "VIPS", "MEMBERS")
	valors := map[string][]string{} // node -> legion=valor
	for _, l := range st.GetLegions() {
		t.row(l.GetName(), orDash(l.GetLord()), unum(l.GetEpoch()), orDash(strings.Join(l.GetVips(), ",")),
			inum(int64(len(l.GetMembers()))))
		for _, m := range l.GetMembers() {
			valors[m.GetNodeId()] = append(valors[m.GetNodeId()], fmt.Sprintf("%s=%d", l.GetName(), m.GetValor()))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "NODE", "ADDR", "HEALTH", "RAFT", "LAST CONTACT", "VALOR")
	for _, m := range st.GetMembers() {
		v := valors[m.GetNodeId()]
		sort.Strings(v)
		t.row(m.GetNodeId(), m.GetAddr(), health(m), role(m.GetRaftRole()), duration(m.GetLastContact()), orDash(strings.Join(v, ",")))
	}
	return t.flush()
}

func health(m *adminv1.Member) string { return enumName(m.GetHealth().String(), "HEALTH_") }

func role(r adminv1.RaftRole) string { return enumName(r.String(), "RAFT_ROLE_") }
