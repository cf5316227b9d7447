// Package cluster serves gouwsgi's node-to-node gRPC calls
// (proto/gouwsgi/cluster/v1): followers forward writes, lord lease
// renewals and peer removals to the Raft leader through it.
//
// It depends only on the Backend interface below, with plain types, so the
// legion package (which implements it and owns the client side) is wired
// to it by cmd without an import cycle. This is the one place where
// cluster errors become gRPC statuses: "not the leader" is UNAVAILABLE
// with an ErrorInfo (reason NOT_LEADER, metadata leader_id and
// leader_addr), a missing quorum is UNAVAILABLE with reason NO_QUORUM.
//
// (The brief asked for rpc/internal; Go forbids importing a package under
// a directory named internal from outside its parent, so cmd could not
// wire it.)
package cluster

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/cluster/v1"
)

// ErrorInfo domain, reasons and metadata keys, shared with the client side
// in legion.
const (
	Domain          = "cluster.gouwsgi"
	ReasonNotLeader = "NOT_LEADER"
	ReasonNoQuorum  = "NO_QUORUM"
	MetaLeaderID    = "leader_id"
	MetaLeaderAddr  = "leader_addr"
)

// Backend is what the forwarding service needs from the cluster node.
type Backend interface {
	// ForwardApply proposes an encoded log entry on the leader. refusal is
	// the state machine's business error, if any.
	ForwardApply(ctx context.Context, entry []byte) (index uint64, data []byte, refusal string, err error)
	// ForwardRenewLease renews a lord's lease on the leader.
	ForwardRenewLease(ctx context.Context, legion, nodeID string, epoch uint64) (granted, revoked bool, reason string, err error)
	// ForwardRemovePeer removes a dead node from Raft and the legions.
	ForwardRemovePeer(ctx context.Context, nodeID string) error
}

// LeaderHinter is implemented by errors meaning "not the leader".
type LeaderHinter interface {
	LeaderHint() (id, rpcAddr string)
}

// NoQuorumer is implemented by errors meaning "no quorum reachable".
type NoQuorumer interface {
	NoQuorum() bool
}

// PreconditionFailer is implemented by errors that refuse a request given
// the cluster's state (removing a node that is alive).
type PreconditionFailer interface {
	FailedPrecondition() bool
}

// Register adds the forwarding service backed by b to s.
func Register(s grpc.ServiceRegistrar, b Backend) {
	clusterv1.RegisterForwardServiceServer(s, &server{b: b})
}

type server struct {
	clusterv1.UnimplementedForwardServiceServer
	b Backend
}

func (s *server) Apply(ctx context.Context, req *clusterv1.ApplyRequest) (*clusterv1.ApplyResponse, error) {
	if len(req.GetEntry()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "entry is empty")
	}
	idx, data, refusal, err := s.b.ForwardApply(ctx, req.GetEntry())
	if err != nil {
		return nil, toStatus(err)
	}
	return &clusterv1.ApplyResponse{Index: idx, Data: data, Error: refusal}, nil
}

func (s *server) RenewLease(ctx context.Context, req *clusterv1.RenewLeaseRequest) (*clusterv1.RenewLeaseResponse, error) {
	if req.GetLegion() == "" || req.GetNodeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "legion and node_id are required")
	}
	granted, revoked, reason, err := s.b.ForwardRenewLease(ctx, req.GetLegion(), req.GetNodeId(), req.GetEpoch())
	if err != nil {
		return nil, toStatus(err)
	}
	return &clusterv1.RenewLeaseResponse{Granted: granted, Revoked: revoked, Reason: reason}, nil
}

func (s *server) RemovePeer(ctx context.Context, req *clusterv1.RemovePeerRequest) (*clusterv1.RemovePeerResponse, error) {
	if req.GetNodeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "node_id is required")
	}
	if err := s.b.ForwardRemovePeer(ctx, req.GetNodeId()); err != nil {
		return nil, toStatus(err)
	}
	return &clusterv1.RemovePeerResponse{}, nil
}

func toStatus(err error) error {
	var lh LeaderHinter
	var nq NoQuorumer
	var pf PreconditionFailer
	switch {
	case errors.As(err, &lh):
		id, addr := lh.LeaderHint()
		return withInfo(codes.Unavailable, err, ReasonNotLeader, map[string]string{MetaLeaderID: id, MetaLeaderAddr: addr})
	case errors.As(err, &nq) && nq.NoQuorum():
		return withInfo(codes.Unavailable, err, ReasonNoQuorum, nil)
	case errors.As(err, &pf) && pf.FailedPrecondition():
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func withInfo(code codes.Code, err error, reason string, meta map[string]string) error {
	st := status.New(code, err.Error())
	if det, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: meta}); derr == nil {
		st = det
	}
	return st.Err()
}
