package aliyun

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Needs names the metadata an Options caller wants beyond the region. Only what is needed and not given is
// read, so `weft quota --region R --vpc-id V` works off an instance.
type Needs uint8

const (
	NeedInstance Needs = 1 << iota // instance-id
	NeedVPC                        // vpc-id (unless Options.VPCID)
	NeedVPCCIDR                    // vpc-cidr-block
)

// Options configure NewFromMetadata. Empty fields come from the environment (EnvConfig) and then the instance
// metadata server.
type Options struct {
	Region string       // overrides ALIBABA_CLOUD_REGION_ID and the metadata region-id
	VPCID  string       // overrides the metadata vpc-id
	Static *Credentials // configured keys, tried first in the credential chain
	Need   Needs
	// Registerer receives the client metrics (shared with other clients on it, see Config.Registerer).
	Registerer prometheus.Registerer
	// Getenv reads the environment (nil: the process environment).
	Getenv func(string) string
	// HTTPClient talks to the metadata server (nil: a client with a 5 s timeout).
	HTTPClient *http.Client
	// Config, when set, adjusts the client configuration before it is built (retries, rate, timeouts).
	Config func(*Config)
}

// Identity is where the client runs, as the metadata server (or the overrides) tell it.
type Identity struct {
	InstanceID string       // with NeedInstance
	Region     string       // always
	VPCID      string       // with NeedVPC or Options.VPCID
	VPCCIDR    netip.Prefix // with NeedVPCCIDR
	// RegionFrom and VPCFrom say where the figures came from ("configuration", "ALIBABA_CLOUD_REGION_ID",
	// "metadata"), for the start-up log.
	RegionFrom, VPCFrom string
	// Env is the environment the client was configured from (String redacts it).
	Env Env
}

// NewFromMetadata builds a client for the instance it runs on: the region and the requested identity from the
// overrides, the environment or the metadata server (METADATA_ENDPOINT, else the real address), endpoints and
// scheme from the environment, and the default credential chain (configured keys, environment, credentials
// file, the instance's RAM role) against the same metadata server. It is the one constructor ali-vpc,
// `weft quota` and `weft plan --instance-type-source api` share.
func NewFromMetadata(ctx context.Context, o Options) (*Client, Identity, error) {
	env := EnvConfig(o.Getenv)
	md := &Metadata{BaseURL: env.MetadataURL(), HTTPClient: o.HTTPClient}
	id := Identity{Env: env}
	get := func(path, what string) (string, error) {
		v, err := md.Get(ctx, path)
		if err != nil {
			return "", fmt.Errorf("aliyun: %s not configured and the instance metadata server (%s) did not answer: %w", what, md.BaseURL, err)
		}
		return strings.TrimSpace(v), nil
	}
	var err error
	switch {
	case o.Region != "":
		id.Region, id.RegionFrom = o.Region, "configuration"
	case env.Region != "":
		id.Region, id.RegionFrom = env.Region, "ALIBABA_CLOUD_REGION_ID"
	default:
		if id.Region, err = get("region-id", "the region"); err != nil {
			return nil, Identity{}, err
		}
		id.RegionFrom = "metadata"
	}
	switch {
	case o.VPCID != "":
		id.VPCID, id.VPCFrom = o.VPCID, "configuration"
	case o.Need&NeedVPC != 0:
		if id.VPCID, err = get("vpc-id", "the VPC id"); err != nil {
			return nil, Identity{}, err
		}
		id.VPCFrom = "metadata"
	}
	if o.Need&NeedInstance != 0 {
		if id.InstanceID, err = get("instance-id", "the instance id"); err != nil {
			return nil, Identity{}, err
		}
	}
	if o.Need&NeedVPCCIDR != 0 {
		v, err := get("vpc-cidr-block", "the VPC CIDR")
		if err != nil {
			return nil, Identity{}, err
		}
		if id.VPCCIDR, err = netip.ParsePrefix(v); err != nil {
			return nil, Identity{}, fmt.Errorf("aliyun: metadata vpc-cidr-block %q: expected a CIDR", v)
		}
	}
	c := Config{Region: id.Region, Registerer: o.Registerer, Getenv: o.Getenv,
		Credentials: DefaultChain(ChainOptions{Static: o.Static, Getenv: o.Getenv, MetadataURL: md.BaseURL, HTTPClient: o.HTTPClient})}
	if o.Config != nil {
		o.Config(&c)
	}
	cl, err := NewClient(c)
	if err != nil {
		return nil, Identity{}, err
	}
	return cl, id, nil
}
