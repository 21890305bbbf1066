// Package cni is weft's CNI meta-plugin of type "flannel", so an existing 10-flannel.conflist keeps working: it
// reads subnet.env and delegates to the bridge plugin (or the delegate type given) with host-local IPAM, building
// the same delegate configuration as upstream's flannel CNI plugin:
//
//	{"name":..., "cniVersion":..., "type":"bridge", "ipMasq": !FLANNEL_IPMASQ, "mtu": FLANNEL_MTU, "isGateway": true,
//	 "ipam": {"type":"host-local", "ranges":[[{"subnet":<FLANNEL_SUBNET>}],[{"subnet":<FLANNEL_IPV6_SUBNET>}]],
//	          "routes":[{"dst":<FLANNEL_NETWORK>},{"dst":<FLANNEL_IPV6_NETWORK>}]}}
//
// Keys the user sets in "delegate" (and in the top-level "ipam") win. The delegate configuration is saved per
// container under dataDir so DEL and CHECK use exactly what ADD used; DEL of an unknown container succeeds.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/internal/readfile"
	"github.com/weftnet/weft/subnet"
)

// The delegate calls and where DEL's warnings go; tests replace them.
var (
	delegateAdd             = invoke.DelegateAdd
	delegateDel             = invoke.DelegateDel
	delegateCheck           = invoke.DelegateCheck
	warnings      io.Writer = os.Stderr
)

// Defaults as upstream.
const (
	DefaultSubnetFile = "/run/flannel/subnet.env"
	DefaultDataDir    = "/var/lib/cni/flannel"
)

// NetConf is the plugin's configuration.
type NetConf struct {
	types.NetConf
	IPAM          map[string]any `json:"ipam,omitempty"`
	SubnetFile    string         `json:"subnetFile"`
	DataDir       string         `json:"dataDir"`
	Delegate      map[string]any `json:"delegate"`
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

func loadConf(data []byte) (*NetConf, error) {
	n := &NetConf{SubnetFile: DefaultSubnetFile, DataDir: DefaultDataDir}
	if err := json.Unmarshal(data, n); err != nil {
		return nil, fmt.Errorf("flannel CNI config: %w", err)
	}
	if n.SubnetFile == "" {
		n.SubnetFile = DefaultSubnetFile
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	// The delegate type is a plugin name looked up in CNI_PATH: a path would run a binary from elsewhere.
	if t, ok := n.Delegate["type"]; ok {
		if s, isStr := t.(string); !isStr || s == "" || strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
			return nil, fmt.Errorf("flannel CNI config: delegate.type %v: expected a plugin name such as bridge", t)
		}
	}
	return n, nil
}

// Delegate builds the delegate configuration from the plugin config and subnet.env.
func Delegate(n *NetConf, env subnet.Env) map[string]any {
	d := map[string]any{}
	for k, v := range n.Delegate {
		d[k] = v
	}
	d["name"] = n.Name
	if _, ok := d["type"]; !ok {
		d["type"] = "bridge"
	}
	if _, ok := d["ipMasq"]; !ok {
		d["ipMasq"] = !env.IPMasq // if flanneld does not masquerade, the bridge should
	}
	if _, ok := d["mtu"]; !ok {
		d["mtu"] = env.MTU
	}
	if d["type"] == "bridge" {
		if _, ok := d["isGateway"]; !ok {
			d["isGateway"] = true
		}
	}
	if n.CNIVersion != "" {
		d["cniVersion"] = n.CNIVersion
	}
	ipam := map[string]any{}
	for k, v := range n.IPAM {
		ipam[k] = v
	}
	if _, ok := ipam["type"]; !ok {
		ipam["type"] = "host-local"
	}
	var ranges [][]map[string]any
	var routes []any
	if r, ok := ipam["routes"].([]any); ok {
		routes = append(routes, r...)
	}
	if env.EnableIPv4 {
		ranges = append(ranges, []map[string]any{{"subnet": env.Subnet.Masked().String()}})
		routes = append(routes, map[string]any{"dst": env.Network.String()})
	}
	if env.EnableIPv6 {
		ranges = append(ranges, []map[string]any{{"subnet": env.IPv6Subnet.Masked().String()}})
		routes = append(routes, map[string]any{"dst": env.IPv6Network.String()})
	}
	ipam["ranges"] = ranges
	ipam["routes"] = routes
	d["ipam"] = ipam
	if len(n.RuntimeConfig) != 0 {
		d["runtimeConfig"] = n.RuntimeConfig
	}
	return d
}

func savePath(n *NetConf, containerID string) string { return filepath.Join(n.DataDir, containerID) }

// Add is the CNI ADD command.
func Add(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	env, err := subnet.ReadEnvFile(n.SubnetFile)
	if err != nil {
		return fmt.Errorf("%w (is weftd running on this node?)", err)
	}
	d := Delegate(n, env)
	conf, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return fmt.Errorf("dataDir %s: %w", n.DataDir, err)
	}
	path := savePath(n, args.ContainerID)
	if err := writeState(path, conf); err != nil {
		return fmt.Errorf("save delegate config: %w", err)
	}
	typ, _ := d["type"].(string)
	res, err := delegateAdd(context.TODO(), typ, conf, nil)
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	if err := waitPolicy(args.Args, n, res); err != nil {
		// The pod must not start without its rules: undo the delegate's ADD (its address, its veth).
		if derr := delegateDel(context.TODO(), typ, conf, nil); derr != nil {
			fmt.Fprintf(warnings, "flannel: ADD %s: undo the delegate after the policy wait failed: %v\n", args.ContainerID, derr)
		}
		_ = os.Remove(path)
		return err
	}
	return types.PrintResult(res, n.CNIVersion)
}

