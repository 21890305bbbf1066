package plugin

// Bandwidth limits: the runtime passes a pod's kubernetes.io/ingress-bandwidth and egress-bandwidth as
// runtimeConfig.bandwidth (package bandwidth) when the conflist's weft-eni declares
// "capabilities": {"bandwidth": true}. ADD hands them to the datapath (tbf qdiscs on the veth's two ends, applied
// before the answer; a failure rolls back like any other of the datapath's steps) and keeps them in its record;
// CHECK verifies the qdiscs against runtimeConfig.bandwidth, or against the record when the runtime passes none;
// DEL removes nothing more than the veth, which takes the qdiscs with it. An exclusive pod's limits go the same
// way to datapath.AddExclusive (ifb devices in the pod, which the ENI's return to the host removes first).

import (
	"encoding/json"

	"github.com/weftnet/weft/internal/bandwidth"
)

// RuntimeConfig is the part of the net conf's runtimeConfig the plugin reads.
type RuntimeConfig struct {
	Bandwidth json.RawMessage `json:"bandwidth,omitempty"`
}

// loadBandwidth reads runtimeConfig.bandwidth into c; the error is the net conf's, naming the field.
func (c *Conf) loadBandwidth() error {
	if len(c.RuntimeConfig.Bandwidth) == 0 {
		return nil
	}
	l, err := bandwidth.Parse(c.RuntimeConfig.Bandwidth)
	if err != nil {
		return confError("%v", err)
	}
	c.bandwidth, c.hasBandwidth = l, true
	return nil
}

// stateBandwidth is ADD's record of the limits: nil when there are none (and in records of older releases).
func (c *Conf) stateBandwidth() *bandwidth.Limits {
	if c.bandwidth.IsZero() {
		return nil
	}
	l := c.bandwidth
	return &l
}

// checkBandwidth is what CHECK expects of the datapath: runtimeConfig.bandwidth when the runtime passed it, else
// what ADD recorded.
func (c *Conf) checkBandwidth(st state) bandwidth.Limits {
	if c.hasBandwidth || st.Bandwidth == nil {
		return c.bandwidth
	}
	return *st.Bandwidth
}
