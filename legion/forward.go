package legion

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gouwsgi/gouwsgi/legion/fsm"
	clusterv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/cluster/v1"
)

// Apply proposes a command and waits until it is committed and applied,
// returning the state machine's data. On a follower the command is
// forwarded to the leader; while there is no leader it is held and
// retried until ctx ends or ApplyTimeout passes, then ErrNoQuorum.
// Concurrent calls are batched by raft into shared disk writes.
//
// A command is retried only when it certainly was not applied (no
// leader, not the leader). A transport failure after sending leaves the
// outcome unknown and is returned as is.
func (n *Node) Apply(ctx context.Context, t fsm.CommandType, msg proto.Message) ([]byte, error) {
	entry, err := fsm.Encode(t, msg)
	if err != nil {
		return nil, err
	}
	return n.ApplyEntry(ctx, entry)
}

// ApplyEntry is Apply for an already encoded entry.
func (n *Node) ApplyEntry(ctx context.Context, entry []byte) ([]byte, error) {
	if n.raft == nil {
		return nil, ErrNotRunning
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	start := time.Now()
	backoff := 5 * time.Millisecond
	var lastErr error
	for {
		data, refusal, err := n.applyOnce(ctx, entry)
		if err == nil {
			if refusal != "" {
				return data, &RefusedError{Msg: refusal}
			}
			return data, nil
		}
		if !retryable(err) {
			return nil, err
		}
		lastErr = err
		select {
		case <-n.stopping:
			return nil, ErrNotRunning
		case <-ctx.Done():
			if errors.Is(lastErr, ErrNotLeader) || errors.Is(lastErr, errNoLeader) {
				return nil, n.noQuorum(time.Since(start))
			}
			return nil, fmt.Errorf("apply: %w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

var errNoLeader = errors.New("no raft leader known")

func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, errNoLeader) || errors.Is(err, ErrNoQuorum) || errors.Is(err, errCut)
}

func (n *Node) applyOnce(ctx context.Context, entry []byte) ([]byte, string, error) {
	if n.raft.State() == raft.Leader {
		_, data, refusal, err := n.applyLeader(ctx, entry)
		return data, refusal, err
	}
	c, err := n.leaderClient()
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Apply(ctx, &clusterv1.ApplyRequest{Entry: entry, OriginNodeId: n.id})
	if err != nil {
		return nil, "", fromStatus(err)
	}
	return resp.GetData(), resp.GetError(), nil
}

// applyLeader applies an entry on this node, which must lead.
func (n *Node) applyLeader(ctx context.Context, entry []byte) (uint64, []byte, string, error) {
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(entry, timeout)
	if err := n.await(ctx, f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return 0, nil, "", n.notLeader()
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return 0, nil, "", n.noQuorum(timeout)
		case errors.Is(err, raft.ErrLeadershipLost):
			return 0, nil, "", fmt.Errorf("raft leadership lost while applying: the command may or may not be committed: %w", err)
		}
		return 0, nil, "", fmt.Errorf("raft apply: %w", err)
	}
	res, _ := f.Response().(fsm.Result)
	refusal := ""
	if res.Err != nil {
		refusal = res.Err.Error()
	}
	return f.Index(), res.Data, refusal, nil
}

// await waits for an apply future. A future still queued in raft's
// apply channel when the node halts is never answered, so the wait also
// ends with the node (or ctx), the outcome unknown.
func (n *Node) await(ctx context.Context, f raft.ApplyFuture) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stopping:
		return fmt.Errorf("node stopped while applying, the command may or may not be committed: %w", ErrNotRunning)
	case <-ctx.Done():
		return fmt.Errorf("apply: the command may or may not be committed: %w", ctx.Err())
	}
}

// ForwardApply implements rpc/cluster.Backend.
func (n *Node) ForwardApply(ctx context.Context, entry []byte) (uint64, []byte, string, error) {
	if n.raft.State() != raft.Leader {
		return 0, nil, "", n.notLeader()
	}
	return n.applyLeader(ctx, entry)
}

// ForwardRenewLease implements rpc/cluster.Backend.
func (n *Node) ForwardRenewLease(ctx context.Context, legion, nodeID string, epoch uint64) (bool, bool, string, error) {
	return n.grantLease(ctx, legion, nodeID, epoch, time.Now())
}

// ForwardRemovePeer implements rpc/cluster.Backend.
func (n *Node) ForwardRemovePeer(ctx context.Context, nodeID string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if n.aliveInGossip(nodeID) {
		return &aliveError{id: nodeID}
	}
	n.removeServer(nodeID, "removed by operator")
	return nil
}

