package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/legion/rcache"
	"github.com/gouwsgi/gouwsgi/node/config"
)

// replicatedCaches builds the caches of the cache2 lines with replicate=1;
// nil when there are none. Their machine must be registered with the
// legion node before it starts.
func replicatedCaches(cfg *config.Config, log *slog.Logger) (*rcache.Group, error) {
	var cfgs []cache.Config
	for _, line := range cfg.List("cache2") {
		c, err := cache.ParseConfig(line)
		if err != nil {
			return nil, fmt.Errorf("cache2 %q: %w", line, err)
		}
		if c.Replicate {
			cfgs = append(cfgs, c)
		}
	}
	if len(cfgs) == 0 {
		return nil, nil
	}
	g, err := rcache.New(cfgs, rcache.Options{
		Logger:        log,
		SweepInterval: time.Duration(cfg.Int("cache-expire-freq")) * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("cache2: %w", err)
	}
	return g, nil
}

// cacheRegistry is the registry the node starts with: the replicated
// caches, to which the node adds its local ones (so with both kinds, a
// replicated cache is the default one).
func (c *clusterNode) cacheRegistry() (*cache.Registry, error) {
	reg := &cache.Registry{}
	if c != nil && c.caches != nil {
		if err := c.caches.Register(reg); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
