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
	lalarm "github.com/gouwsgi/gouwsgi/legion/alarm"
	"github.com/gouwsgi/gouwsgi/legion/hooks"
	"github.com/gouwsgi/gouwsgi/legion/rcache"
	"github.com/gouwsgi/gouwsgi/node/alarm"
	"github.com/gouwsgi/gouwsgi/node/config"
	"github.com/gouwsgi/gouwsgi/rpc/bind"
	"github.com/gouwsgi/gouwsgi/rpc/cluster"
)

// cluster is a running legion node, the hooks reacting to it and the
// cluster side of the alarms.
type clusterNode struct {
	lc       legion.Config
	hooks    []hooks.Hook
	alarms   *lalarm.Service
	bridge   *bind.ClusterAlarms // node/alarm <-> legion/alarm
	node     *legion.Node
	caches   *rcache.Group // replicate=1 caches; nil when none
	runner   *hooks.Runner
	done     chan error
	stopOnce sync.Once
}

// hookAlarms lets alarm: hook actions raise the node's alarms.
type hookAlarms struct{ m *alarm.Manager }

func (h hookAlarms) Raise(_ context.Context, name, msg string) error {
	return h.m.RaiseAlarm(name, msg)
}

// newCluster reads the legion options and prepares the cluster alarms,
// which the alarm manager needs before the legion node exists; build
// makes the node. nil when the configuration has no legion (a node
// without legion runs no Raft and keeps its alarms local).
func newCluster(cfg *config.Config, acfg alarm.Config, log *slog.Logger) (*clusterNode, error) {
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
		if len(cfg.List("alarm-cluster")) > 0 {
			return nil, fmt.Errorf("alarm-cluster given without a legion option: cluster events only happen in a legion")
		}
		return nil, nil
	}
	if err := lc.Validate(); err != nil {
		return nil, err
	}
	svc := lalarm.New(lalarm.Config{Logger: log})
	return &clusterNode{lc: lc, hooks: hookList, alarms: svc, bridge: bind.NewClusterAlarms(svc, acfg.Freq), done: make(chan error, 1)}, nil
}

// build creates the hooks runner and the legion node; am is the alarm
// manager that alarm: hooks, alarm-cluster events and incidents handed
// over by the cluster go to.
func (c *clusterNode) build(cfg *config.Config, am *alarm.Manager, log *slog.Logger) error {
	lc := c.lc
	events, err := newClusterEvents(cfg, am, lc.NodeName)
	if err != nil {
		return err
	}
	c.bridge.SetManager(am)
	hc := hooks.DefaultConfig()
	hc.Hooks, hc.Logger, hc.Alarms = c.hooks, log, hookAlarms{am}
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
		return err
	}
	c.runner = runner
	reactor := &hooks.Reactor{R: runner, Node: lc.NodeName, Lord: func(name string) (string, uint64) {
		if c.node == nil {
			return "", 0
		}
		lg, _ := c.node.FSM().Legions().Get(name)
		if lg.Lord == "" {
			return "", 0
		}
		// Hooks name nodes as GOUWSGI_NODE does: by member name, not id.
		if m, ok := lg.Member(lg.Lord); ok && m.Name != "" {
			return m.Name, lg.Epoch
		}
		return lg.Lord, lg.Epoch
	}}
	machines := []legion.Machine{c.alarms.Registration()}
	if c.caches, err = replicatedCaches(cfg, log); err != nil {
		_ = runner.Close(context.Background())
		return err
	}
	if c.caches != nil {
		machines = append(machines, c.caches.Machine())
	}
	c.node, err = legion.New(lc, legion.Options{
		Logger: log, Reactor: clusterReactor{Reactor: reactor, events: events},
		RegisterRPC: func(s *grpc.Server, n *legion.Node) { cluster.Register(s, n) },
		Machines:    machines,
	})
	if err != nil {
		_ = runner.Close(context.Background())
		return err
	}
	return nil
}

// start runs the legion node, and the cluster alarms once it is up,
// until ctx ends.
func (c *clusterNode) start(ctx context.Context) {
	go func() { c.done <- c.node.Run(ctx) }()
	go func() {
		select {
		case <-c.node.Started():
			if c.caches != nil {
				c.caches.Start(c.node)
			}
			c.alarms.Run(ctx, c.node, c.bridge)
		case <-ctx.Done():
		}
	}()
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
	if c.caches != nil {
		c.caches.Stop()
	}
	if err := c.runner.Close(ctx); err != nil && !errors.Is(err, hooks.ErrClosed) {
		log.Error(fmt.Sprintf("legion hooks: %v", err))
	}
}