// grantLease is the leader's side of a lease renewal: the FSM must still
// name (nodeID, epoch), the epoch must not be revoked, and this node must
// prove it still leads a quorum (VerifyLeader) before the grant counts.
// recv is when the request arrived: the fence waits from it.
func (n *Node) grantLease(ctx context.Context, legion, nodeID string, epoch uint64, recv time.Time) (granted, revoked bool, reason string, err error) {
	fence := n.fence.Load()
	if n.raft.State() != raft.Leader || fence == nil {
		return false, false, "", n.notLeader()
	}
	lg, ok := n.fsm.Legions().Get(legion)
	if !ok || lg.Lord != nodeID || lg.Epoch != epoch {
		return false, true, fmt.Sprintf("legion %s is now at epoch %d with lord %q", legion, lg.Epoch, lg.Lord), nil
	}
	if fence.Revoked(legion, epoch) {
		return false, true, "the leader is handing the lordship to another member", nil
	}
	if err := n.verifyLeader(ctx); err != nil {
		return false, false, "", err
	}
	if !fence.Grant(legion, epoch, recv) {
		return false, true, "the leader is handing the lordship to another member", nil
	}
	return true, false, "", nil
}

// renew asks the leader (possibly this node) to renew a lease.
func (n *Node) renew(ctx context.Context, legion string, epoch uint64) (bool, bool, string, error) {
	if n.raft.State() == raft.Leader {
		return n.grantLease(ctx, legion, n.id, epoch, time.Now())
	}
	c, err := n.leaderClient()
	if err != nil {
		return false, false, "", err
	}
	resp, err := c.RenewLease(ctx, &clusterv1.RenewLeaseRequest{Legion: legion, NodeId: n.id, Epoch: epoch})
	if err != nil {
		return false, false, "", fromStatus(err)
	}
	return resp.GetGranted(), resp.GetRevoked(), resp.GetReason(), nil
}

// verifyLeader runs a quorum round, giving up when ctx ends. raft's
// VerifyLeader does not take a context, and a partitioned leader's round
// lasts until it steps down: a lord that is also the leader must not wait
// for that past its lease (its keeper checks the lease only between
// renewals).
func (n *Node) verifyLeader(ctx context.Context) error {
	f := n.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return n.notLeader()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("verify raft leadership: %w", ctx.Err())
	}
}

func (n *Node) notLeader() error {
	_, id := n.raft.LeaderWithID()
	e := &NotLeaderError{LeaderID: string(id)}
	if g, ok := n.members.get(string(id)); ok {
		e.LeaderRPCAddr = g.Meta.GetRpcAddr()
	}
	return e
}

func (n *Node) noQuorum(waited time.Duration) error {
	e := &NoQuorumError{Waited: waited.Round(time.Millisecond).String()}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage != raft.Voter {
				continue
			}
			e.Voters++
			if n.aliveInGossip(string(s.ID)) {
				e.Reachable++
			}
		}
	}
	return e
}

// leaderClient returns a forwarding client for the current leader.
func (n *Node) leaderClient() (clusterv1.ForwardServiceClient, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return nil, errNoLeader
	}
	g, ok := n.members.get(string(id))
	if !ok || g.Meta.GetRpcAddr() == "" {
		return nil, fmt.Errorf("leader %s: rpc address not known from gossip yet: %w", id, errNoLeader)
	}
	return n.client(g.Meta.GetRpcAddr())
}

func (n *Node) client(addr string) (clusterv1.ForwardServiceClient, error) {
	if c, ok := n.clients.Load(addr); ok {
		return clusterv1.NewForwardServiceClient(c.(*grpc.ClientConn)), nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // the dialer does mutual TLS
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return n.rpcNet.dial(ctx, a) }),
	)
	if err != nil {
		return nil, fmt.Errorf("rpc client for %s: %w", addr, err)
	}
	if prev, loaded := n.clients.LoadOrStore(addr, cc); loaded {
		cc.Close()
		cc = prev.(*grpc.ClientConn)
	}
	return clusterv1.NewForwardServiceClient(cc), nil
}

// fromStatus turns a forwarding RPC error back into this package's errors.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok {
			continue
		}
		switch info.GetReason() {
		case "NOT_LEADER":
			return &NotLeaderError{LeaderID: info.GetMetadata()["leader_id"], LeaderRPCAddr: info.GetMetadata()["leader_addr"]}
		case "NO_QUORUM":
			return fmt.Errorf("%w: %s", ErrNoQuorum, st.Message())
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		// Could not reach the leader: it may have just died.
		return fmt.Errorf("%w: leader unreachable: %s", errNoLeader, st.Message())
	case codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", ErrNodeAlive, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("forwarded call: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("forwarded call: %s: %s", st.Code(), st.Message())
}
