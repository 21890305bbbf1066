package aliyun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"

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
		if _, err := c.wait(ctx, action); err != nil {
			return gaveUp(ctx, action, err, attempt-1, last)
		}
		start := time.Now()
		err := c.attempt(ctx, action, do)
		if ctx.Err() != nil {
			// The attempt was cut short: its error is only the cancellation; the one before says more.
			return gaveUp(ctx, action, fmt.Errorf("the attempt in flight had no answer after %s", time.Since(start).Round(time.Millisecond)), attempt-1, last)
		}
		c.metrics.observe(action, outcome(err), time.Since(start))
		if err == nil {
			return nil
		}
		last = err
		if !Retryable(err) || attempt == attempts {
			break
		}
		if err := b.Wait(ctx); err != nil {
			return gaveUp(ctx, action, nil, attempt, last)
		}
	}
	return last
}

// gaveUp is the error of a call whose context ended (a deadline, a signal) or would end before the next
// attempt: it names the action, why waiting stopped and what the attempts so far got, and wraps the context's
// error (errors.Is(err, context.DeadlineExceeded) holds).
func gaveUp(ctx context.Context, action string, detail error, failed int, last error) error {
	why := ctx.Err()
	if why == nil {
		why = context.DeadlineExceeded // the rate limiter saw the deadline coming
	}
	msg := action + ": stopped waiting for the cloud API"
	if cause := context.Cause(ctx); cause != nil && cause != why {
		msg += " (" + cause.Error() + ")"
	}
	if detail != nil {
		msg += ": " + detail.Error()
	}
	if last != nil {
		msg += fmt.Sprintf("; %d attempt(s) failed before, the last: %s", failed, strings.TrimPrefix(last.Error(), action+": "))
	}
	return &gaveUpError{msg: msg, why: why}
}

// gaveUpError reads as its message and unwraps to the context's error.
type gaveUpError struct {
	msg string
	why error
}

func (e *gaveUpError) Error() string { return e.msg }
func (e *gaveUpError) Unwrap() error { return e.why }

func (c *Client) attempt(ctx context.Context, action string, do func(sdkClients) error) error {
	s, at, err := c.clients(ctx)
	if err == nil {
		err = do(s)
		if bad := at.badAnswer(); bad != nil {
			return fmt.Errorf("%s: %w", action, bad)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			// Not wrapped: the caller's context is live, so this is a retryable failure, not a cancellation.
			return fmt.Errorf("%s: no answer within the %s timeout of an attempt (%s)", action, c.c.Timeout, translate(action, err).Error()[len(action)+2:])
		}
	}
	return translate(action, err)
}

// newToken is a ClientToken: one per logical create, reused by its retries.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
