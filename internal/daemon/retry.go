package daemon

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/backoff"
)

// retry runs fn until it succeeds or ctx ends, logging each failure with what was being attempted and setting
// the readiness reason, so an operator sees why the node is not ready.
func retry(ctx context.Context, r *readiness, what string, fn func() error) error {
	b := backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.Next()
		klog.Errorf("%s: %v (retrying in %s)", what, err, d.Round(time.Millisecond))
		r.set(false, what+": "+err.Error())
		if err := backoff.Sleep(ctx, d); err != nil {
			return err
		}
	}
}
