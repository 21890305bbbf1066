package traffic

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"k8s.io/klog/v2"
)

const (
	masqComment   = "flanneld masq"
	fwdComment    = "flanneld forward"
	kubeProxyMark = "0x4000/0x4000"
	postChain     = "FLANNEL-POSTRTG"
	fwdChain      = "FLANNEL-FWD"
)

// rule is one iptables rule: table, chain, and the arguments after "-A <chain>".
type rule struct {
	table, chain string
	spec         []string
}

// masqRules returns upstream's nat rules, in upstream's order. The first one is the jump from POSTROUTING.
func masqRules(s ruleSpec) []rule {
	c, p := s.cluster.String(), s.pod.String()
	cm := []string{"-m", "comment", "--comment", masqComment}
	with := func(args ...string) []string {
		out := append([]string{}, args[:len(args)-2]...)
		out = append(out, cm...)
		return append(out, args[len(args)-2:]...)
	}
	masq := []string{"-j", "MASQUERADE"}
	if s.randomFully {
		masq = append(masq, "--random-fully")
	}
	withMasq := func(args ...string) []string {
		out := append(append([]string{}, args...), cm...)
		return append(out, masq...)
	}
	rules := []rule{
		{"nat", "POSTROUTING", append(append([]string{}, cm...), "-j", postChain)},
		{"nat", postChain, with("-m", "mark", "--mark", kubeProxyMark, "-j", "RETURN")},
	}
	if s.pod.IsValid() { // a backend without per-node subnets has no pod subnet to exempt
		rules = append(rules,
			rule{"nat", postChain, with("-s", p, "-d", c, "-j", "RETURN")},
			rule{"nat", postChain, with("-s", c, "-d", p, "-j", "RETURN")},
			rule{"nat", postChain, with("!", "-s", c, "-d", p, "-j", "RETURN")})
	}
	for _, n := range s.noMasq {
		rules = append(rules, rule{"nat", postChain, with("-s", c, "-d", n.String(), "-j", "RETURN")})
	}
	return append(rules,
		rule{"nat", postChain, withMasq("-s", c, "!", "-d", s.multicast())},
		rule{"nat", postChain, withMasq("!", "-s", c, "-d", c)})
}

// forwardRules returns upstream's filter rules; the first is the jump from FORWARD.
func forwardRules(s ruleSpec) []rule {
	c := s.cluster.String()
	cm := []string{"-m", "comment", "--comment", fwdComment}
	return []rule{
		{"filter", "FORWARD", append(append([]string{}, cm...), "-j", fwdChain)},
		{"filter", fwdChain, append(append([]string{"-s", c}, cm...), "-j", "ACCEPT")},
		{"filter", fwdChain, append(append([]string{"-d", c}, cm...), "-j", "ACCEPT")},
	}
}

// ipt is the small part of go-iptables the writer uses.
type ipt interface {
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	Exists(table, chain string, spec ...string) (bool, error)
	Append(table, chain string, spec ...string) error
	List(table, chain string) ([]string, error)
	HasRandomFully() bool
}

type iptWriter struct {
	s    ruleSpec
	ipt  ipt
	sets [][]rule // each set: jump rule first, then the chain's rules
	// printed holds each chain's rules ("table/chain" -> lines) as `iptables -S` prints them. It starts as the
	// wanted rules rendered in that form and after every write becomes what iptables printed back, so an iptables
	// that prints a rule differently costs one rewrite, not one per resync.
	printed map[string][]string
}

func newIPT(s ruleSpec) (writer, error) {
	proto := iptables.ProtocolIPv4
	if s.v6 {
		proto = iptables.ProtocolIPv6
	}
	t, err := iptables.NewWithProtocol(proto)
	if err != nil {
		return nil, fmt.Errorf("iptables (%v): %w", proto, err)
	}
	if s.randomFully && !t.HasRandomFully() {
		klog.Warning("iptables lacks --random-fully; masquerading without it")
		s.randomFully = false
	}
	return newIPTWriter(s, t), nil
}

func newIPTWriter(s ruleSpec, t ipt) *iptWriter {
	w := &iptWriter{s: s, ipt: t, printed: map[string][]string{}}
	if s.masq {
		w.sets = append(w.sets, masqRules(s))
	}
	if s.forward {
		w.sets = append(w.sets, forwardRules(s))
	}
	for _, set := range w.sets {
		body := set[1:]
		w.printed[body[0].table+"/"+body[0].chain] = printedRules(body)
	}
	return w
}

// printedRules renders rules the way `iptables -S <chain>` prints them: "-A <chain> <spec>", an argument holding
// a space in double quotes.
func printedRules(rules []rule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		args := []string{"-A", r.chain}
		for _, a := range r.spec {
			if strings.ContainsAny(a, " \t") {
				a = `"` + a + `"`
			}
			args = append(args, a)
		}
		out = append(out, strings.Join(args, " "))
	}
	return out
}

func (w *iptWriter) name() string {
	if w.s.v6 {
		return "ip6tables"
	}
	return "iptables"
}

func (w *iptWriter) ensure() error {
	var errs []error
	for _, set := range w.sets {
		if err := w.ensureSet(set); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureSet makes the chain hold exactly the set's rules in order, rewriting it whole when its rules differ in
// content or order, and makes the jump to it exist.
func (w *iptWriter) ensureSet(set []rule) error {
	jump, body := set[0], set[1:]
	table, chain := body[0].table, body[0].chain
	ok, err := w.ipt.ChainExists(table, chain)
	if err != nil {
		return fmt.Errorf("check chain %s/%s: %w", table, chain, err)
	}
	if !ok {
		if err := w.ipt.NewChain(table, chain); err != nil {
			return fmt.Errorf("create chain %s/%s: %w", table, chain, err)
		}
	}
	key := table + "/" + chain
	have, err := w.chainRules(table, chain)
	if err != nil {
		return err
	}
	if !slices.Equal(have, w.printed[key]) {
		klog.Infof("%s: writing %s/%s", w.name(), table, chain)
		if err := w.ipt.ClearChain(table, chain); err != nil {
			return fmt.Errorf("flush %s/%s: %w", table, chain, err)
		}
		for _, r := range body {
			if err := w.ipt.Append(r.table, r.chain, r.spec...); err != nil {
				return fmt.Errorf("append to %s/%s %v: %w", r.table, r.chain, r.spec, err)
			}
		}
		// Normalising never changes the number of rules: a read-back of another length is not this write.
		if got, err := w.chainRules(table, chain); err == nil && len(got) == len(body) {
			w.printed[key] = got
		}
	}
	if ok, err := w.ipt.Exists(jump.table, jump.chain, jump.spec...); err != nil {
		return fmt.Errorf("check jump from %s: %w", jump.chain, err)
	} else if !ok {
		if err := w.ipt.Append(jump.table, jump.chain, jump.spec...); err != nil {
			return fmt.Errorf("add jump from %s to %s: %w", jump.chain, chain, err)
		}
	}
	return nil
}

// chainRules returns the chain's rules in order, as `iptables -S` prints them, without the "-N <chain>" line.
func (w *iptWriter) chainRules(table, chain string) ([]string, error) {
	lines, err := w.ipt.List(table, chain)
	if err != nil {
		return nil, fmt.Errorf("list %s/%s: %w", table, chain, err)
	}
	var rules []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	return rules, nil
}
