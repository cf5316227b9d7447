package admin

import (
	"context"
	"math"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
)

type nodeServer struct {
	adminv1.UnimplementedNodeServiceServer
	node Node
}

func (s *nodeServer) GetStats(ctx context.Context, _ *adminv1.GetStatsRequest) (*adminv1.GetStatsResponse, error) {
	st, err := s.node.Stats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &adminv1.GetStatsResponse{
		Version:           st.Version,
		NodeId:            st.NodeID,
		ListenQueue:       st.ListenQueue,
		ListenQueueErrors: st.ListenQueueErrors,
		SignalQueue:       st.SignalQueue,
		Load:              st.Load,
		Pid:               int32(st.PID),
		Uid:               int32(st.UID),
		Gid:               int32(st.GID),
		Cwd:               st.Cwd,
		Workers:           workersPB(st.Workers),
		Caches:            cachesPB(st.Caches),
	}
	for _, so := range st.Sockets {
		resp.Sockets = append(resp.Sockets, &adminv1.Socket{
			Name: so.Name, Proto: so.Proto, Queue: so.Queue, MaxQueue: so.MaxQueue,
			Shared: boolInt(so.Shared), CanOffload: boolInt(so.CanOffload),
		})
	}
	return resp, nil
}

func (s *nodeServer) ListWorkers(ctx context.Context, _ *adminv1.ListWorkersRequest) (*adminv1.ListWorkersResponse, error) {
	st, err := s.node.Stats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.ListWorkersResponse{Workers: workersPB(st.Workers)}, nil
}

func (s *nodeServer) Reload(ctx context.Context, req *adminv1.ReloadRequest) (*adminv1.ReloadResponse, error) {
	if err := s.node.Reload(ctx, req.GetChain()); err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.ReloadResponse{}, nil
}

func (s *nodeServer) ScaleWorkers(ctx context.Context, req *adminv1.ScaleWorkersRequest) (*adminv1.ScaleWorkersResponse, error) {
	if req.GetDelta() == 0 {
		return nil, invalid("delta must not be 0: give the number of workers to add (positive) or remove (negative)")
	}
	n, err := s.node.Scale(ctx, int(req.GetDelta()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.ScaleWorkersResponse{Workers: clampInt32(n)}, nil
}

func workersPB(ws []Worker) []*adminv1.Worker {
	out := make([]*adminv1.Worker, 0, len(ws))
	for _, w := range ws {
		pw := &adminv1.Worker{
			Id: clampInt32(w.ID), Pid: clampInt32(w.PID), Accepting: w.Accepting,
			Requests: w.Requests, DeltaRequests: w.DeltaRequests, Exceptions: w.Exceptions,
			HarakiriCount: w.HarakiriCount, Signals: w.Signals, SignalQueue: w.SignalQueue,
			Status: w.Status, Rss: w.RSS, Vsz: w.VSZ,
			RunningTime:  uint64(w.RunningTime.Microseconds()),
			RespawnCount: w.RespawnCount, Tx: w.TX,
			AvgRt: uint64(w.AvgRT.Microseconds()),
		}
		if !w.LastSpawn.IsZero() {
			pw.LastSpawn = w.LastSpawn.Unix()
		}
		out = append(out, pw)
	}
	return out
}

func cachesPB(cs []CacheStats) []*adminv1.Cache {
	out := make([]*adminv1.Cache, 0, len(cs))
	for _, c := range cs {
		pc := &adminv1.Cache{
			Name: c.Name, Hash: c.Hash, Hashsize: c.HashSize, Keysize: c.KeySize,
			MaxItems: c.MaxItems, Blocks: c.Blocks, Blocksize: c.BlockSize,
			Items: c.Items, Hits: c.Hits, Miss: c.Miss, Full: c.Full,
			Replicated: c.Replicated,
		}
		if !c.LastModifiedAt.IsZero() {
			pc.LastModifiedAt = c.LastModifiedAt.Unix()
		}
		out = append(out, pc)
	}
	return out
}

// boolInt renders a flag as uWSGI's stats do (0 or 1).
func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func clampInt32(n int) int32 {
	switch {
	case n > math.MaxInt32:
		return math.MaxInt32
	case n < math.MinInt32:
		return math.MinInt32
	}
	return int32(n)
}
