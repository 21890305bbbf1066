package aliyun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
	"golang.org/x/time/rate"

	"github.com/weftnet/weft/internal/backoff"
)

// call runs one VPC action with rate limiting, metrics and retries. do must build a fresh request per attempt
// (a new SignatureNonce) but keep any ClientToken it was given.
func (c *Client) call(ctx context.Context, action string, do func(*vpc.Client) error) error {
	return c.retry(ctx, action, c.c.Attempts, func(s sdkClients) error { return do(s.vpc) })
}

// callECS is call for ECS actions.
func (c *Client) callECS(ctx context.Context, action string, do func(*ecs.Client) error) error {
	return c.retry(ctx, action, c.c.Attempts, func(s sdkClients) error { return do(s.ecs) })
}

// callQuotas is call for Quota Center actions, with at most two attempts: the caller has a fallback, so a
// Quota Center that does not answer must not hold it up for a whole backoff sequence.
func (c *Client) callQuotas(ctx context.Context, action string, do func(*quotas.Client) error) error {
	return c.retry(ctx, action, min(c.c.Attempts, 2), func(s sdkClients) error { return do(s.quotas) })
}

func (c *Client) retry(ctx context.Context, action string, attempts int, do func(sdkClients) error) error {
	b := backoff.Backoff{Min: c.c.BackoffBase, Max: c.c.BackoffCap}
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		if err := c.limiter(action).Wait(ctx); err != nil {
			return err
		}
		start := time.Now()
		err := c.attempt(ctx, action, do)
		c.metrics.observe(action, outcome(err), time.Since(start))
		if err == nil {
			return nil
		}
		last = err
		if !Retryable(err) || attempt == attempts {
			break
		}
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
	return last
}

func (c *Client) attempt(ctx context.Context, action string, do func(sdkClients) error) error {
	s, err := c.clients(ctx)
	if err == nil {
		err = do(s)
	}
	return translate(action, err)
}

// limiter is the client-side token bucket of one action.
func (c *Client) limiter(action string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.limits[action]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(c.c.RatePerSecond), max(1, int(c.c.RatePerSecond)))
		c.limits[action] = l
	}
	return l
}

// newToken is a ClientToken: one per logical create, reused by its retries.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
