package aliyun

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimits are the client-side budgets per minute of the ENI actions, Terway's defaults: a node that
// restarts, or a fleet that scales out at once, spreads its calls instead of tripping the service's flow control
// (eni.md, failure 7).
var DefaultRateLimits = map[string]int{
	"CreateNetworkInterface": 500, "AttachNetworkInterface": 500, "DeleteNetworkInterface": 500,
	"DescribeNetworkInterfaces": 800,
	"DetachNetworkInterface":    400, "AssignPrivateIpAddresses": 400, "UnassignPrivateIpAddresses": 400,
	"AssignIpv6Addresses": 400, "UnassignIpv6Addresses": 400,
	"DescribeVSwitches": 300,
}

// perMinute is the budget of action: RateLimits over DefaultRateLimits; ok false when neither names it.
func (c Config) perMinute(action string) (n int, ok bool) {
	if n, ok = c.RateLimits[action]; ok {
		return n, true
	}
	n, ok = DefaultRateLimits[action]
	return n, ok
}

// validateRateLimits refuses negative budgets, naming the action.
func validateRateLimits(m map[string]int) error {
	for action, n := range m {
		if n < 0 {
			return fmt.Errorf("aliyun: RateLimits[%q] = %d: expected calls per minute >= 0 (0: unlimited)", action, n)
		}
	}
	return nil
}

// newLimiter is the token bucket of one action: per-minute budgets refill evenly and burst one second's worth
// (at least one call); actions without a budget get RatePerSecond. nil: unlimited.
func (c Config) newLimiter(action string) *rate.Limiter {
	if n, ok := c.perMinute(action); ok {
		if n == 0 {
			return nil
		}
		return rate.NewLimiter(rate.Limit(float64(n)/60), max(1, n/60))
	}
	return rate.NewLimiter(rate.Limit(c.RatePerSecond), max(1, int(c.RatePerSecond)))
}

// limiter is the client-side token bucket of one action (nil: unlimited).
func (c *Client) limiter(action string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.limits[action]
	if !ok {
		l = c.c.newLimiter(action)
		c.limits[action] = l
	}
	return l
}

// wait takes a token of action's bucket, sleeping until it is due. A context that ends first, or whose
// deadline comes before the token, returns at once with the token given back; the error is then the
// context's (or nil when only the deadline is known to come too early: gaveUp reads that as the deadline).
func (c *Client) wait(ctx context.Context, action string) (waited bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l := c.limiter(action)
	if l == nil {
		return false, nil
	}
	now := c.now()
	r := l.ReserveN(now, 1) // burst >= 1: always OK
	d := r.DelayFrom(now)
	if d <= 0 {
		return false, nil
	}
	c.metrics.waited(action, d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(now.Add(d)) {
		r.CancelAt(now)
		return true, errWouldMissDeadline
	}
	if err := c.sleep(ctx, d); err != nil {
		r.CancelAt(c.now())
		return true, err
	}
	return true, nil
}

// errWouldMissDeadline: the token comes after the context's deadline.
var errWouldMissDeadline = fmt.Errorf("the client-side rate limit's next token comes after the deadline")

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
