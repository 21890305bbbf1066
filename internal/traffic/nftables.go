package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/klog/v2"
)

// nftWriter keeps upstream's nftables form: table flannel-ipv4 (ip) / flannel-ipv6 (ip6) with base chains
// postrtg (nat, postrouting, srcnat) and forward (filter, forward, filter). Each ensure reads the chains' rules as
// nft prints them and, when any chain's rules differ from the wanted ones in content or order, rewrites the table
// in one atomic transaction.
type nftWriter struct {
	s     ruleSpec
	table nftTable
	// printed holds each chain's rules in the form nft prints them. It starts as the wanted rules (written in the
	// form nft 1.0 prints) and after every write becomes what nft printed back, so an nft that normalises an
	// expression differently costs one rewrite, not one per resync.
	printed map[string][]string
}

// nftTable is the part of nftables the writer uses: one family's table.
type nftTable interface {
	// chains returns the rules of every chain of the table, in order, as `nft list table` prints them.
	chains(ctx context.Context) (map[string][]string, error)
	// replace flushes each named chain (creating the table and chain when missing) and fills it with the rules,
	// all in one transaction.
	replace(ctx context.Context, rules map[string][]string) error
}

func newNFT(s ruleSpec) (writer, error) {
	t, err := newNFTCmd(s.v6)
	if err != nil {
		return nil, err
	}
	return newNFTWriter(s, t), nil
}

func newNFTWriter(s ruleSpec, t nftTable) *nftWriter {
	return &nftWriter{s: s, table: t, printed: nftRules(s)}
}

func (w *nftWriter) name() string {
	if w.s.v6 {
		return "nftables flannel-ipv6"
	}
	return "nftables flannel-ipv4"
}

// nftRules returns the wanted rules per chain, in the form `nft list` prints them (so "0x00004000", not "0x4000").
func nftRules(s ruleSpec) map[string][]string {
	ipk := "ip"
	if s.v6 {
		ipk = "ip6"
	}
	c, p := nftPrefix(s.cluster), nftPrefix(s.pod)
	out := map[string][]string{}
	if s.masq {
		masq := "masquerade"
		if s.randomFully {
			masq += " fully-random"
		}
		out["postrtg"] = []string{"meta mark & 0x00004000 == 0x00004000 return"}
		if s.pod.IsValid() { // a backend without per-node subnets has no pod subnet to exempt
			out["postrtg"] = append(out["postrtg"],
				fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, p, ipk, c),
				fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, c, ipk, p),
				fmt.Sprintf("%s saddr != %s %s daddr %s return", ipk, c, ipk, p))
		}
		for _, n := range s.noMasq {
			out["postrtg"] = append(out["postrtg"], fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, c, ipk, nftPrefix(n)))
		}
		out["postrtg"] = append(out["postrtg"],
			fmt.Sprintf("%s saddr %s %s daddr != %s %s", ipk, c, ipk, s.multicast(), masq),
			fmt.Sprintf("%s saddr != %s %s daddr %s %s", ipk, c, ipk, c, masq))
	}
	if s.forward {
		out["forward"] = []string{
			fmt.Sprintf("%s saddr %s accept", ipk, c),
			fmt.Sprintf("%s daddr %s accept", ipk, c),
		}
	}
	return out
}

// nftPrefix writes a prefix as nft prints it: a single address without its length.
func nftPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// staleChains returns, sorted, the wanted chains whose rules in have differ from want in content or order.
func staleChains(have, want map[string][]string) []string {
	var stale []string
	for chain, rules := range want {
		if !slices.Equal(have[chain], rules) {
			stale = append(stale, chain)
		}
	}
	slices.Sort(stale)
	return stale
}

func (w *nftWriter) ensure() error {
	ctx := context.Background()
	have, err := w.table.chains(ctx)
	if err != nil {
		// A missing table reads as an error too: write it.
		klog.V(2).Infof("%s: %v", w.name(), err)
		have = nil
	}
	stale := staleChains(have, w.printed)
	if len(stale) == 0 {
		return nil
	}
	klog.Infof("%s: writing chains %v", w.name(), stale)
	want := nftRules(w.s)
	if err := w.table.replace(ctx, want); err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	got, err := w.table.chains(ctx)
	if err != nil {
		klog.Warningf("%s: read back the rules just written: %v", w.name(), err)
	}
	w.printed = adoptPrinted(want, got)
	return nil
}

// adoptPrinted returns, per wanted chain, the rules as nft printed them right after writing want, or want's own
// form for a chain whose read-back does not hold the same number of rules (normalising never changes the count,
// so such a read-back is not our write).
func adoptPrinted(want, got map[string][]string) map[string][]string {
	out := make(map[string][]string, len(want))
	for chain, rules := range want {
		out[chain] = rules
		if len(got[chain]) == len(rules) {
			out[chain] = got[chain]
		}
	}
	return out
}
