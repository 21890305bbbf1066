package daemon

import (
	"context"
	"time"

	"github.com/weftnet/weft/backend"
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

// newRules builds the rule writer from the backend's traffic inputs and the rule flags.
func newRules(o *Options, cfg *subnet.Config, t backend.Traffic) (ruleSet, error) {
	return traffic.New(traffic.Options{
		Masquerade: o.IPMasq, Forward: o.IPTablesForward, RandomFullyOff: o.IPMasqRandomOff, NFTables: cfg.EnableNFTables,
		Network: t.Network, Subnet: t.Subnet, IPv6Network: t.IPv6Network, IPv6Subnet: t.IPv6Subnet,
		NoMasquerade: t.NoMasquerade,
	})
}
