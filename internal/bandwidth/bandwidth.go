// Package bandwidth is the wire format of per-pod bandwidth limits, as Kubernetes delivers them to CNI plugins.
//
// A pod asks for limits with the annotations kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth
// (resource quantities in bits per second, e.g. "40M"). The container runtime, not the kubelet, reads them: the
// kubelet passes the sandbox's annotations to containerd, which parses them as Kubernetes' pkg/util/bandwidth does
// (refusing values below 1k and above 1P) and hands every plugin of the conflist that declares
// "capabilities": {"bandwidth": true} the runtimeConfig
//
//	{"bandwidth": {"ingressRate": <bit/s>, "ingressBurst": <bits>, "egressRate": <bit/s>, "egressBurst": <bits>}}
//
// with each burst set to math.MaxUint32 bits (the runtime has no annotation for it) and a direction without an
// annotation left at zero (no limit). FromAnnotations does exactly that, for the tests' runtime (internal/lab) to
// exercise the path kubelet and containerd take; Parse and Limits.Validate check such a block where a plugin
// receives it. "Ingress" is traffic into the pod, "egress" traffic out of it.
//
// The package only decides: it sets no qdisc. weft-eni applies limits itself (internal/eni/datapath); the bridge
// backends' pods get them from the reference "bandwidth" plugin chained in weft's conflists.
package bandwidth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The pod annotations Kubernetes defines for bandwidth limits.
const (
	IngressAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressAnnotation  = "kubernetes.io/egress-bandwidth"
)

// Capability is the conflist capability and the runtimeConfig key of the limits.
const Capability = "bandwidth"

// The range Kubernetes accepts for an annotation (pkg/util/bandwidth: "unreasonably small (< 1kbit)",
// "unreasonably large (> 1Pbit)"); Validate holds rates to it too.
const (
	MinRate uint64 = 1000             // 1k bit/s
	MaxRate uint64 = 1000000000000000 // 1P bit/s
)

// RuntimeBurst is the burst containerd gives every limited direction: math.MaxUint32 bits (about 512 MiB).
const RuntimeBurst uint64 = math.MaxUint32

// MaxBurst is the largest burst accepted, in bits: below 4 GiB (the reference bandwidth plugin's "burst cannot
// be more than 4GB"; a tbf bucket's size in bytes is 32 bits).
const MaxBurst uint64 = 8*math.MaxUint32 - 1

// Limits is the runtimeConfig "bandwidth" block: rates in bits per second, bursts in bits; a direction with both
// zero is not limited. Field names and JSON are containerd's (go-cni BandWidth) and the reference plugin's.
type Limits struct {
	IngressRate  uint64 `json:"ingressRate"`
	IngressBurst uint64 `json:"ingressBurst"`
	EgressRate   uint64 `json:"egressRate"`
	EgressBurst  uint64 `json:"egressBurst"`
}

// IsZero says whether no direction is limited.
func (l Limits) IsZero() bool { return l == Limits{} }

// Ingress says whether traffic into the pod is limited.
func (l Limits) Ingress() bool { return l.IngressRate != 0 }

// Egress says whether traffic out of the pod is limited.
func (l Limits) Egress() bool { return l.EgressRate != 0 }

// String is the limits as a log line: "ingress 40000000 bit/s burst 4294967295 bit, egress none".
func (l Limits) String() string {
	dir := func(rate, burst uint64) string {
		if rate == 0 && burst == 0 {
			return "none"
		}
		return fmt.Sprintf("%d bit/s burst %d bit", rate, burst)
	}
	return "ingress " + dir(l.IngressRate, l.IngressBurst) + ", egress " + dir(l.EgressRate, l.EgressBurst)
}

// FromAnnotations is what containerd makes of a pod's annotations: nil when neither annotation is set, else each
// annotated direction at the annotation's rate (resource.Quantity's Value, rounded up to a whole bit per second)
// with burst RuntimeBurst. A value that does not parse, or lies outside MinRate..MaxRate, is an error naming the
// annotation, the value and the accepted range; then no limits are returned at all (the runtime fails the sandbox
// rather than start a pod without the limit it asked for).
func FromAnnotations(ann map[string]string) (*Limits, error) {
	var l Limits
	set := false
	for _, a := range []struct {
		key         string
		rate, burst *uint64
	}{{IngressAnnotation, &l.IngressRate, &l.IngressBurst}, {EgressAnnotation, &l.EgressRate, &l.EgressBurst}} {
		v, ok := ann[a.key]
		if !ok {
			continue
		}
		r, err := parseRate(v)
		if err != nil {
			return nil, fmt.Errorf("pod annotation %s %q: %w", a.key, clip(v), err)
		}
		*a.rate, *a.burst, set = r, RuntimeBurst, true
	}
	if !set {
		return nil, nil
	}
	return &l, nil
}

