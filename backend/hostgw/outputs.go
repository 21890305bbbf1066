package hostgw

import "github.com/weftnet/weft/backend"

// Outputs are flannel's per-node-subnet outputs; pods use the external interface's MTU (no encapsulation).
func (nw *network) Outputs() backend.Outputs {
	return backend.SubnetOutputs(nw.sc, nw.lease, nw.b.deps.ExtIface.Iface.MTU)
}
