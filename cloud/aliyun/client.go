package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// DefaultQuotasEndpoint is the Quota Center's (central) endpoint.
const DefaultQuotasEndpoint = "quotas.aliyuncs.com"

// Config configures a Client. Empty endpoints and scheme are taken from the environment (EnvConfig).
type Config struct {
	Region         string
	VPCEndpoint    string // host[:port]; env VPC_ENDPOINT; default vpc.<region>.aliyuncs.com (SDK's)
	ECSEndpoint    string // host[:port]; env ECS_ENDPOINT; default the SDK's
	QuotasEndpoint string // host[:port]; env QUOTAS_ENDPOINT; default DefaultQuotasEndpoint
	Scheme         string // HTTP or HTTPS; env ALICLOUD_CLIENT_SCHEME; default HTTPS
	Credentials    CredentialProvider
	// Retry: attempts per call (default 5) and the backoff base and cap (default 500 ms, 10 s).
	Attempts      int
	BackoffBase   time.Duration
	BackoffCap    time.Duration
	RatePerSecond float64 // client-side limit of each action without a per-minute budget (default 10/s, burst 10)
	// RateLimits are client-side budgets in calls per minute by action, over DefaultRateLimits (Terway's
	// figures for the ENI actions): an action named here or there gets a token bucket refilled evenly with a
	// second's worth of burst; 0 makes it unlimited. Actions named in neither get RatePerSecond.
	RateLimits map[string]int
	// Registerer receives the client metrics. Clients sharing a Registerer share one set of collectors, so a
	// second client (a retried start, another command) counts into the same series instead of failing.
	Registerer prometheus.Registerer
	// Timeout bounds each HTTP attempt (default 10 s); a call also ends as soon as its context does.
	Timeout time.Duration
	// Getenv reads the environment for the fields left empty (nil: the process environment).
	Getenv func(string) string
}

// Client talks to the VPC, ECS and Quota Center APIs of one region.
type Client struct {
	c       Config
	metrics *clientMetrics

	transport *http.Transport // the connections every attempt's SDK clients share

	mu     sync.Mutex
	limits map[string]*rate.Limiter // nil value: unlimited

	now   func() time.Time                           // the rate limiters' clock
	sleep func(context.Context, time.Duration) error // their waits
}

// sdkClients are the SDK clients of one attempt.
type sdkClients struct {
	vpc    *vpc.Client
	ecs    *ecs.Client
	quotas *quotas.Client
}

// NewClient builds a client; nothing is contacted yet.
func NewClient(c Config) (*Client, error) {
	if c.Region == "" {
		return nil, errors.New("aliyun: region is required (metadata region-id or configuration)")
	}
	env := EnvConfig(c.Getenv)
	for _, f := range []struct {
		dst      *string
		env, def string
	}{
		{&c.VPCEndpoint, env.VPCEndpoint, ""}, {&c.ECSEndpoint, env.ECSEndpoint, ""},
		{&c.QuotasEndpoint, env.QuotasEndpoint, DefaultQuotasEndpoint}, {&c.Scheme, env.Scheme, "HTTPS"},
	} {
		if *f.dst == "" {
			*f.dst = f.env
		}
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	c.Scheme = strings.ToUpper(c.Scheme)
	if c.Scheme != "HTTP" && c.Scheme != "HTTPS" {
		return nil, fmt.Errorf("aliyun: scheme %q: expected HTTP or HTTPS", c.Scheme)
	}
	if c.Credentials == nil {
		return nil, errors.New("aliyun: no credential provider")
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = 500 * time.Millisecond
	}
	if c.BackoffCap == 0 {
		c.BackoffCap = 10 * time.Second
	}
	if err := validateRateLimits(c.RateLimits); err != nil {
		return nil, err
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 10
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	m, err := metricsFor(c.Registerer)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, metrics: m, transport: newBaseTransport(c.Timeout), limits: map[string]*rate.Limiter{},
		now: time.Now, sleep: sleepCtx}, nil
}

// Region is the region the client works in.
func (c *Client) Region() string { return c.c.Region }