var (
	minQ = resource.MustParse("1k")
	maxQ = resource.MustParse("1P")
)

const wantRate = "a quantity of bits per second from 1k to 1P such as 10M"

func parseRate(v string) (uint64, error) {
	if len(v) > 64 {
		return 0, fmt.Errorf("%d bytes long: expected %s", len(v), wantRate)
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, fmt.Errorf("not a quantity (%v): expected %s", err, wantRate)
	}
	// As Kubernetes (and containerd) compare: Value(), the quantity rounded up to a whole bit per second, so
	// "999.9" is 1000 and accepted. But Value saturates or wraps beyond the int64 range ("1e30" is 0,
	// 2^64+40M would be 40M), so anything above 1P as a quantity is refused first.
	if q.Cmp(maxQ) > 0 {
		return 0, fmt.Errorf("above 1P bit/s (unreasonably large): expected %s", wantRate)
	}
	if q.Value() < minQ.Value() {
		return 0, fmt.Errorf("below 1k bit/s (unreasonably small): expected %s", wantRate)
	}
	return uint64(q.Value()), nil
}

// Validate checks the limits as a plugin receives them: per direction rate and burst both zero (no limit) or both
// set, the rate within MinRate..MaxRate, the burst at most MaxBurst. The error names each field wrong.
func (l Limits) Validate() error {
	var errs []error
	for _, d := range []struct {
		name        string
		rate, burst uint64
	}{{"ingress", l.IngressRate, l.IngressBurst}, {"egress", l.EgressRate, l.EgressBurst}} {
		rf, bf := d.name+"Rate", d.name+"Burst"
		switch {
		case d.rate == 0 && d.burst == 0:
			continue
		case d.rate == 0:
			errs = append(errs, fmt.Errorf("%s %d without %s: expected both or neither", bf, d.burst, rf))
			continue
		case d.burst == 0:
			errs = append(errs, fmt.Errorf("%s %d without %s: expected both or neither", rf, d.rate, bf))
			continue
		}
		if d.rate < MinRate || d.rate > MaxRate {
			errs = append(errs, fmt.Errorf("%s %d: expected bits per second from %d (1k) to %d (1P)", rf, d.rate, MinRate, MaxRate))
		}
		if d.burst > MaxBurst {
			errs = append(errs, fmt.Errorf("%s %d: expected bits from 1 to %d (below 4 GiB)", bf, d.burst, MaxBurst))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("runtimeConfig.bandwidth: %w", errors.Join(errs...))
	}
	return nil
}

// Parse reads and validates a runtimeConfig "bandwidth" block: a JSON object with at most the four fields, each a
// whole number; null or absent (empty raw) is no limit. Unknown fields are refused, so a misspelt one never
// leaves a pod silently unlimited.
func Parse(raw []byte) (Limits, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Limits{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Limits{}, fmt.Errorf("runtimeConfig.bandwidth: not a JSON object (%v): expected "+
			`{"ingressRate":..,"ingressBurst":..,"egressRate":..,"egressBurst":..}`, err)
	}
	var l Limits
	fields := map[string]*uint64{"ingressRate": &l.IngressRate, "ingressBurst": &l.IngressBurst,
		"egressRate": &l.EgressRate, "egressBurst": &l.EgressBurst}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		v := m[k]
		p, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%q: unknown field, expected ingressRate, ingressBurst, egressRate, egressBurst", clip(k)))
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: expected a whole number from 0 to %d", k, clip(string(v)), uint64(math.MaxUint64)))
			continue
		}
		*p = n
	}
	if len(errs) > 0 {
		return Limits{}, fmt.Errorf("runtimeConfig.bandwidth: %w", errors.Join(errs...))
	}
	if err := l.Validate(); err != nil {
		return Limits{}, err
	}
	return l, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
