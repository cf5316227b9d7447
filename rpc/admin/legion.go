package admin

import (
	"context"
	"strings"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

type legionServer struct {
	adminv1.UnimplementedLegionServiceServer
	legion Legion // nil without a legion
}

// ready returns the FAILED_PRECONDITION status on a node without a legion.
func (s *legionServer) ready() error {
	if s.legion == nil {
		return toStatus(ErrNoLegion)
	}
	return nil
}

func (s *legionServer) Status(ctx context.Context, _ *adminv1.StatusRequest) (*adminv1.StatusResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	st, err := s.legion.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &adminv1.StatusResponse{
		NodeId: st.NodeID, LeaderId: st.LeaderID, LeaderAddr: st.LeaderAddr,
		RaftRole: rolePB(st.Role), RaftTerm: st.Term,
		RaftCommitIndex: st.CommitIndex, RaftAppliedIndex: st.AppliedIndex,
		Members: membersPB(st.Members),
	}
	for _, l := range st.Legions {
		resp.Legions = append(resp.Legions, legionPB(l))
	}
	return resp, nil
}

func (s *legionServer) ListMembers(ctx context.Context, _ *adminv1.ListMembersRequest) (*adminv1.ListMembersResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	st, err := s.legion.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.ListMembersResponse{Members: membersPB(st.Members)}, nil
}

func (s *legionServer) ResignLord(ctx context.Context, req *adminv1.ResignLordRequest) (*adminv1.ResignLordResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if req.GetLegion() == "" {
		return nil, invalid("legion name is required")
	}
	l, err := s.legion.ResignLord(ctx, req.GetLegion())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.ResignLordResponse{Legion: legionPB(l)}, nil
}

func (s *legionServer) TransferLord(ctx context.Context, req *adminv1.TransferLordRequest) (*adminv1.TransferLordResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if req.GetLegion() == "" || req.GetNodeId() == "" {
		return nil, invalid("legion name and target node id are both required")
	}
	l, err := s.legion.TransferLord(ctx, req.GetLegion(), req.GetNodeId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.TransferLordResponse{Legion: legionPB(l)}, nil
}

func (s *legionServer) Join(ctx context.Context, req *adminv1.JoinRequest) (*adminv1.JoinResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if len(req.GetAddrs()) == 0 {
		return nil, invalid("at least one address to join is required")
	}
	for _, a := range req.GetAddrs() {
		if strings.TrimSpace(a) == "" {
			return nil, invalid("join address must not be empty")
		}
	}
	n, err := s.legion.Join(ctx, req.GetAddrs())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.JoinResponse{Joined: clampInt32(n)}, nil
}

func (s *legionServer) RemoveNode(ctx context.Context, req *adminv1.RemoveNodeRequest) (*adminv1.RemoveNodeResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" {
		return nil, invalid("node id is required")
	}
	if err := s.legion.RemoveNode(ctx, req.GetNodeId()); err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.RemoveNodeResponse{}, nil
}

func legionPB(l LegionInfo) *adminv1.Legion {
	pl := &adminv1.Legion{Name: l.Name, Lord: l.Lord, Epoch: l.Epoch, Vips: l.VIPs}
	for _, m := range l.Members {
		pl.Members = append(pl.Members, &adminv1.LegionMember{NodeId: m.NodeID, Valor: m.Valor})
	}
	return pl
}

func membersPB(ms []Member) []*adminv1.Member {
	out := make([]*adminv1.Member, 0, len(ms))
	for _, m := range ms {
		pm := &adminv1.Member{
			NodeId: m.NodeID, Addr: m.Addr, RaftAddr: m.RaftAddr, AdminAddr: m.AdminAddr,
			Health: healthPB(m.Health), RaftRole: rolePB(m.Role),
		}
		if m.LastContact >= 0 {
			pm.LastContact = durationpb.New(m.LastContact)
		}
		out = append(out, pm)
	}
	return out
}

func healthPB(h Health) adminv1.Health {
	switch h {
	case HealthAlive:
		return adminv1.Health_HEALTH_ALIVE
	case HealthSuspect:
		return adminv1.Health_HEALTH_SUSPECT
	case HealthDead:
		return adminv1.Health_HEALTH_DEAD
	case HealthLeft:
		return adminv1.Health_HEALTH_LEFT
	}
	return adminv1.Health_HEALTH_UNSPECIFIED
}

func rolePB(r RaftRole) adminv1.RaftRole {
	switch r {
	case RoleLeader:
		return adminv1.RaftRole_RAFT_ROLE_LEADER
	case RoleFollower:
		return adminv1.RaftRole_RAFT_ROLE_FOLLOWER
	case RoleCandidate:
		return adminv1.RaftRole_RAFT_ROLE_CANDIDATE
	case RoleNonvoter:
		return adminv1.RaftRole_RAFT_ROLE_NONVOTER
	case RoleNone:
		return adminv1.RaftRole_RAFT_ROLE_NONE
	}
	return adminv1.RaftRole_RAFT_ROLE_UNSPECIFIED
}
