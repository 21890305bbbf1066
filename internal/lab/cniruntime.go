package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/internal/bandwidth"
)

// Runtime drives CNI plugins as a container runtime does, through libcni (the library containerd and CRI-O
// use): a conflist, the result of ADD cached and handed back as prevResult to CHECK and DEL, GC with the valid
// attachments, STATUS; the plugins run inside a node namespace, as they would on the node's host. A sandbox's
// annotations become capability args as containerd makes them (bandwidth: package bandwidth), which libcni hands
// as runtimeConfig to the plugins whose conflist entry declares the capability.
type Runtime struct {
	NS   string // the node namespace
	List *libcni.NetworkConfigList
	cni  *libcni.CNIConfig
}

// Sandbox is one pod sandbox as the runtime knows it.
type Sandbox struct {
	ContainerID string
	Netns       string // path of the pod's network namespace, e.g. /var/run/netns/<name>
	IfName      string // default eth0
	Namespace   string // Kubernetes pod namespace and name, passed as K8S_POD_NAMESPACE / K8S_POD_NAME
	Name        string
	// Annotations are the pod's, as the kubelet passes them to the runtime: kubernetes.io/ingress-bandwidth and
	// kubernetes.io/egress-bandwidth become the bandwidth capability.
	Annotations map[string]string
}

// NewRuntime loads conflist and finds plugins in binDir; cacheDir keeps the results (the runtime's
// /var/lib/cni).
func NewRuntime(ns, binDir, cacheDir string, conflist []byte) (*Runtime, error) {
	l, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, err
	}
	return &Runtime{NS: ns, List: l, cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nsExec{ns: ns})}, nil
}

func (s Sandbox) rt() (*libcni.RuntimeConf, error) {
	ifname := s.IfName
	if ifname == "" {
		ifname = "eth0"
	}
	rt := &libcni.RuntimeConf{ContainerID: s.ContainerID, NetNS: s.Netns, IfName: ifname, Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", s.Namespace}, {"K8S_POD_NAME", s.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", s.ContainerID}}}
	caps, err := CapabilityArgs(s.Annotations)
	if err != nil {
		return nil, err
	}
	rt.CapabilityArgs = caps
	return rt, nil
}

// CapabilityArgs are the capability args containerd's CRI plugin derives from a pod's annotations: "bandwidth"
// (bandwidth.Limits) when either bandwidth annotation is set; nil when none applies. An annotation it cannot
// take is the error containerd fails the sandbox with.
func CapabilityArgs(annotations map[string]string) (map[string]any, error) {
	bw, err := bandwidth.FromAnnotations(annotations)
	if err != nil {
		return nil, fmt.Errorf("reading pod bandwidth annotations: %w", err)
	}
	if bw == nil {
		return nil, nil
	}
	return map[string]any{bandwidth.Capability: *bw}, nil
}

// Add runs ADD and returns the result as CNI 1.0.0.
func (r *Runtime) Add(ctx context.Context, s Sandbox) (*types100.Result, error) {
	rt, err := s.rt()
	if err != nil {
		return nil, err
	}
	res, err := r.cni.AddNetworkList(ctx, r.List, rt)
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

// Del runs DEL with the cached result as prevResult (and the capability args cached with it).
func (r *Runtime) Del(ctx context.Context, s Sandbox) error {
	rt, err := s.rt()
	if err != nil {
		return err
	}
	return r.cni.DelNetworkList(ctx, r.List, rt)
}

// Check runs CHECK with the cached result as prevResult.
func (r *Runtime) Check(ctx context.Context, s Sandbox) error {
	rt, err := s.rt()
	if err != nil {
		return err
	}
	return r.cni.CheckNetworkList(ctx, r.List, rt)
}

// Status runs STATUS (CNI 1.1).
func (r *Runtime) Status(ctx context.Context) error { return r.cni.GetStatusNetworkList(ctx, r.List) }

// GC runs GC (CNI 1.1) with the given sandboxes as the valid attachments.
func (r *Runtime) GC(ctx context.Context, valid []Sandbox) error {
	var att []types.GCAttachment
	for _, s := range valid {
		ifname := s.IfName
		if ifname == "" {
			ifname = "eth0"
		}
		att = append(att, types.GCAttachment{ContainerID: s.ContainerID, IfName: ifname})
	}
	return r.cni.GCNetworkList(ctx, r.List, &libcni.GCArgs{ValidAttachments: att})
}

// nsExec runs plugins inside a named network namespace (ip netns exec), decoding their errors as libcni's
// own exec does.
type nsExec struct{ ns string }

func (e nsExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, pluginPath)
	c.Env, c.Stdin, c.Stdout, c.Stderr = environ, bytes.NewReader(stdin), &stdout, &stderr
	if err := c.Run(); err != nil {
		var te types.Error
		if json.Unmarshal(stdout.Bytes(), &te) == nil && (te.Code != 0 || te.Msg != "") {
			return nil, &te
		}
		return nil, fmt.Errorf("%s: %v: %s", pluginPath, err, strings.TrimSpace(stderr.String()+stdout.String()))
	}
	return stdout.Bytes(), nil
}

func (nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (nsExec) Decode(b []byte) (version.PluginInfo, error) {
	var d version.PluginDecoder
	return d.Decode(b)
}

// FlannelConflist is a bridge backend's conflist as weft installs it (base: install.DefaultConflist, or upstream's)
// with the node's own paths in its flannel entry: subnet.env, the meta-plugin's state and host-local's (the lab's
// nodes share one filesystem). Every other entry, portmap and bandwidth among them, stays as it is.
func (n *Node) FlannelConflist(base []byte) ([]byte, error) {
	var c map[string]any
	if err := json.Unmarshal(base, &c); err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	plugins, _ := c["plugins"].([]any)
	found := false
	for _, p := range plugins {
		m, ok := p.(map[string]any)
		if !ok || m["type"] != "flannel" {
			continue
		}
		found = true
		m["subnetFile"] = n.SubnetFile()
		m["dataDir"] = filepath.Join(n.Dir, "flannel-cni")
		// The meta-plugin fills ranges and routes into the top-level ipam (lab.md pitfall 7).
		m["ipam"] = map[string]any{"type": "host-local", "dataDir": filepath.Join(n.Dir, "ipam")}
		d, _ := m["delegate"].(map[string]any)
		if d == nil {
			d = map[string]any{}
			m["delegate"] = d
		}
		d["bridge"] = "cni0"
	}
	if !found {
		return nil, errors.New(`conflist: no plugin of type "flannel"`)
	}
	return json.Marshal(c)
}

// CNIBinDir is a directory of the node's holding the plugins a bridge backend's conflist runs: flannel (the
// meta-plugin binary given, weft's or upstream's) and the reference plugins from the tools (bridge, host-local,
// loopback, portmap, bandwidth).
func (n *Node) CNIBinDir(flannel string) (string, error) {
	dir := filepath.Join(n.Dir, "cni-bin-list-"+filepath.Base(filepath.Dir(flannel))+"-"+filepath.Base(flannel))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	links := map[string]string{"flannel": flannel}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "bandwidth"} {
		links[p] = filepath.Join(n.Lab.O.ToolsBin, p)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
			return "", err
		}
	}
	return dir, nil
}
