package daemon

import (
	"context"
	"net/netip"
	"time"

	"github.com/weftnet/weft/internal/traffic"
	"github.com/weftnet/weft/subnet"
)

// ruleSet is what the daemon needs from the masquerade/forward rule writer.
type ruleSet interface {
	// Ensure puts every rule in place now.
	Ensure(ctx context.Context) error
	// Run re-ensures the rules every period until ctx ends.
	Run(ctx context.Context, period time.Duration)
}

func newRules(o *Options, cfg *subnet.Config, l *subnet.Lease, nw any) (ruleSet, error) {
	to := traffic.Options{
		Masquerade: o.IPMasq, Forward: o.IPTablesForward, RandomFullyOff: o.IPMasqRandomOff, NFTables: cfg.EnableNFTables,
	}
	if cfg.EnableIPv4 {
		to.Network, to.Subnet = cfg.Network, l.Subnet
	}
	if cfg.EnableIPv6 {
		to.IPv6Network, to.IPv6Subnet = cfg.IPv6Network, l.IPv6Subnet
	}
	// Cloud-routed backends keep pod source addresses towards the VPC: only traffic leaving it is masqueraded.
	if nm, ok := nw.(interface{ NoMasquerade() []netip.Prefix }); ok {
		to.NoMasquerade = nm.NoMasquerade()
	}
	return traffic.New(to)
}
