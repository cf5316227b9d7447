package bind

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/rpc/admin"
)

// Legion adapts a legion node to admin.Legion.
type Legion struct{ L *legion.Node }

var roles = map[legion.RaftRole]admin.RaftRole{
	legion.RoleLeader: admin.RoleLeader, legion.RoleFollower: admin.RoleFollower,
	legion.RoleCandidate: admin.RoleCandidate, legion.RoleNonvoter: admin.RoleNonvoter, legion.RoleNone: admin.RoleNone,
}

var healths = map[legion.Health]admin.Health{
	legion.HealthAlive: admin.HealthAlive, legion.HealthSuspect: admin.HealthSuspect,
	legion.HealthDead: admin.HealthDead, legion.HealthLeft: admin.HealthLeft,
}

func legionInfo(ls legion.LegionStatus) admin.LegionInfo {
	li := admin.LegionInfo{Name: ls.Name, Lord: ls.Lord, Epoch: ls.Epoch, VIPs: ls.VIPs}
	for _, m := range ls.Members {
		li.Members = append(li.Members, admin.LegionMember{NodeID: m.NodeID, Valor: int64(m.Valor)})
	}
	return li
}

// Status implements admin.Legion.
func (b Legion) Status(context.Context) (admin.ClusterStatus, error) {
	st := b.L.Status()
	out := admin.ClusterStatus{
		NodeID: st.NodeID, LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr, Role: roles[st.Role],
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
	}
	for _, ls := range st.Legions {
		out.Legions = append(out.Legions, legionInfo(ls))
	}
	for _, m := range st.Members {
		mem := admin.Member{NodeID: m.NodeID, Addr: m.Addr, RaftAddr: m.RaftAddr, Health: healths[m.Health], Role: roles[m.Role], LastContact: -1}
		switch {
		case m.NodeID == st.NodeID && st.Role == legion.RoleLeader:
			mem.LastContact = 0 // the leader is in contact with itself
		case m.NodeID == st.NodeID:
			mem.LastContact = st.LastContact
		}
		out.Members = append(out.Members, mem)
	}
	return out, nil
}

// ResignLord implements admin.Legion.
func (b Legion) ResignLord(ctx context.Context, name string) (admin.LegionInfo, error) {
	ls, err := b.L.ResignLord(ctx, name)
	return legionInfo(ls), b.err(err)
}

// TransferLord implements admin.Legion.
func (b Legion) TransferLord(ctx context.Context, name, nodeID string) (admin.LegionInfo, error) {
	ls, err := b.L.TransferLord(ctx, name, nodeID)
	return legionInfo(ls), b.err(err)
}

// Join implements admin.Legion. Joining through no address at all is
// UNAVAILABLE: the addresses may answer later.
func (b Legion) Join(ctx context.Context, addrs []string) (int, error) {
	n, err := b.L.Join(ctx, addrs)
	if err != nil && n == 0 && !errors.Is(err, legion.ErrNotRunning) {
		return 0, fmt.Errorf("%s: %w", oneLine(err), admin.ErrUnavailable)
	}
	return n, b.err(err)
}

// RemoveNode implements admin.Legion.
func (b Legion) RemoveNode(ctx context.Context, nodeID string) error {
	return b.err(b.L.RemoveNode(ctx, nodeID))
}

// err maps the cluster's errors onto the admin API's classes.
func (b Legion) err(err error) error {
	var nl *legion.NotLeaderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nl):
		// The hint's address is the leader's cluster RPC port, which
		// speaks only to members: an operator could not use it as --addr.
		return &admin.NotLeaderError{LeaderID: nl.LeaderID}
	case errors.Is(err, legion.ErrUnknownLegion), errors.Is(err, legion.ErrUnknownNode):
		return fmt.Errorf("%w: %w", err, admin.ErrNotFound)
	case errors.Is(err, legion.ErrNoQuorum):
		return fmt.Errorf("%w: %w", err, admin.ErrUnavailable)
	case errors.Is(err, legion.ErrNodeAlive), errors.Is(err, legion.ErrNotRunning), errors.Is(err, legion.ErrRefused),
		errors.Is(err, legion.ErrNoLord), errors.Is(err, legion.ErrNoSuccessor):
		return fmt.Errorf("%w: %w", err, admin.ErrFailedPrecondition)
	}
	// Calls that need the leader fail with the legion's unexported
	// no-leader error while an election runs or the quorum is lost.
	if b.L.Status().LeaderID == "" {
		return fmt.Errorf("%w (no raft leader: election in progress or quorum lost): %w", err, admin.ErrUnavailable)
	}
	return err
}

// oneLine flattens multi-line errors (memberlist joins its per-address
// errors with newlines) so the status message stays one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// LegionStats is the stats server's legions[] in uWSGI's layout (legion,
// addr, uuid, valor, checksum, quorum, i_am_the_lord, lord_valor,
// lord_uuid, nodes[], members[]), plus gouwsgi's fencing epoch.
func LegionStats(l *legion.Node) []any {
	st := l.Status()
	var out []any
	for _, ls := range st.Legions {
		var valor, lordValor uint32
		members := []map[string]any{}
		for _, m := range ls.Members {
			if m.NodeID == st.NodeID {
				valor = m.Valor
			}
			if m.NodeID == ls.Lord {
				lordValor = m.Valor
			}
			members = append(members, map[string]any{"name": m.Name, "uuid": m.NodeID, "valor": m.Valor, "checksum": 0, "last_seen": 0, "health": m.Health.String()})
		}
		lordSince := int64(0)
		if ls.IAmLord {
			lordSince = ls.LordSince.Unix()
		}
		out = append(out, map[string]any{
			"legion": ls.Name, "addr": "", "uuid": st.NodeID, "valor": valor, "checksum": 0, "quorum": ls.Quorum,
			"i_am_the_lord": lordSince, "lord_valor": lordValor, "lord_uuid": ls.Lord, "epoch": ls.Epoch,
			"nodes": []string{}, "members": members,
		})
	}
	return out
}
