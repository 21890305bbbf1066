package datapath

// Bandwidth limits of an exclusive ENI pod (ExclusivePod.Bandwidth).
//
// A shared pod's limits are tbf qdiscs on its veth's two ends (bandwidth.go): what enters the pod leaves the host
// by the host veth. An exclusive pod has no such single path: traffic into it arrives on the ENI inside its
// namespace straight from the VPC (there is no host-side egress to shape), and it has two interfaces, the ENI
// (IfName) and the second veth (ExclusiveVeth: the node, Services, the host CIDRs). The limit is the pod's, as
// Kubernetes means it, so both interfaces count and share one bucket per direction: in the pod's namespace an ifb
// device per limited direction (IfbIngress, IfbEgress) with weft's tbf (ShapingHandle, the same parameters as a
// shared pod's: tbfFor) as its root qdisc, and on both interfaces a clsact qdisc whose ingress (or egress) hook
// has a match-all u32 filter redirecting every packet (mirred egress redirect) to that ifb, which releases it
// once the tbf lets it go: back to the interface's receive path (ingress) or out of the interface (egress).
// A tbf shapes; a police action would drop everything above the rate at once, without a queue, which TCP takes
// for congestion and answers well below the limit. Without limits nothing is added.
//
// Removal (unshapeExclusive): the clsact qdiscs off the ENI and the second veth, then the ifb devices. The
// ENI's return to the host runs it first (DEL, and every undo of a failed ADD), so no qdisc of the pod's rides
// along; the kernel drops a device's qdiscs when it changes namespace anyway, which the tests check too.

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/bandwidth"
)

// The ifb devices in an exclusive pod's namespace that shape its traffic, one per limited direction.
const (
	IfbIngress = "weft-ifb-in" // traffic into the pod
	IfbEgress  = "weft-ifb-eg" // traffic out of the pod
)

// shapingFilterPrio is the priority of the redirecting u32 filters on the clsact hooks.
const shapingFilterPrio = 0x57

// exclusiveDir is one limited direction of an exclusive pod: the ifb that shapes it, the clsact hook whose
// packets go there, and the ifb's tbf.
type exclusiveDir struct {
	Name string // "ingress" or "egress"
	Ifb  string
	Hook uint32 // netlink.HANDLE_MIN_INGRESS or netlink.HANDLE_MIN_EGRESS
	Rate uint64 // bits per second
	// Burst is in bits, as the runtime gives it; TBF is the ifb's tbf from Rate and Burst.
	Burst uint64
	TBF   tbfParams
}

// exclusiveShaping is what an exclusive pod with limits bw at MTU mtu gets: one entry per limited direction
// (none without limits), with the kernel's tickInUsec (psched ticks per microsecond). Pure.
func exclusiveShaping(bw bandwidth.Limits, mtu int, tickInUsec float64) ([]exclusiveDir, error) {
	if err := bw.Validate(); err != nil {
		return nil, fmt.Errorf("Bandwidth: %w", err)
	}
	var out []exclusiveDir
	var errs []error
	for _, d := range []exclusiveDir{
		{Name: "ingress", Ifb: IfbIngress, Hook: netlink.HANDLE_MIN_INGRESS, Rate: bw.IngressRate, Burst: bw.IngressBurst},
		{Name: "egress", Ifb: IfbEgress, Hook: netlink.HANDLE_MIN_EGRESS, Rate: bw.EgressRate, Burst: bw.EgressBurst},
	} {
		if d.Rate == 0 {
			continue
		}
		t, err := tbfFor(d.Rate, d.Burst, mtu, tickInUsec)
		if err != nil {
			errs = append(errs, fmt.Errorf("Bandwidth: %s %w", d.Name, err))
			continue
		}
		d.TBF = t
		out = append(out, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// validateBandwidth checks p.Bandwidth as AddExclusive and CheckExclusive need it (p.MTU set).
func (p ExclusivePod) validateBandwidth() error {
	_, err := exclusiveShaping(p.Bandwidth, p.MTU, 1)
	return err
}

func clsactOf(link netlink.Link) *netlink.Clsact {
	return &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0),
		Parent: netlink.HANDLE_CLSACT}}
}

func redirectFilter(link netlink.Link, hook uint32, ifbIndex int) *netlink.U32 {
	return &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: hook, Priority: shapingFilterPrio, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(ifbIndex)}, // nil Sel: match all
	}
}

// shape is AddExclusive's stepBandwidth: see the file comment. Its undo, registered before the first change,
// removes whatever it made.
func (x *exclusive) shape() error {
	a := x.a
	dirs, err := exclusiveShaping(x.p.Bandwidth, x.p.MTU, netlink.TickInUsec())
	if err != nil || len(dirs) == 0 {
		return err
	}
	a.undo = append(a.undo, func() error { return unshapeExclusive(a.pod) })
	links := []netlink.Link{x.eni, a.podLink}
	for _, l := range links {
		if err := a.pod.QdiscReplace(clsactOf(l)); err != nil {
			return fmt.Errorf("clsact qdisc on %s: %w", l.Attrs().Name, err)
		}
	}
	for _, d := range dirs {
		if err := delLink(a.pod, d.Ifb); err != nil { // a leftover of an interrupted ADD
			return err
		}
		if err := a.pod.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: d.Ifb, MTU: x.p.MTU, TxQLen: 1000}}); err != nil {
			return fmt.Errorf("%s limit: ifb %s: %w", d.Name, d.Ifb, err)
		}
		ifb, err := a.pod.LinkByName(d.Ifb)
		if err != nil {
			return fmt.Errorf("%s limit: ifb %s: %w", d.Name, d.Ifb, err)
		}
		if err := a.pod.LinkSetUp(ifb); err != nil {
			return fmt.Errorf("%s limit: %s up: %w", d.Name, d.Ifb, err)
		}
		q, err := shapingOf(d.Rate, d.Burst, x.p.MTU, ifb)
		if err != nil {
			return fmt.Errorf("%s limit: %w", d.Name, err)
		}
		if err := a.pod.QdiscReplace(q); err != nil {
			return fmt.Errorf("%s limit: tbf on %s rate %d bytes/s buffer %d limit %d: %w", d.Name, d.Ifb, q.Rate, q.Buffer, q.Limit, err)
		}
		for _, l := range links {
			if err := a.pod.FilterAdd(redirectFilter(l, d.Hook, ifb.Attrs().Index)); err != nil {
				return fmt.Errorf("%s limit: u32 filter on %s redirecting to %s: %w", d.Name, l.Attrs().Name, d.Ifb, err)
			}
		}
	}
	return nil
}

