package aliyun

import (
	"context"
	"fmt"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
)

// sdkEndpointMaps fills the SDK's package-level endpoint maps, which each service's GetEndpointMap builds on first
// use without a lock: two clients built at once for the first time would race on them.
var sdkEndpointMaps sync.Once

// clients returns SDK clients for one attempt: the current credentials (a RAM role's keys rotate before they
// expire), over a transport bound to ctx (transport.go says why). Building them is cheap (no I/O); the
// connections are the Client's, shared.
func (c *Client) clients(ctx context.Context) (sdkClients, *attemptTransport, error) {
	cr, err := c.c.Credentials.Credentials(ctx)
	if err != nil {
		return sdkClients{}, nil, err
	}
	var cred auth.Credential = credentials.NewAccessKeyCredential(cr.AccessKeyID, cr.AccessKeySecret)
	if cr.SecurityToken != "" {
		cred = credentials.NewStsTokenCredential(cr.AccessKeyID, cr.AccessKeySecret, cr.SecurityToken)
	}
	sdkEndpointMaps.Do(func() { vpc.GetEndpointMap(); ecs.GetEndpointMap(); quotas.GetEndpointMap() })
	at := &attemptTransport{ctx: ctx, base: c.transport}
	cfg := sdk.NewConfig().WithScheme(c.c.Scheme).WithAutoRetry(false).WithTimeout(c.c.Timeout)
	cfg.Transport = at
	var next sdkClients
	if next.vpc, err = vpc.NewClientWithOptions(c.c.Region, cfg, cred); err != nil {
		return sdkClients{}, nil, fmt.Errorf("aliyun: SDK client: %w", err)
	}
	if next.ecs, err = ecs.NewClientWithOptions(c.c.Region, cfg, cred); err != nil {
		return sdkClients{}, nil, fmt.Errorf("aliyun: SDK client: %w", err)
	}
	if next.quotas, err = quotas.NewClientWithOptions(c.c.Region, cfg, cred); err != nil {
		return sdkClients{}, nil, fmt.Errorf("aliyun: SDK client: %w", err)
	}
	return next, at, nil
}

// prepare points an SDK request at the configured VPC endpoint and scheme.
func (c *Client) prepare(r requests.AcsRequest) { c.point(r, c.c.VPCEndpoint) }

// prepareECS points an SDK request at the configured ECS endpoint and scheme.
func (c *Client) prepareECS(r requests.AcsRequest) { c.point(r, c.c.ECSEndpoint) }

// prepareQuotas points an SDK request at the configured Quota Center endpoint and scheme.
func (c *Client) prepareQuotas(r requests.AcsRequest) { c.point(r, c.c.QuotasEndpoint) }

func (c *Client) point(r requests.AcsRequest, endpoint string) {
	if endpoint != "" {
		r.SetDomain(endpoint)
	}
	r.SetScheme(c.c.Scheme)
}
