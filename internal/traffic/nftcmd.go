package traffic

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"sigs.k8s.io/knftables"
)

// nftCmd is one family's flannel table on the host: written through knftables, read with `nft list table`, whose
// text (unlike knftables' ListRules, which returns only handles and comments) carries each rule's expression.
type nftCmd struct {
	nft    knftables.Interface
	path   string
	family knftables.Family
	table  string
}

var _ nftTable = (*nftCmd)(nil)

func newNFTCmd(v6 bool) (*nftCmd, error) {
	fam, table := knftables.IPv4Family, "flannel-ipv4"
	if v6 {
		fam, table = knftables.IPv6Family, "flannel-ipv6"
	}
	nft, err := knftables.New(fam, table)
	if err != nil {
		return nil, fmt.Errorf("nftables (%s): %w", table, err)
	}
	path, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("nftables (%s): %w", table, err)
	}
	return &nftCmd{nft: nft, path: path, family: fam, table: table}, nil
}

func (c *nftCmd) chains(ctx context.Context) (map[string][]string, error) {
	out, err := exec.CommandContext(ctx, c.path, "list", "table", string(c.family), c.table).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("nft list table %s %s: %w: %s", c.family, c.table, err, strings.TrimSpace(string(out)))
	}
	return parseNFTTable(string(out)), nil
}

// chainDefs are upstream's two base chains.
var chainDefs = map[string]*knftables.Chain{
	"postrtg": {Name: "postrtg", Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority)},
	"forward": {Name: "forward", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority)},
}

func (c *nftCmd) replace(ctx context.Context, rules map[string][]string) error {
	tx := c.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("flannel")})
	for name, rs := range rules {
		def, ok := chainDefs[name]
		if !ok {
			return fmt.Errorf("chain %q: not one of weft's chains (postrtg, forward)", name)
		}
		tx.Add(def)
		tx.Flush(def)
		for _, r := range rs {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	return c.nft.Run(ctx, tx)
}

// parseNFTTable reads `nft list table` output into each chain's rules, in order. A chain's declaration lines
// (type/hook/policy, comment) are not rules and are left out.
func parseNFTTable(out string) map[string][]string {
	chains := map[string][]string{}
	chain := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "":
		case chain == "":
			if name, ok := strings.CutPrefix(l, "chain "); ok && strings.HasSuffix(name, " {") {
				chain = strings.TrimSuffix(name, " {")
				chains[chain] = []string{}
			}
		case l == "}":
			chain = ""
		case strings.HasPrefix(l, "type ") && strings.HasSuffix(l, ";"), strings.HasPrefix(l, "policy "),
			strings.HasPrefix(l, "comment "):
		default:
			chains[chain] = append(chains[chain], l)
		}
	}
	return chains
}
