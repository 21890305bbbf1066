package plan

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/weftnet/weft/subnet"
)

// nodeIPAMMaxDiff is kube-controller-manager's limit: a node mask at most 16 bits longer than the cluster CIDR's.
const nodeIPAMMaxDiff = 16

// family is one pod CIDR cut into node subnets.
type family struct {
	prefix   netip.Prefix
	slen     int
	subnets  int64 // node subnets the subnet manager hands out
	perNode  int64 // pod addresses in one node subnet
	problems []Finding
}

// podFamilies cuts each pod CIDR (one per family) into node subnets.
func podFamilies(in Input) []family {
	var out []family
	for _, p := range in.PodCIDRs {
		out = append(out, cut(in, p))
	}
	return out
}

// cut applies the subnet manager's rules: kube-controller-manager hands out every node subnet of the cluster
// CIDR (node mask at most 16 bits longer); flannel's etcd allocator skips the first and honours upstream's
// SubnetLen rules (subnet.ValidateEtcd, the same code weftd runs).
func cut(in Input, p netip.Prefix) family {
	bits := p.Addr().BitLen()
	v6 := bits == 128
	f := family{prefix: p, slen: in.SubnetLen}
	name, flag := "SubnetLen", "--node-subnet-len"
	if v6 {
		f.slen, name, flag = in.IPv6SubnetLen, "IPv6SubnetLen", "--ipv6-node-subnet-len"
	}
	bad := func(code, format string, a ...any) family {
		f.problems = append(f.problems, Finding{code, fmt.Sprintf(format, a...)})
		return f
	}
	if in.SubnetManager == SubnetManagerEtcd {
		c := &subnet.Config{EnableIPv4: !v6, EnableIPv6: v6}
		if v6 {
			c.IPv6Network, c.IPv6SubnetLen = p, f.slen
		} else {
			c.Network, c.SubnetLen = p, f.slen
		}
		if err := c.ValidateEtcd(); err != nil {
			return bad("InvalidNodeSubnet", "%v (flannel's etcd allocator)", err)
		}
		min, max := c.SubnetMin, c.SubnetMax
		f.slen = c.SubnetLen
		if v6 {
			min, max, f.slen = c.IPv6SubnetMin, c.IPv6SubnetMax, c.IPv6SubnetLen
		}
		span := new(big.Int).Sub(addrInt(max), addrInt(min))
		span.Rsh(span, uint(bits-f.slen))
		f.subnets = saturate(span.Add(span, big.NewInt(1)))
	} else {
		if f.slen == 0 {
			f.slen = 24
			if v6 {
				f.slen = 64
			}
		}
		switch {
		case f.slen < p.Bits():
			return bad("InvalidNodeSubnet", "%s /%d is shorter than the pod CIDR %s", flag, f.slen, p)
		case f.slen-p.Bits() > nodeIPAMMaxDiff:
			return bad("InvalidNodeSubnet", "%s /%d is more than %d bits longer than the pod CIDR %s: kube-controller-manager refuses it (at most 65536 node subnets)",
				flag, f.slen, nodeIPAMMaxDiff, p)
		}
		f.subnets = pow2(f.slen - p.Bits())
	}
	// host-local hands out the subnet minus its network address, the bridge's gateway (.1) and, in IPv4, the
	// broadcast address.
	reserved := int64(3)
	if v6 {
		reserved = 2
	}
	f.perNode = sub(pow2(bits-f.slen), reserved)
	if f.perNode < 1 {
		return bad("InvalidNodeSubnet", "%s /%d leaves no pod address in a node subnet (%s)", flag, f.slen, name)
	}
	return f
}

// addrInt is an address as an unsigned integer, so IPv6 spans can be counted without overflow.
func addrInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

// contains tells whether inner lies wholly inside outer.
func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}
