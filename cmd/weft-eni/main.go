// Command weft-eni is weft's CNI plugin of the eni backend: pods on secondary addresses of the node's ENIs, served
// by weftd (see internal/eni/plugin).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/weftnet/weft/internal/eni/plugin"
	wv "github.com/weftnet/weft/internal/version"
)

func main() {
	p := &plugin.Plugin{Datapath: plugin.Netlink{}}
	skel.PluginMainFuncs(p.Funcs(), plugin.Versions, "weft eni CNI plugin "+wv.Version)
}
