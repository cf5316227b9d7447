package node

import (
	"fmt"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/node/request"
	"github.com/gouwsgi/gouwsgi/node/router"
)

// router puts the internal routing rules (and static files) in front of
// next. Without routing options the pool is called directly.
func (n *Node) router(next request.Handler) (request.Handler, error) {
	var opts router.Options
	for _, e := range n.cfg.Entries() {
		if router.IsOption(e.Name) {
			opts = append(opts, router.Option{Name: e.Name, Value: e.Value})
		}
	}
	if len(opts) == 0 {
		return next, nil
	}
	r, err := router.Parse(opts)
	if err != nil {
		return nil, err
	}
	caches := routerCaches{n.caches}
	if err := r.Validate(caches); err != nil {
		return nil, err
	}
	n.servesAlone = r.ServesAlone()
	return r.Handler(next, caches, n.log), nil
}

// ServesAlone reports whether the routing rules or static files let the
// master answer some requests without a worker (router.ServesAlone).
func (n *Node) ServesAlone() bool { return n.servesAlone }

// routerCaches adapts the cache registry to the router's view of it.
type routerCaches struct{ reg *cache.Registry }

func (rc routerCaches) Get(name string) (router.CacheStore, bool) {
	s, ok := rc.reg.Get(name)
	if !ok {
		return nil, false
	}
	return routerStore{s}, true
}

// routerStore maps the router's math op names onto cache.MathOp.
type routerStore struct{ cache.Store }

func (s routerStore) Math(op, key string, operand int64, expires time.Duration) (int64, error) {
	m, ok := mathOps[op]
	if !ok {
		return 0, fmt.Errorf("unknown cache math op %q", op)
	}
	return s.Store.Math(m, key, operand, expires)
}
