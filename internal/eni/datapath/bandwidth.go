package datapath

// Bandwidth limits (Pod.Bandwidth, the pod's kubernetes.io/ingress-bandwidth and egress-bandwidth as the runtime
// passes them, package bandwidth): a token bucket filter (tbf) as the root qdisc of the veth end the traffic
// leaves by. Ingress, traffic into the pod, leaves the host through the host veth; egress, traffic out of the pod,
// leaves the pod's namespace through its interface. Shaping the pod's own end needs no ifb device (which the
// reference bandwidth plugin needs for egress, redirecting the host veth's ingress into it) and is what Terway
// does. Both qdiscs carry the handle ShapingHandle ("57:" in tc, 87 as the routes' protocol) so Check tells
// weft's from anyone else's, and both go with the veth: Del has nothing more to remove, and a failed Add's undo
// of the veth takes them too.
//
// The bucket. The runtime asks for a burst of math.MaxUint32 bits (512 MiB: it has no annotation for it) and the
// kernel caps a tbf's bucket at 2^32 ns of tokens (about 4.29 s): taken as given, every new connection would pass
// seconds' worth of data at line rate before the limit bites, and a pod at 40 Mbit/s could send 21 MB at once.
// So the bucket is the given burst but at most MaxBucketTime (1 s) of the rate: a pod idle for a second may send
// one second's worth at once, no more. It is at least MinBucketFrames (4) full frames (MTU + the Ethernet
// header), or a full-size packet could never pass (tbf drops what is larger than its bucket, after splitting
// GSO packets into frames), and at most maxBucketTime (4 s) of the rate, below the kernel's cap. Rates so low
// that 4 s of tokens do not hold one full frame (below MinShapingRate: 3032 bit/s at MTU 1500) cannot be shaped
// by tbf and are refused.
//
// The queue (tbf's limit): QueueTime (50 ms) of the rate, plus one largest packet (the bucket, at most a 64 KiB
// GSO packet), so a packet the bucket admits is never refused by the queue. Beyond it packets are dropped, which
// is how a remote TCP sender learns the rate; a longer queue only adds latency.

import (
	"errors"
	"fmt"
	"math"

	"github.com/vishvananda/netlink"
)

// ShapingHandle is the handle of the tbf qdiscs weft adds ("57:" in tc).
var ShapingHandle = netlink.MakeHandle(0x57, 0)

// The bucket's and the queue's bounds; see the comment above.
const (
	MaxBucketTime   = 1.0   // seconds of the rate a bucket holds at most (unless MinBucketFrames need more)
	MinBucketFrames = 4     // full frames a bucket holds at least
	QueueTime       = 0.050 // seconds of the rate the queue holds, beyond one largest packet
	maxBucketTime   = 4.0   // seconds: below the kernel's cap of 2^32 ns
	ethHeader       = 14
	maxGSO          = 64 << 10
)

// stepBandwidth is Add's step applying Pod.Bandwidth (after stepCarrier: the veth's own qdiscs are active).
const stepBandwidth = "bandwidth limits"

// tbfParams is one direction's tbf: rate and bucket in bytes per second and bytes; buffer (the bucket as the
// kernel takes it) in psched ticks; limit (the queue) in bytes.
type tbfParams struct {
	Rate   uint64
	Bucket uint64
	Buffer uint32
	Limit  uint32
}

// MinShapingRate is the least rate, in bits per second, whose bucket (maxBucketTime of the rate in whole bytes per
// second) holds a full frame of mtu: tbf cannot shape below it.
func MinShapingRate(mtu int) uint64 {
	return 8 * uint64(math.Ceil(float64(mtu+ethHeader)/maxBucketTime))
}

// tbfFor is the tbf of a direction limited to rateBits with burstBits, at MTU mtu, with the kernel's tickInUsec
// (netlink.TickInUsec: psched ticks per microsecond). Pure.
func tbfFor(rateBits, burstBits uint64, mtu int, tickInUsec float64) (tbfParams, error) {
	if rateBits < MinShapingRate(mtu) {
		return tbfParams{}, fmt.Errorf("rate %d bit/s: below %d bit/s, the least a tbf shapes at MTU %d "+
			"(its bucket, at most %.0f s of the rate, must hold one %d-byte frame)", rateBits, MinShapingRate(mtu), mtu,
			maxBucketTime, mtu+ethHeader)
	}
	if tickInUsec <= 0 || math.IsNaN(tickInUsec) || math.IsInf(tickInUsec, 0) {
		return tbfParams{}, fmt.Errorf("psched ticks per microsecond %v: want a positive number (/proc/net/psched)", tickInUsec)
	}
	rate := rateBits / 8
	bucket := max(burstBits/8, 1)
	bucket = min(bucket, uint64(float64(rate)*MaxBucketTime))
	bucket = max(bucket, uint64(MinBucketFrames*(mtu+ethHeader)))
	bucket = min(bucket, uint64(float64(rate)*maxBucketTime))
	if bucket < uint64(mtu+ethHeader) {
		return tbfParams{}, fmt.Errorf("bucket of %d bytes at %d bytes/s: holds no %d-byte frame", bucket, rate, mtu+ethHeader)
	}
	ticks := float64(bucket) * 1e6 / float64(rate) * tickInUsec
	if ticks < 1 || ticks > math.MaxUint32 {
		return tbfParams{}, fmt.Errorf("bucket of %d bytes at %d bytes/s: %v psched ticks, want 1..%d", bucket, rate, ticks, uint32(math.MaxUint32))
	}
	limit := uint64(float64(rate)*QueueTime) + min(bucket, maxGSO)
	return tbfParams{Rate: rate, Bucket: bucket, Buffer: uint32(ticks), Limit: uint32(min(limit, math.MaxUint32))}, nil
}