// Del is the CNI DEL command. It is idempotent and succeeds whenever the container's network can be let go of:
// DEL of an unknown container succeeds, and a saved configuration that cannot be read back (a crash mid-write by
// an older weft, a corrupted disk) is reported on stderr and replaced by the configuration ADD would build now, so
// the delegate still releases the address; the state file is removed either way, so the runtime is never stuck
// retrying a DEL that cannot succeed.
func Del(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	path := savePath(n, args.ContainerID)
	conf, err := readfile.Limited(path, readfile.DefaultMax)
	if errors.Is(err, os.ErrNotExist) {
		return nil // ADD never happened or DEL already ran
	}
	var d struct{ Type string }
	if err == nil {
		if err = json.Unmarshal(conf, &d); err == nil && d.Type == "" {
			err = errors.New("no delegate type")
		}
	}
	if err != nil {
		fmt.Fprintf(warnings, "flannel CNI DEL %s: saved delegate config %s unusable (%v): releasing with the current configuration\n",
			args.ContainerID, path, err)
		env, eerr := subnet.ReadEnvFile(n.SubnetFile)
		if eerr != nil {
			// Without subnet.env the delegate gets no ranges; host-local still releases by container ID.
			fmt.Fprintf(warnings, "flannel CNI DEL %s: %v\n", args.ContainerID, eerr)
		}
		dc := Delegate(n, env)
		if conf, err = json.Marshal(dc); err != nil {
			return err
		}
		d.Type, _ = dc["type"].(string)
		if err := delegateDel(context.TODO(), d.Type, conf, nil); err != nil {
			fmt.Fprintf(warnings, "flannel CNI DEL %s: %s DEL with the rebuilt configuration: %v\n", args.ContainerID, d.Type, err)
		}
		return removeState(path)
	}
	if err := delegateDel(context.TODO(), d.Type, conf, nil); err != nil {
		return err
	}
	return removeState(path)
}

func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Check is the CNI CHECK command: the delegate checks with the configuration ADD used.
func Check(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	saved, err := readfile.Limited(savePath(n, args.ContainerID), readfile.DefaultMax)
	if err != nil {
		return fmt.Errorf("no saved delegate config for container %s: %w", args.ContainerID, err)
	}
	d := map[string]any{}
	if err := json.Unmarshal(saved, &d); err != nil {
		return err
	}
	// The runtime hands CHECK the result of ADD as prevResult; the delegate needs it too.
	var in struct {
		PrevResult json.RawMessage `json:"prevResult"`
	}
	if err := json.Unmarshal(args.StdinData, &in); err == nil && len(in.PrevResult) > 0 {
		d["prevResult"] = in.PrevResult
	}
	conf, err := json.Marshal(d)
	if err != nil {
		return err
	}
	typ, _ := d["type"].(string)
	return delegateCheck(context.TODO(), typ, conf, nil)
}
