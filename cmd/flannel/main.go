// Command flannel is weft's CNI meta-plugin of type "flannel": it reads subnet.env and delegates to bridge and
// host-local exactly as upstream's flannel CNI plugin does (see internal/cni).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/internal/cni"
	wv "github.com/weftnet/weft/internal/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cni.Add, Del: cni.Del, Check: cni.Check}, version.All, "weft flannel CNI plugin "+wv.Version)
}