// validateBandwidth checks p.Bandwidth (after withDefaults) as Add and Check need it: valid limits whose rates
// tbf can shape at p.MTU.
func (p Pod) validateBandwidth() error {
	if err := p.Bandwidth.Validate(); err != nil {
		return fmt.Errorf("Bandwidth: %w", err)
	}
	var errs []error
	for _, d := range []struct {
		name        string
		rate, burst uint64
	}{{"ingress", p.Bandwidth.IngressRate, p.Bandwidth.IngressBurst}, {"egress", p.Bandwidth.EgressRate, p.Bandwidth.EgressBurst}} {
		if d.rate == 0 {
			continue
		}
		if _, err := tbfFor(d.rate, d.burst, p.MTU, 1); err != nil {
			errs = append(errs, fmt.Errorf("Bandwidth: %s %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// shapingOf is the tbf qdisc of a direction on link, or nil when the direction is not limited.
func shapingOf(rateBits, burstBits uint64, mtu int, link netlink.Link) (*netlink.Tbf, error) {
	if rateBits == 0 {
		return nil, nil
	}
	t, err := tbfFor(rateBits, burstBits, mtu, netlink.TickInUsec())
	if err != nil {
		return nil, err
	}
	return &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: ShapingHandle,
		Parent: netlink.HANDLE_ROOT}, Rate: t.Rate, Buffer: t.Buffer, Limit: t.Limit}, nil
}

// shape is Add's stepBandwidth: ingress on the host veth, egress on the pod's interface. Nothing to undo: the
// qdiscs go with the veth, which the step that created it removes.
func (a *adder) shape() error {
	bw := a.p.Bandwidth
	for _, d := range []struct {
		what        string
		rate, burst uint64
		h           *netlink.Handle
		link        netlink.Link
	}{
		{"ingress on host veth " + a.veth, bw.IngressRate, bw.IngressBurst, a.host, a.hostLink},
		{"egress on pod interface " + a.p.IfName, bw.EgressRate, bw.EgressBurst, a.pod, a.podLink},
	} {
		q, err := shapingOf(d.rate, d.burst, a.p.MTU, d.link)
		if err != nil {
			return fmt.Errorf("%s: %w", d.what, err)
		}
		if q == nil {
			continue
		}
		if err := d.h.QdiscReplace(q); err != nil {
			return fmt.Errorf("%s: tbf rate %d bytes/s buffer %d limit %d: %w", d.what, q.Rate, q.Buffer, q.Limit, err)
		}
	}
	return nil
}

// checkShaping is Check's part for Pod.Bandwidth: each limited direction's root qdisc is weft's tbf with the
// wanted parameters; an unlimited direction has no root qdisc of weft's.
func checkShaping(badf func(string, ...any), p Pod, host *netlink.Handle, hostLink netlink.Link, pod *netlink.Handle, podLink netlink.Link) {
	for _, d := range []struct {
		what        string
		rate, burst uint64
		h           *netlink.Handle
		link        netlink.Link
	}{
		{"ingress", p.Bandwidth.IngressRate, p.Bandwidth.IngressBurst, host, hostLink},
		{"egress", p.Bandwidth.EgressRate, p.Bandwidth.EgressBurst, pod, podLink},
	} {
		if d.link == nil {
			continue
		}
		name := d.link.Attrs().Name
		want, err := shapingOf(d.rate, d.burst, p.MTU, d.link)
		if err != nil {
			badf("%s limit on %s: %v", d.what, name, err)
			continue
		}
		qs, err := d.h.QdiscList(d.link)
		if err != nil {
			badf("qdiscs of %s: %v", name, err)
			continue
		}
		var root netlink.Qdisc
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT {
				root = q
			}
		}
		ours := root != nil && root.Attrs().Handle == ShapingHandle
		switch {
		case want == nil && ours:
			badf("%s limit on %s: a tbf %s of weft's, but the pod asks for none", d.what, name, netlink.HandleStr(ShapingHandle))
		case want == nil:
		case root == nil || !ours:
			badf("%s limit on %s: missing, want root qdisc tbf %s rate %d bytes/s (found %v)", d.what, name,
				netlink.HandleStr(ShapingHandle), want.Rate, root)
		default:
			got, ok := root.(*netlink.Tbf)
			if !ok {
				badf("%s limit on %s: root qdisc %s is a %s, want a tbf", d.what, name, netlink.HandleStr(ShapingHandle), root.Type())
			} else if got.Rate != want.Rate || got.Buffer != want.Buffer || got.Limit != want.Limit {
				badf("%s limit on %s: tbf rate %d bytes/s buffer %d limit %d, want rate %d buffer %d limit %d", d.what, name,
					got.Rate, got.Buffer, got.Limit, want.Rate, want.Buffer, want.Limit)
			}
		}
	}
}
