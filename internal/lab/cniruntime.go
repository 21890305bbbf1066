package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Runtime drives CNI plugins as a container runtime does, through libcni (the library containerd and CRI-O
// use): a conflist, the result of ADD cached and handed back as prevResult to CHECK and DEL, GC with the valid
// attachments, STATUS; the plugins run inside a node namespace, as they would on the node's host.
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

func (s Sandbox) rt() *libcni.RuntimeConf {
	ifname := s.IfName
	if ifname == "" {
		ifname = "eth0"
	}
	return &libcni.RuntimeConf{ContainerID: s.ContainerID, NetNS: s.Netns, IfName: ifname, Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", s.Namespace}, {"K8S_POD_NAME", s.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", s.ContainerID}}}
}

// Add runs ADD and returns the result as CNI 1.0.0.
func (r *Runtime) Add(ctx context.Context, s Sandbox) (*types100.Result, error) {
	res, err := r.cni.AddNetworkList(ctx, r.List, s.rt())
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

// Del runs DEL with the cached result as prevResult.
func (r *Runtime) Del(ctx context.Context, s Sandbox) error {
	return r.cni.DelNetworkList(ctx, r.List, s.rt())
}

// Check runs CHECK with the cached result as prevResult.
func (r *Runtime) Check(ctx context.Context, s Sandbox) error {
	return r.cni.CheckNetworkList(ctx, r.List, s.rt())
}

// Status runs STATUS (CNI 1.1).
func (r *Runtime) Status(ctx context.Context) error { return r.cni.GetStatusNetworkList(ctx, r.List) }

// GC runs GC (CNI 1.1) with the given sandboxes as the valid attachments.
func (r *Runtime) GC(ctx context.Context, valid []Sandbox) error {
	var att []types.GCAttachment
	for _, s := range valid {
		rt := s.rt()
		att = append(att, types.GCAttachment{ContainerID: rt.ContainerID, IfName: rt.IfName})
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
