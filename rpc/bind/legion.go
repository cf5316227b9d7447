package bind

import (
	"context"
	"errors"
	"fmt"

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
		if m.NodeID == st.NodeID {
			mem.LastContact = st.LastContact
		}
		out.Members = append(out.Members, mem)
	}
	return out, nil
}

// ResignLord implements admin.Legion.
func (b Legion) ResignLord(ctx context.Context, name string) (admin.LegionInfo, error) {
	ls, err := b.L.ResignLord(ctx, name)
	return legionInfo(ls), legionErr(err)
}

// TransferLord implements admin.Legion.
func (b Legion) TransferLord(ctx context.Context, name, nodeID string) (admin.LegionInfo, error) {
	ls, err := b.L.TransferLord(ctx, name, nodeID)
	return legionInfo(ls), legionErr(err)
}

// Join implements admin.Legion.
func (b Legion) Join(ctx context.Context, addrs []string) (int, error) {
	n, err := b.L.Join(ctx, addrs)
	return n, legionErr(err)
}

// RemoveNode implements admin.Legion.
func (b Legion) RemoveNode(ctx context.Context, nodeID string) error {
	return legionErr(b.L.RemoveNode(ctx, nodeID))
}

// legionErr maps the cluster's errors onto the admin API's classes.
func legionErr(err error) error {
	var nl *legion.NotLeaderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nl):
		return &admin.NotLeaderError{LeaderID: nl.LeaderID, LeaderAddr: nl.LeaderRPCAddr}
	case errors.Is(err, legion.ErrUnknownLegion), errors.Is(err, legion.ErrUnknownNode):
		return fmt.Errorf("%w: %w", err, admin.ErrNotFound)
	case errors.Is(err, legion.ErrNodeAlive), errors.Is(err, legion.ErrNoQuorum), errors.Is(err, legion.ErrNotRunning), errors.Is(err, legion.ErrRefused):
		return fmt.Errorf("%w: %w", err, admin.ErrFailedPrecondition)
	}
	return err
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
