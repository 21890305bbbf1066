package subnet

import (
	"encoding/json"
	"net/netip"
)

// Config is net-conf.json: the cluster-wide network configuration, as upstream flanneld reads it from
// <prefix>/config in etcd or from --net-config-path in Kubernetes mode. JSON keys match case-insensitively.
type Config struct {
	EnableIPv4     bool
	EnableIPv6     bool
	EnableNFTables bool
	Network        netip.Prefix // IPv4 cluster network
	SubnetMin      netip.Addr
	SubnetMax      netip.Addr
	SubnetLen      int
	IPv6Network    netip.Prefix
	IPv6SubnetMin  netip.Addr
	IPv6SubnetMax  netip.Addr
	IPv6SubnetLen  int
	BackendType    string          // Backend.Type, defaulted to "vxlan"
	Backend        json.RawMessage // the whole Backend object, for the backend to decode its own fields
}
