package traffic

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// fakeIPT is a stateful ipt: each chain's rules as argument lists, listed the way `iptables -S` prints them.
type fakeIPT struct {
	chains  map[string][][]string // "table/chain"
	appends int
}

var _ ipt = (*fakeIPT)(nil)

func (f *fakeIPT) ChainExists(table, chain string) (bool, error) {
	_, ok := f.chains[table+"/"+chain]
	return ok, nil
}

func (f *fakeIPT) NewChain(table, chain string) error {
	f.chains[table+"/"+chain] = nil
	return nil
}

func (f *fakeIPT) ClearChain(table, chain string) error {
	f.chains[table+"/"+chain] = nil
	return nil
}

func (f *fakeIPT) Exists(table, chain string, spec ...string) (bool, error) {
	return slices.ContainsFunc(f.chains[table+"/"+chain], func(r []string) bool { return slices.Equal(r, spec) }), nil
}

func (f *fakeIPT) Append(table, chain string, spec ...string) error {
	f.appends++
	f.chains[table+"/"+chain] = append(f.chains[table+"/"+chain], slices.Clone(spec))
	return nil
}

func (f *fakeIPT) List(table, chain string) ([]string, error) {
	rules, ok := f.chains[table+"/"+chain]
	if !ok {
		return nil, fmt.Errorf("no chain %s/%s", table, chain)
	}
	out := []string{"-N " + chain}
	for _, r := range rules {
		l := "-A " + chain
		for _, a := range r {
			if strings.Contains(a, " ") {
				a = fmt.Sprintf("%q", a)
			}
			l += " " + a
		}
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeIPT) HasRandomFully() bool { return true }

func TestIPTWriterComparesOrder(t *testing.T) {
	s := nftSpec("10.244.1.0/24")
	f := &fakeIPT{chains: map[string][][]string{}}
	w := newIPTWriter(s, f)
	if err := w.ensure(); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(f.chains)
	if len(want["nat/"+postChain]) != 6 {
		t.Fatalf("%s after the first ensure: %q, want 6 rules", postChain, want["nat/"+postChain])
	}
	n := f.appends
	if err := w.ensure(); err != nil {
		t.Fatal(err)
	}
	if f.appends != n {
		t.Fatalf("a second ensure over intact chains rewrote them")
	}
	// Move the first RETURN rule of FLANNEL-POSTRTG below the MASQUERADE rules: same rules, same count.
	post := slices.Clone(f.chains["nat/"+postChain])
	f.chains["nat/"+postChain] = append(append(slices.Clone(post[:1]), post[2:]...), post[1])
	if err := w.ensure(); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(f.chains, want, func(a, b [][]string) bool { return slices.EqualFunc(a, b, slices.Equal) }) {
		t.Errorf("order not restored:\n%q\nwant:\n%q", f.chains["nat/"+postChain], want["nat/"+postChain])
	}
}
