// Package etcd is weft's etcd (v3 API) subnet manager, storing leases exactly where and how upstream flanneld
// does, so both daemons can share one store:
//
//	<prefix>/config                     net-conf.json
//	<prefix>/subnets/10.244.3.0-24      {"PublicIP":"...","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}
//
// A lease key is bound to an etcd lease with a 24 h TTL, created with a transaction that succeeds only when the
// key does not exist yet, and renewed renew-margin before it expires; a key without a TTL is a reservation that
// only the node with the matching PublicIP may use. Allocation prefers, in order: the lease whose PublicIP is this
// node's, the subnet named by the previous subnet.env, and a random free subnet.
//
// Nothing is kept only in memory: every decision re-reads the store, so restarts and concurrent daemons
// (weftd or flanneld) converge.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/logonce"
	"github.com/weftnet/weft/internal/redact"
	"github.com/weftnet/weft/subnet"
)

// LeaseTTL is upstream's lease lifetime.
const LeaseTTL = 24 * time.Hour

// Options configure the manager; they map one to one onto weftd's --etcd-* flags.
type Options struct {
	Endpoints  []string
	Prefix     string // default /coreos.com/network
	KeyFile    string
	CertFile   string
	CAFile     string
	Username   string
	Password   string
	SubnetFile string // the previous subnet.env, whose subnet is preferred on a fresh allocation
	// RenewMargin is how long before expiry RenewLease is due; informational here (the daemon schedules).
	RenewMargin time.Duration
	// TTL overrides LeaseTTL (tests).
	TTL time.Duration
}

// Manager implements subnet.Manager on etcd.
type Manager struct {
	cli    *clientv3.Client
	auth   *tokenAuth // nil without --etcd-username and --etcd-password
	prefix string
	opts   Options

	mu  sync.Mutex
	cfg *subnet.Config

	skipped logonce.Set // leases ignored for a bad value or shape, logged once per revision

	// startRev, when set, chooses the revision a watch starts at after a listing (tests force a compacted one).
	startRev func(listRev int64) int64
}

var _ subnet.Manager = (*Manager)(nil)

// New connects to etcd lazily: it never waits for etcd, so an unreachable one (with or without
// --etcd-username) shows up as errors from the first calls, which the daemon retries while /readyz says why.
// Credentials in an endpoint URL (http://user:secret@host:2379) are not used and never reach the client, whose
// own logs would otherwise carry them; --etcd-username and --etcd-password are.
func New(ctx context.Context, o Options) (*Manager, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("--etcd-endpoints: at least one endpoint is required")
	}
	eps := make([]string, len(o.Endpoints))
	for i, ep := range o.Endpoints {
		var had bool
		if eps[i], had = redact.StripUserinfo(ep); had {
			klog.Warningf("--etcd-endpoints %s: credentials in the URL are ignored; use --etcd-username and --etcd-password", redact.URL(ep))
		}
	}
	o.Endpoints = eps
	if o.Prefix == "" {
		o.Prefix = "/coreos.com/network"
	}
	if o.TTL == 0 {
		o.TTL = LeaseTTL
	}
	cc := clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: 5 * time.Second,
		Context:     ctx,
		Logger:      nil,
	}
	// As clientv3: authentication only with both a user name and a password, but deferred to the first call.
	var auth *tokenAuth
	if o.Username != "" && o.Password != "" {
		auth = newTokenAuth(o.Username, o.Password)
		cc.DialOptions = auth.dialOptions()
	}
	if o.KeyFile != "" || o.CertFile != "" || o.CAFile != "" {
		ti := transport.TLSInfo{KeyFile: o.KeyFile, CertFile: o.CertFile, TrustedCAFile: o.CAFile}
		tc, err := ti.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("--etcd-keyfile/--etcd-certfile/--etcd-cafile: %w", err)
		}
		tc.MinVersion = tls.VersionTLS12
		cc.TLS = tc
	} else if strings.HasPrefix(o.Endpoints[0], "https://") {
		cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // the system's CAs
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", o.Endpoints, err)
	}
	if auth != nil {
		auth.cli = cli
	}
	go func() { <-ctx.Done(); cli.Close() }()
	return &Manager{cli: cli, auth: auth, prefix: strings.TrimSuffix(o.Prefix, "/"), opts: o}, nil
}

// Close disconnects from etcd (cancelling New's context does too).
func (m *Manager) Close() error { return m.cli.Close() }

// Name implements subnet.Manager.
func (m *Manager) Name() string { return "etcd" }

func (m *Manager) configKey() string  { return m.prefix + "/config" }
func (m *Manager) subnetsDir() string { return m.prefix + "/subnets/" }
