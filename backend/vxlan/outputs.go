package vxlan

import (
	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/subnet"
)

// Outputs are flannel's per-node-subnet outputs; pods use the vxlan device's MTU. A family is on exactly when
// RegisterNetwork made its device.
func (nw *network) Outputs() backend.Outputs {
	sc := &subnet.Config{EnableIPv4: nw.v4 != nil, EnableIPv6: nw.v6 != nil, Network: nw.network, IPv6Network: nw.network6}
	return backend.SubnetOutputs(sc, nw.lease, nw.mtu)
}
