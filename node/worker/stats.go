package worker

import (
	"time"

	"github.com/gouwsgi/gouwsgi/node/sysinfo"
)

// WorkerStats is one entry of the stats server's workers[], with uWSGI's
// field names so uwsgitop and friends read it unchanged.
type WorkerStats struct {
	ID            int         `json:"id"`
	PID           int         `json:"pid"`
	Accepting     int         `json:"accepting"`
	Requests      int64       `json:"requests"`
	DeltaRequests int64       `json:"delta_requests"`
	Exceptions    int64       `json:"exceptions"`
	HarakiriCount int64       `json:"harakiri_count"`
	Signals       int64       `json:"signals"`
	SignalQueue   int64       `json:"signal_queue"`
	Status        string      `json:"status"`
	RSS           uint64      `json:"rss"`
	VSZ           uint64      `json:"vsz"`
	RunningTime   int64       `json:"running_time"`
	LastSpawn     int64       `json:"last_spawn"`
	RespawnCount  int64       `json:"respawn_count"`
	TX            int64       `json:"tx"`
	AvgRT         int64       `json:"avg_rt"`
	Apps          []AppStats  `json:"apps"`
	Cores         []CoreStats `json:"cores"`
}

// AppStats mirrors uWSGI's workers[].apps[] (one app per worker here).
type AppStats struct {
	ID          int    `json:"id"`
	Modifier1   int    `json:"modifier1"`
	Mountpoint  string `json:"mountpoint"`
	StartupTime int64  `json:"startup_time"`
	Requests    int64  `json:"requests"`
	Exceptions  int64  `json:"exceptions"`
	Chdir       string `json:"chdir"`
}

// CoreStats mirrors uWSGI's workers[].cores[]: one per thread.
type CoreStats struct {
	ID                int      `json:"id"`
	Requests          int64    `json:"requests"`
	StaticRequests    int64    `json:"static_requests"`
	RoutedRequests    int64    `json:"routed_requests"`
	OffloadedRequests int64    `json:"offloaded_requests"`
	WriteErrors       int64    `json:"write_errors"`
	ReadErrors        int64    `json:"read_errors"`
	InRequest         int      `json:"in_request"`
	Vars              []string `json:"vars"`
	ReqInfo           ReqInfo  `json:"req_info"`
}

// ReqInfo is when the core's running request started (0 when idle).
type ReqInfo struct {
	RequestStart int64 `json:"request_start"`
}

// PoolStats is the pool's part of the stats JSON.
type PoolStats struct {
	Workers     []WorkerStats
	ListenQueue int // requests waiting for a worker
	Slots, Busy int
}

// Stats reports every worker id up to processes, running or not (uWSGI
// lists cheaped workers with status "cheap").
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	workers := append([]*worker(nil), p.workers...)
	want := append([]bool(nil), p.want...)
	p.mu.Unlock()
	ps := PoolStats{ListenQueue: p.disp.waiting()}
	for wid := 1; wid < len(workers); wid++ {
		c := &p.counters[wid]
		ws := WorkerStats{
			ID: wid, Status: "cheap",
			Requests: c.requests.Load(), Exceptions: c.exceptions.Load(),
			HarakiriCount: c.harakiri.Load(), RespawnCount: c.respawns.Load(),
			TX: c.tx.Load(), LastSpawn: c.lastSpawn.Load(), RunningTime: c.runningMicros.Load(),
			Apps: []AppStats{}, Cores: []CoreStats{},
		}
		if w := workers[wid]; w != nil {
			ws.PID = w.pid
			ws.RunningTime += time.Since(w.spawnedAt).Microseconds()
			ws.Status = "idle"
			if w.accepting.Load() {
				ws.Accepting = 1
			}
			ws.RSS, ws.VSZ = sysinfo.Memory(w.pid)
			for _, s := range w.slots {
				ps.Slots++
				cs := CoreStats{ID: s.core, Vars: []string{}}
				if st := s.start.Load(); st != 0 {
					ws.Status = "busy"
					ps.Busy++
					cs.InRequest = 1
					cs.ReqInfo.RequestStart = st / int64(time.Second)
				}
				ws.Cores = append(ws.Cores, cs)
			}
			ws.Apps = append(ws.Apps, AppStats{Requests: ws.Requests, Exceptions: ws.Exceptions, StartupTime: 0})
		} else if want[wid] {
			ws.Status = "respawning"
		}
		if ws.Requests > 0 {
			ws.AvgRT = c.rtMicros.Load() / ws.Requests
		}
		ps.Workers = append(ps.Workers, ws)
	}
	return ps
}
