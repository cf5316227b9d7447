package worker

import (
	"context"
	"fmt"
)

// ScaleWait is Scale for callers that need the outcome (the admin API): it
// returns how many workers the master wants running once the change is
// made, or an error when nothing could change (already at the bound).
func (p *Pool) ScaleWait(ctx context.Context, delta int) (int, error) {
	res := make(chan [2]int, 1)
	select {
	case p.ev <- func() {
		before := p.countWanted()
		// Workers live as long as the pool, not as the caller's request.
		p.scale(p.runCtx, delta)
		res <- [2]int{before, p.countWanted()}
	}:
	case <-ctx.Done():
		return 0, fmt.Errorf("scale workers: %w", ctx.Err())
	}
	select {
	case r := <-res:
		if r[0] == r[1] {
			return r[1], fmt.Errorf("scale workers by %d: already at the bound (cheaper %d, processes %d)", delta, max(p.cfg.Cheaper, 1), p.cfg.Processes)
		}
		return r[1], nil
	case <-ctx.Done():
		return 0, fmt.Errorf("scale workers: %w", ctx.Err())
	}
}