// unshapeExclusive removes an exclusive pod's shaping from its namespace (h): the clsact qdiscs of the ENIs
// moved there and of the second veth, then the ifb devices. Nothing there is fine.
func unshapeExclusive(h *netlink.Handle) error {
	links, err := enisIn(h)
	if err != nil {
		return fmt.Errorf("the pod's links: %w", err)
	}
	if v, err := h.LinkByName(ExclusiveVeth); err == nil {
		links = append(links, v)
	}
	var errs []error
	for _, l := range links {
		qs, err := h.QdiscList(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("qdiscs of %s: %w", l.Attrs().Name, err))
			continue
		}
		for _, q := range qs {
			if q.Type() == "clsact" {
				if err := h.QdiscDel(clsactOf(l)); err != nil && !notFound(err) {
					errs = append(errs, fmt.Errorf("remove the clsact qdisc of %s: %w", l.Attrs().Name, err))
				}
			}
		}
	}
	for _, name := range []string{IfbIngress, IfbEgress} {
		if err := delLink(h, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkExclusiveShaping is CheckExclusive's part for p.Bandwidth: for each limited direction the ifb with weft's
// tbf of the wanted parameters and, on eni and veth (either nil when missing: reported elsewhere), a filter
// redirecting to it; for an unlimited one, no ifb.
func checkExclusiveShaping(badf func(string, ...any), p ExclusivePod, h *netlink.Handle, eni, veth netlink.Link) {
	dirs, err := exclusiveShaping(p.Bandwidth, p.MTU, netlink.TickInUsec())
	if err != nil {
		badf("bandwidth limits: %v", err)
		return
	}
	limited := map[string]exclusiveDir{}
	for _, d := range dirs {
		limited[d.Ifb] = d
	}
	for _, dir := range []struct{ name, ifb string }{{"ingress", IfbIngress}, {"egress", IfbEgress}} {
		d, want := limited[dir.ifb]
		ifb, err := h.LinkByName(dir.ifb)
		switch {
		case !want && err == nil:
			badf("%s limit: an ifb %s of weft's, but the pod asks for none", dir.name, dir.ifb)
			continue
		case !want:
			continue
		case err != nil:
			badf("%s limit: ifb %s: %v", dir.name, dir.ifb, err)
			continue
		}
		checkTbf(badf, dir.name, h, ifb, d.TBF)
		for _, l := range []netlink.Link{eni, veth} {
			if l != nil && !redirects(h, l, d.Hook, ifb.Attrs().Index) {
				badf("%s limit on %s: missing, want a filter on its clsact %s hook redirecting to %s", dir.name, l.Attrs().Name, dir.name, dir.ifb)
			}
		}
	}
}

func checkTbf(badf func(string, ...any), what string, h *netlink.Handle, ifb netlink.Link, want tbfParams) {
	name := ifb.Attrs().Name
	if ifb.Attrs().Flags&unix.IFF_UP == 0 {
		badf("%s limit: %s is down", what, name)
	}
	qs, err := h.QdiscList(ifb)
	if err != nil {
		badf("qdiscs of %s: %v", name, err)
		return
	}
	for _, q := range qs {
		if q.Attrs().Parent != netlink.HANDLE_ROOT {
			continue
		}
		got, ok := q.(*netlink.Tbf)
		switch {
		case !ok || q.Attrs().Handle != ShapingHandle:
			badf("%s limit on %s: root qdisc %s %s, want tbf %s", what, name, q.Type(), netlink.HandleStr(q.Attrs().Handle), netlink.HandleStr(ShapingHandle))
		case got.Rate != want.Rate || got.Buffer != want.Buffer || got.Limit != want.Limit:
			badf("%s limit on %s: tbf rate %d bytes/s buffer %d limit %d, want rate %d buffer %d limit %d", what, name,
				got.Rate, got.Buffer, got.Limit, want.Rate, want.Buffer, want.Limit)
		}
		return
	}
	badf("%s limit on %s: missing, want root qdisc tbf %s rate %d bytes/s", what, name, netlink.HandleStr(ShapingHandle), want.Rate)
}

// redirects says whether link's clsact hook has a filter redirecting to ifbIndex. (u32 dumps the filters of
// both hooks of a clsact qdisc for either, sharing its hash tables; each direction's own ifb tells them apart.)
func redirects(h *netlink.Handle, link netlink.Link, hook uint32, ifbIndex int) bool {
	fs, err := h.FilterList(link, hook)
	if err != nil {
		return false
	}
	for _, f := range fs {
		u, ok := f.(*netlink.U32)
		if !ok {
			continue
		}
		for _, act := range u.Actions {
			if m, ok := act.(*netlink.MirredAction); ok && m.Ifindex == ifbIndex && m.MirredAction == netlink.TCA_EGRESS_REDIR {
				return true
			}
		}
	}
	return false
}
