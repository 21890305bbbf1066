package aliyun

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeTime is the rate limiters' clock in these tests: a sleep moves it forward by the duration asked, and
// every sleep is recorded, so spacing is asserted on the waits computed, never on wall time.
type fakeTime struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (f *fakeTime) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeTime) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	return nil
}

func limitedClient(t *testing.T, limits map[string]int, reg prometheus.Registerer) (*Client, *fakeTime) {
	t.Helper()
	c, err := NewClient(Config{Region: "cn-hangzhou", Credentials: Static{AccessKeyID: "k", AccessKeySecret: "s"}, RateLimits: limits,
		Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTime{t: time.Now()}
	c.now, c.sleep = ft.now, ft.sleep
	return c, ft
}

// A budget of 60 a minute spaces calls one second apart after the burst of one; each wait is counted.
func TestRateLimitSpacesCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, ft := limitedClient(t, map[string]int{"AttachNetworkInterface": 60}, reg)
	for range 4 {
		if _, err := c.wait(context.Background(), "AttachNetworkInterface"); err != nil {
			t.Fatal(err)
		}
	}
	if len(ft.sleeps) != 3 {
		t.Fatalf("waits %v, want 3 (the first call takes the burst)", ft.sleeps)
	}
	for _, d := range ft.sleeps {
		if d != time.Second {
			t.Fatalf("waits %v, want 1 s each", ft.sleeps)
		}
	}
	if n := testutil.ToFloat64(c.metrics.waits.WithLabelValues("AttachNetworkInterface")); n != 3 {
		t.Fatalf("weft_cloud_api_rate_limited_total %v, want 3", n)
	}
	if n := testutil.ToFloat64(c.metrics.waitSeconds.WithLabelValues("AttachNetworkInterface")); n != 3 {
		t.Fatalf("weft_cloud_api_rate_limit_wait_seconds_total %v, want 3", n)
	}
}

// With no RateLimits, Terway's per-minute budgets apply: DescribeNetworkInterfaces 800 a minute bursts 13 calls
// (a second's worth), then one every 75 ms; an action with no budget keeps RatePerSecond; 0 lifts a budget.
func TestRateLimitDefaults(t *testing.T) {
	c, ft := limitedClient(t, nil, nil)
	for i := range 14 {
		if _, err := c.wait(context.Background(), "DescribeNetworkInterfaces"); err != nil {
			t.Fatal(err)
		}
		if i < 13 && len(ft.sleeps) != 0 {
			t.Fatalf("call %d waited %v within the burst", i+1, ft.sleeps)
		}
	}
	if want := time.Minute / 800; len(ft.sleeps) != 1 || ft.sleeps[0] < want-time.Millisecond || ft.sleeps[0] > want+time.Millisecond {
		t.Fatalf("waits %v, want one of %s", ft.sleeps, want)
	}
	for action, n := range map[string]int{"CreateNetworkInterface": 500, "AttachNetworkInterface": 500, "DeleteNetworkInterface": 500,
		"DescribeNetworkInterfaces": 800, "DetachNetworkInterface": 400, "AssignPrivateIpAddresses": 400,
		"UnassignPrivateIpAddresses": 400, "DescribeVSwitches": 300} {
		if l := c.limiter(action); l == nil || float64(l.Limit()) != float64(n)/60 {
			t.Errorf("%s: limiter %v, want %d a minute", action, l, n)
		}
	}
	if l := c.limiter("DescribeRouteEntryList"); l == nil || float64(l.Limit()) != 10 {
		t.Errorf("an action without a budget: %v, want RatePerSecond (10/s)", l)
	}
	u, ft := limitedClient(t, map[string]int{"CreateNetworkInterface": 0}, nil)
	for range 1000 {
		if _, err := u.wait(context.Background(), "CreateNetworkInterface"); err != nil {
			t.Fatal(err)
		}
	}
	if len(ft.sleeps) != 0 {
		t.Fatalf("an unlimited action waited %d times", len(ft.sleeps))
	}
	if _, err := NewClient(Config{Region: "r", Credentials: Static{AccessKeyID: "k", AccessKeySecret: "s"},
		RateLimits: map[string]int{"CreateNetworkInterface": -1}}); err == nil || !strings.Contains(err.Error(), "CreateNetworkInterface") {
		t.Fatalf("a negative budget: %v", err)
	}
}

// A wait ends with its context, and gives its token back: the next caller is not charged for it. A deadline
// that comes before the token ends the wait at once. Through a call, the error unwraps to the context's and
// no attempt is made.
func TestRateLimitRespectsContext(t *testing.T) {
	c, ft := limitedClient(t, map[string]int{"AssignPrivateIpAddresses": 60}, nil)
	l := c.limiter("AssignPrivateIpAddresses")
	if _, err := c.wait(context.Background(), "AssignPrivateIpAddresses"); err != nil { // the burst
		t.Fatal(err)
	}
	before := l.TokensAt(ft.now())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.wait(ctx, "AssignPrivateIpAddresses"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if after := l.TokensAt(ft.now()); after != before {
		t.Fatalf("tokens %v after a cancelled wait, %v before: the token was not given back", after, before)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), ft.now().Add(100*time.Millisecond))
	defer dcancel()
	if _, err := c.wait(dctx, "AssignPrivateIpAddresses"); !errors.Is(err, errWouldMissDeadline) {
		t.Fatalf("a wait beyond the deadline: %v", err)
	}
	if len(ft.sleeps) != 0 || l.TokensAt(ft.now()) != before {
		t.Fatalf("slept %v, tokens %v (want none and %v)", ft.sleeps, l.TokensAt(ft.now()), before)
	}
	attempts := 0
	err := c.retry(ctx, "AssignPrivateIpAddresses", 3, func(sdkClients) error { attempts++; return nil })
	if !errors.Is(err, context.Canceled) || attempts != 0 || !strings.Contains(err.Error(), "AssignPrivateIpAddresses") {
		t.Fatalf("call with a cancelled context: %v after %d attempts", err, attempts)
	}
	err = c.retry(dctx, "AssignPrivateIpAddresses", 3, func(sdkClients) error { attempts++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || attempts != 0 {
		t.Fatalf("call whose deadline comes before the token: %v after %d attempts", err, attempts)
	}
	// The real sleep ends with the context too.
	done := make(chan error, 1)
	go func() { done <- sleepCtx(ctx, time.Hour) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("sleepCtx: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sleepCtx does not end with its context")
	}
}
