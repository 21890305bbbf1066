package traffic

import (
	"context"
	"fmt"

	"sigs.k8s.io/knftables"
)

// nftWriter keeps upstream's nftables form: table flannel-ipv4 (ip) / flannel-ipv6 (ip6) with base chains
// postrtg (nat, postrouting, srcnat) and forward (filter, forward, filter). Each ensure that finds a chain
// different from the wanted rules rewrites the table in one atomic transaction.
type nftWriter struct {
	s   ruleSpec
	nft knftables.Interface
}

func newNFT(s ruleSpec) (writer, error) {
	fam, table := knftables.IPv4Family, "flannel-ipv4"
	if s.v6 {
		fam, table = knftables.IPv6Family, "flannel-ipv6"
	}
	nft, err := knftables.New(fam, table)
	if err != nil {
		return nil, fmt.Errorf("nftables (%s): %w", table, err)
	}
	return &nftWriter{s: s, nft: nft}, nil
}

func (w *nftWriter) name() string {
	if w.s.v6 {
		return "nftables flannel-ipv6"
	}
	return "nftables flannel-ipv4"
}

func (w *nftWriter) rules() map[string][]string {
	ipk := "ip"
	if w.s.v6 {
		ipk = "ip6"
	}
	c, p := w.s.cluster.String(), w.s.pod.String()
	out := map[string][]string{}
	if w.s.masq {
		masq := "masquerade"
		if w.s.randomFully {
			masq += " fully-random"
		}
		out["postrtg"] = []string{"meta mark & 0x4000 == 0x4000 return"}
		if w.s.pod.IsValid() {
			out["postrtg"] = append(out["postrtg"],
				fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, p, ipk, c),
				fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, c, ipk, p),
				fmt.Sprintf("%s saddr != %s %s daddr %s return", ipk, c, ipk, p))
		}
		for _, n := range w.s.noMasq {
			out["postrtg"] = append(out["postrtg"], fmt.Sprintf("%s saddr %s %s daddr %s return", ipk, c, ipk, n))
		}
		out["postrtg"] = append(out["postrtg"],
			fmt.Sprintf("%s saddr %s %s daddr != %s %s", ipk, c, ipk, w.s.multicast(), masq),
			fmt.Sprintf("%s saddr != %s %s daddr %s %s", ipk, c, ipk, c, masq))
	}
	if w.s.forward {
		out["forward"] = []string{
			fmt.Sprintf("%s saddr %s accept", ipk, c),
			fmt.Sprintf("%s daddr %s accept", ipk, c),
		}
	}
	return out
}

func (w *nftWriter) ensure() error {
	ctx := context.Background()
	want := w.rules()
	intact := true
	for chain, rules := range want {
		have, err := w.nft.ListRules(ctx, chain)
		if err != nil || len(have) != len(rules) {
			intact = false
			break
		}
	}
	if intact {
		return nil
	}
	tx := w.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("flannel")})
	chains := map[string]*knftables.Chain{
		"postrtg": {Name: "postrtg", Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(knftables.PostroutingHook),
			Priority: knftables.PtrTo(knftables.SNATPriority)},
		"forward": {Name: "forward", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.ForwardHook),
			Priority: knftables.PtrTo(knftables.FilterPriority)},
	}
	for name, rules := range want {
		tx.Add(chains[name])
		tx.Flush(chains[name])
		for _, r := range rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	if err := w.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	return nil
}
