package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/gouwsgi/gouwsgi/legion"
	"github.com/gouwsgi/gouwsgi/legion/hooks"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/node/config"
	"github.com/gouwsgi/gouwsgi/rpc/cluster"
)

// cluster is a running legion node and the hooks reacting to it.
type clusterNode struct {
	node     *legion.Node
	runner   *hooks.Runner
	done     chan error
	stopOnce sync.Once
}

// hookAlarms lets alarm: hook actions raise the node's alarms.
type hookAlarms struct{ m *alarm.Manager }

func (h hookAlarms) Raise(_ context.Context, name, msg string) error {
	return h.m.RaiseAlarm(name, msg)
}

// newCluster builds the legion node from the legion options; nil when the
// configuration has none (a node without legion runs no Raft).
func newCluster(cfg *config.Config, am *alarm.Manager, log *slog.Logger) (*clusterNode, error) {
	lc := legion.DefaultConfig()
	var hookList []hooks.Hook
	for _, e := range cfg.Entries() {
		if !strings.HasPrefix(e.Name, "legion") {
			continue
		}
		err := lc.ApplyOption(e.Name, e.Value)
		if errors.Is(err, legion.ErrUnknownOption) {
			h, herr := hooks.ParseOption(e.Name, e.Value)
			if herr != nil {
				return nil, herr
			}
			hookList = append(hookList, h)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	if len(lc.Legions) == 0 {
		if len(hookList) > 0 || len(lc.Peers) > 0 {
			return nil, fmt.Errorf("legion hooks or legion-node given without a legion option declaring the legion")
		}
		return nil, nil
	}
	if err := lc.Validate(); err != nil {
		return nil, err
	}
	c := &clusterNode{done: make(chan error, 1)}
	hc := hooks.DefaultConfig()
	hc.Hooks, hc.Logger, hc.Alarms = hookList, log, hookAlarms{am}
	// A VIP is added only while this node is the lord of its epoch: checked
	// under the VIP's lock, so a lease lost meanwhile wins.
	hc.Fence = func(name string, epoch uint64) bool {
		if c.node == nil || !c.node.IsLord(name) {
			return false
		}
		lg, ok := c.node.FSM().Legions().Get(name)
		return ok && lg.Epoch == epoch
	}
	runner, err := hooks.NewRunner(hc)
	if err != nil {
		return nil, err
	}
	c.runner = runner
	reactor := &hooks.Reactor{R: runner, Node: lc.NodeName, Lord: func(name string) string {
		if c.node == nil {
			return ""
		}
		lg, _ := c.node.FSM().Legions().Get(name)
		return lg.Lord
	}}
	c.node, err = legion.New(lc, legion.Options{
		Logger: log, Reactor: reactor,
		RegisterRPC: func(s *grpc.Server, n *legion.Node) { cluster.Register(s, n) },
	})
	if err != nil {
		_ = runner.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// start runs the legion node until ctx ends.
func (c *clusterNode) start(ctx context.Context) {
	go func() { c.done <- c.node.Run(ctx) }()
}

// stop hands lordship over (graceful leave), runs the death hooks and
// waits for the node to stop.
func (c *clusterNode) stop(log *slog.Logger) {
	c.stopOnce.Do(func() { c.shutdown(log) })
}

func (c *clusterNode) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.node.Shutdown(ctx); err != nil {
		log.Error(fmt.Sprintf("legion shutdown: %v", err))
	}
	select {
	case err := <-c.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error(fmt.Sprintf("legion stopped: %v", err))
		}
	case <-ctx.Done():
	}
	if err := c.runner.Close(ctx); err != nil && !errors.Is(err, hooks.ErrClosed) {
		log.Error(fmt.Sprintf("legion hooks: %v", err))
	}
}
