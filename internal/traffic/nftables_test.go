package traffic

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeNFT is a stateful nftTable. print stands for nft's normalisation of a written rule.
type fakeNFT struct {
	rules  map[string][]string // nil: the table does not exist
	print  func(string) string
	writes int
}

var _ nftTable = (*fakeNFT)(nil)

func (f *fakeNFT) chains(context.Context) (map[string][]string, error) {
	if f.rules == nil {
		return nil, errors.New("no such table")
	}
	return maps.Clone(f.rules), nil
}

func (f *fakeNFT) replace(_ context.Context, rules map[string][]string) error {
	f.writes++
	if f.rules == nil {
		f.rules = map[string][]string{}
	}
	for chain, rs := range rules {
		f.rules[chain] = nil
		for _, r := range rs {
			if f.print != nil {
				r = f.print(r)
			}
			f.rules[chain] = append(f.rules[chain], r)
		}
	}
	return nil
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func nftSpec(pod string) ruleSpec {
	return ruleSpec{cluster: netip.MustParsePrefix("10.244.0.0/16"), pod: netip.MustParsePrefix(pod), masq: true,
		forward: true, randomFully: true}
}

func TestNFTWriter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		table      map[string][]string
		print      func(string) string
		wantWrites int // by the first ensure; a second one must write nothing
	}{
		{name: "no table yet", wantWrites: 1},
		{name: "intact", table: nftRules(nftSpec("10.244.2.0/24"))},
		{name: "same rule count, old pod subnet", table: nftRules(nftSpec("10.244.1.0/24")), wantWrites: 1},
		{name: "rules swapped", table: map[string][]string{
			"postrtg": nftRules(nftSpec("10.244.2.0/24"))["postrtg"],
			"forward": reversed(nftRules(nftSpec("10.244.2.0/24"))["forward"]),
		}, wantWrites: 1},
		{name: "chain flushed", table: map[string][]string{"postrtg": {}, "forward": nftRules(nftSpec("10.244.2.0/24"))["forward"]},
			wantWrites: 1},
		{name: "nft prints a rule otherwise", table: map[string][]string{}, wantWrites: 1,
			print: func(r string) string { return strings.ReplaceAll(r, "0x00004000", "0x4000") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeNFT{rules: maps.Clone(tc.table), print: tc.print}
			w := newNFTWriter(nftSpec("10.244.2.0/24"), f)
			if err := w.ensure(); err != nil {
				t.Fatal(err)
			}
			if f.writes != tc.wantWrites {
				t.Errorf("first ensure wrote %d times, want %d", f.writes, tc.wantWrites)
			}
			want := nftRules(nftSpec("10.244.2.0/24"))
			if tc.print != nil {
				for chain, rs := range want {
					for i := range rs {
						rs[i] = tc.print(rs[i])
					}
					want[chain] = rs
				}
			}
			if !maps.EqualFunc(f.rules, want, slices.Equal) {
				t.Errorf("table after ensure:\n%v\nwant:\n%v", f.rules, want)
			}
			n := f.writes
			if err := w.ensure(); err != nil {
				t.Fatal(err)
			}
			if f.writes != n {
				t.Errorf("a second ensure over an intact table wrote again")
			}
		})
	}
}

func TestNFTRulesPrintForm(t *testing.T) {
	s := nftSpec("10.244.2.0/24")
	s.noMasq = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.1.2.3/32")}
	got := nftRules(s)["postrtg"]
	for _, want := range []string{"ip saddr 10.244.0.0/16 ip daddr 192.168.0.0/16 return", "ip saddr 10.244.0.0/16 ip daddr 10.1.2.3 return"} {
		if !slices.Contains(got, want) {
			t.Errorf("postrtg lacks %q (nft prints a /32 as the bare address):\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func TestParseNFTTable(t *testing.T) {
	const listing = `table ip flannel-ipv4 {
	comment "flannel"
	chain postrtg {
		type nat hook postrouting priority srcnat; policy accept;
		meta mark & 0x00004000 == 0x00004000 return
		ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return
	}

	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		ip saddr 10.244.0.0/16 accept
	}

	chain empty {
	}
}
`
	want := map[string][]string{
		"postrtg": {"meta mark & 0x00004000 == 0x00004000 return", "ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return"},
		"forward": {"ip saddr 10.244.0.0/16 accept"},
		"empty":   {},
	}
	if got := parseNFTTable(listing); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("parseNFTTable:\n%q\nwant:\n%q", got, want)
	}
}
