// Package backoff is weft's one retry delay: capped exponential backoff with jitter on the upper half of each
// step, and a sleep that ends with its context. The daemon's start-up steps, the etcd watches, the cloud client
// and the route controller all wait with it, so a restart storm is spread out the same way everywhere.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing delays: Min, 2*Min, ... up to Max, each drawn uniformly from [d/2, d]. The zero value
// is usable (100 ms up to 10 s). It is not safe for concurrent use; give each retry loop its own.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Defaults for the zero Backoff.
const (
	DefaultMin = 100 * time.Millisecond
	DefaultMax = 10 * time.Second
)

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	if hi < lo {
		hi = lo
	}
	switch {
	case b.cur == 0:
		b.cur = lo
	case b.cur > hi/2:
		b.cur = hi
	default:
		b.cur *= 2
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// Reset starts the sequence again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for the next delay; it returns ctx.Err() if ctx ends first, else nil.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep waits d or until ctx ends, whichever is first; it returns ctx.Err() when ctx ended.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Jitter returns d scaled by a random factor in [1-f, 1+f] (f is clamped to 0..1), for periodic loops that
// should not tick in step across nodes.
func Jitter(d time.Duration, f float64) time.Duration {
	f = min(max(f, 0), 1)
	if d <= 0 || f == 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}
