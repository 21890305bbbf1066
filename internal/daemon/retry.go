package daemon

import (
	"context"
	"math/rand/v2"
	"time"

	"k8s.io/klog/v2"
)

// backoff is capped exponential backoff with full jitter on the upper half.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	half := b.cur / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// retry runs fn until it succeeds or ctx ends, logging each failure with what was being attempted and setting
// the readiness reason, so an operator sees why the node is not ready.
func retry(ctx context.Context, r *readiness, what string, fn func() error) error {
	b := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.next()
		klog.Errorf("%s: %v (retrying in %s)", what, err, d.Round(time.Millisecond))
		r.set(false, what+": "+err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}
