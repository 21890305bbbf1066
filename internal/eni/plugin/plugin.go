// Package plugin is weft's CNI plugin weft-eni (spec 1.0.0; STATUS and GC of 1.1.0): pods on secondary addresses
// of the node's shared ENIs, addresses served by weftd over the unix socket of package cniproto, the pod's
// datapath built by package datapath (a veth, the address as /32, default route via 169.254.1.1 on-link; on the
// host a /32 route and Terway's two policy rules).
//
//	ADD    K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS; weftd's Add; datapath.Add. A failure once weftd has
//	       answered gives the address back (weftd's Del; the datapath undoes its own part), except when the pod's
//	       datapath already stands (a second ADD without DEL: weftd answered the address that datapath uses). The
//	       result: the host veth, the pod's interface in its netns, IP/32 with gateway 169.254.1.1, the default route.
//	DEL    the address from prevResult when there is one; datapath.Del, then weftd's Del. An unreachable weftd is
//	       no failure (weftd's GC frees the address later): DEL must not leave pods stuck terminating; the plugin
//	       says so on stderr.
//	CHECK  needs prevResult; datapath.Check, then weftd's Check.
//	       ADD applies, and CHECK verifies, the pod's bandwidth limits from runtimeConfig.bandwidth (bandwidth.go).
//	STATUS weftd's Status; error 50 (plugin not available) when weftd is unreachable or not ready.
//	GC     the host veths of attachments not in cni.dev/valid-attachments removed (Datapath.Prune), then weftd's GC.
//
// ADD's result has no place for weftd's route table, MTU and rule priorities, which CHECK needs (and DEL, for
// rules at other than the default priorities): ADD keeps them per pod interface under dataDir (a file named like
// the host veth), DEL and GC remove them. DEL without one still works: datapath.DefaultRules, the address from
// prevResult or the host veth's route; rules left at other priorities are weftd's to reconcile (SyncRules).
//
// Errors are CNI errors with the spec's codes: 7 for the net conf (naming the field), 4 for CNI_ARGS, 11 (try
// again later) when weftd is busy with the pod, not ready, at its limit, slow, unreachable or gone mid-request,
// 999 otherwise.
//
// The net conf: {"cniVersion":"1.0.0","name":"weft","type":"weft-eni","socket":"/run/weft/eni.sock","timeout":"120s"};
// socket, timeout and dataDir are optional (cniproto.DefaultSocket, 120 s per call to weftd (1s..10m),
// DefaultDataDir). MTU, tables and rule priorities are weftd's to say.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/internal/bandwidth"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// Versions are the CNI spec versions the plugin speaks.
var Versions = version.PluginSupports("1.0.0", "1.1.0")

// DefaultTimeout is a call's limit to weftd when the net conf says none (Terway's CNI uses 120 s).
const DefaultTimeout = 120 * time.Second

// statusTimeout caps STATUS, which the runtime polls.
const statusTimeout = 10 * time.Second

// errPluginNotAvailable is spec 1.1's error 50: the plugin cannot serve ADD.
const errPluginNotAvailable uint = 50

// Datapath is what the plugin needs of the pod's datapath: package datapath's functions (Netlink) in production,
// a recording fake in tests.
type Datapath interface {
	Add(p datapath.Pod) (datapath.Result, error)
	Del(p datapath.Pod) error
	Check(p datapath.Pod) error
	// Prune removes the host veths of pods not among valid.
	Prune(valid []datapath.Attachment) error
}

// Netlink is the Datapath of package datapath.
type Netlink struct{}

func (Netlink) Add(p datapath.Pod) (datapath.Result, error) { return datapath.Add(p) }
func (Netlink) Del(p datapath.Pod) error                    { return datapath.Del(p) }
func (Netlink) Check(p datapath.Pod) error                  { return datapath.Check(p) }
func (Netlink) Prune(valid []datapath.Attachment) error     { return datapath.Prune(valid) }

// Plugin is the CNI plugin. Stdout gets ADD's result, Stderr the warnings (nil: os.Stdout, os.Stderr).
type Plugin struct {
	Datapath Datapath
	Stdout   io.Writer
	Stderr   io.Writer
}

// Funcs are the plugin's commands for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

// NetConf is the plugin's network configuration.
type NetConf struct {
	types.NetConf
	Socket  string `json:"socket,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	DataDir string `json:"dataDir,omitempty"`
	// RuntimeConfig is what the runtime passes for the capabilities the conflist declares (bandwidth.go).
	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
}

// Conf is a checked NetConf.
type Conf struct {
	NetConf
	timeout      time.Duration
	bandwidth    bandwidth.Limits // runtimeConfig.bandwidth
	hasBandwidth bool             // the runtime passed runtimeConfig.bandwidth
}

// LoadConf parses and checks the net conf; the error names the field and what was expected.
func LoadConf(data []byte) (*Conf, error) {
	var n NetConf
	if err := json.Unmarshal(data, &n); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, confError("%q: a JSON %s, expected %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return nil, confError("not a JSON object: %v", err)
	}
	c := &Conf{NetConf: n, timeout: DefaultTimeout}
	if n.Name == "" {
		return nil, confError(`"name": missing, expected the network's name`)
	}
	supported := Versions.SupportedVersions()
	ok := false
	for _, v := range supported {
		ok = ok || v == n.CNIVersion
	}
	if !ok {
		return nil, confError(`"cniVersion" %q: expected one of %s`, n.CNIVersion, strings.Join(supported, ", "))
	}
	if c.Socket == "" {
		c.Socket = cniproto.DefaultSocket
	}
	if !filepath.IsAbs(c.Socket) || filepath.Clean(c.Socket) != c.Socket {
		return nil, confError(`"socket" %q: expected the absolute path of weftd's socket (default %s)`, c.Socket, cniproto.DefaultSocket)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if !filepath.IsAbs(c.DataDir) || filepath.Clean(c.DataDir) != c.DataDir {
		return nil, confError(`"dataDir" %q: expected an absolute path (default %s)`, c.DataDir, DefaultDataDir)
	}
	if n.Timeout != "" {
		d, err := time.ParseDuration(n.Timeout)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return nil, confError(`"timeout" %q: expected a duration from 1s to 10m such as "120s"`, n.Timeout)
		}
		c.timeout = d
	}
	if err := c.loadBandwidth(); err != nil {
		return nil, err
	}
	return c, nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a " + k
}

func confError(format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "weft-eni net conf: "+fmt.Sprintf(format, a...), "")
}

func (c *Conf) client() *cniproto.Client {
	return &cniproto.Client{Socket: c.Socket, Timeout: c.timeout}
}

// PodArgs are the Kubernetes keys of CNI_ARGS.
type PodArgs struct{ Namespace, Name string }

// ParseArgs reads K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS ("K=V;K=V"); other keys are ignored.
func ParseArgs(s string) (PodArgs, error) {
	var a PodArgs
	if s == "" {
		return a, nil
	}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return PodArgs{}, fmt.Errorf("CNI_ARGS: %q: expected KEY=VALUE pairs separated by ;", clip(kv))
		}
		switch k {
		case "K8S_POD_NAMESPACE":
			a.Namespace = v
		case "K8S_POD_NAME":
			a.Name = v
		}
	}
	return a, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func (p *Plugin) stdout() io.Writer {
	if p.Stdout == nil {
		return os.Stdout
	}
	return p.Stdout
}

func (p *Plugin) warnf(format string, a ...any) {
	w := p.Stderr
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "weft-eni: "+format+"\n", a...)
}

// weftdError is the CNI error for a failed call to weftd.
func weftdError(verb string, socket string, err error) *types.Error {
	var e *cniproto.Error
	switch {
	case errors.Is(err, cniproto.ErrUnreachable):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s: weftd is not serving %s (is the weft DaemonSet's pod running on this node?)", verb, socket), err.Error())
	case errors.As(err, &e) && e.Code == cniproto.CodeBusy:
		return types.NewError(types.ErrTryAgainLater, verb+": weftd is busy with another request for this pod: "+e.Message, e.Code)
	case errors.As(err, &e) && e.Code == cniproto.CodeNotReady:
		return types.NewError(types.ErrTryAgainLater, verb+": weftd cannot serve addresses yet: "+e.Message, e.Code)
	case errors.As(err, &e) && e.Code == cniproto.CodeLimit:
		return types.NewError(types.ErrTryAgainLater, verb+": this node serves no more pod addresses: "+e.Message, e.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return types.NewError(types.ErrTryAgainLater, verb+": weftd did not answer in time", err.Error())
	case errors.Is(err, cniproto.ErrInterrupted):
		return types.NewError(types.ErrTryAgainLater, verb+": weftd went away before answering (restarting?)", err.Error())
	case errors.As(err, &e) && e.Code == cniproto.CodeVersion:
		return types.NewError(types.ErrInternal, verb+": weft-eni and weftd speak different protocol versions (install the same weft release): "+e.Message, e.Code)
	case errors.As(err, &e) && e.Code == cniproto.CodeBadRequest:
		return types.NewError(types.ErrInvalidEnvironmentVariables, verb+": weftd refused the request: "+e.Message, e.Code)
	case errors.As(err, &e):
		return types.NewError(types.ErrInternal, verb+": weftd: "+e.Message, e.Code)
	}
	return types.NewError(types.ErrInternal, verb+": "+err.Error(), "")
}

func podID(args *skel.CmdArgs, pa PodArgs) cniproto.PodID {
	return cniproto.PodID{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName, Namespace: pa.Namespace, Name: pa.Name}
}

// Add is the CNI ADD command.
func (p *Plugin) Add(args *skel.CmdArgs) (err error) {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	pa, err := ParseArgs(args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	if pa.Namespace == "" || pa.Name == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			"CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME are required: weft-eni serves Kubernetes pods", "")
	}
	if args.Netns == "" {
		return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: missing, expected the path of the pod's network namespace", "")
	}
	c := conf.client()
	id := podID(args, pa)
	reply, err := c.Add(context.Background(), cniproto.AddRequest{Pod: id})
	if err != nil {
		return weftdError("ADD", conf.Socket, err)
	}
	if reply.Mode == cniproto.ModeExclusive {
		return p.addExclusive(args, conf, c, id, reply) // exclusive.go
	}
	// From here weftd holds an address for the pod: any failure gives it back.
	pod := datapathPod(args, reply.IP, reply)
	pod.Bandwidth = conf.bandwidth
	sp := statePath(conf.DataDir, args.ContainerID, args.IfName)
	undo := &addUndo{p: p, args: args, c: c, id: id, ip: reply.IP, sp: sp} // undo.go
	defer func() { undo.run(err) }()
	res, err := p.Datapath.Add(pod)
	if errors.Is(err, datapath.ErrExists) {
		// An ADD without a DEL since the last: weftd answered the address it holds for this container, which the
		// standing datapath uses. Giving it back would free a running pod's address for the next pod.
		undo.standing = true
		return types.NewError(types.ErrInternal, fmt.Sprintf("ADD: container %s interface %s already has its datapath (%v): "+
			"a second ADD without DEL; DEL it first (its address %v stays held)", args.ContainerID, args.IfName, err, reply.IP), "")
	}
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("ADD: the datapath of %v: %v", reply.IP, err), "")
	}
	undo.datapath = func() error { return p.Datapath.Del(pod) }
	if err := saveState(sp, state{IP: pod.IP, Table: pod.Table, MTU: pod.MTU, Rules: pod.Rules, Bandwidth: conf.stateBandwidth(), IPv6: pod.IPv6}); err != nil {
		return types.NewError(types.ErrIOFailure, "ADD: keep the pod's datapath for DEL and CHECK: "+err.Error(), "")
	}
	result := addResult(conf.CNIVersion, args, reply.IP, res)
	addIPv6Result(result, reply.IPv6) // dual.go
	out, err := result.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return types.NewError(types.ErrInternal, "ADD: the result: "+err.Error(), "")
	}
	if err := out.PrintTo(p.stdout()); err != nil {
		return types.NewError(types.ErrIOFailure, "ADD: print the result: "+err.Error(), "")
	}
	return nil
}

// datapathPod is the datapath of the pod at ip, with what weftd said (the rules of DefaultRules when it says none).
func datapathPod(args *skel.CmdArgs, ip netip.Addr, reply cniproto.AddReply) datapath.Pod {
	rules := datapath.Rules(reply.Rules)
	if rules == (datapath.Rules{}) {
		rules = datapath.DefaultRules
	}
	return datapath.Pod{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName, IP: ip,
		Table: reply.Table, MTU: reply.MTU, Rules: rules, IPv6: reply.IPv6}
}

// addResult is ADD's result: the host veth, the pod's interface, IP/32 via 169.254.1.1, the default route.
func addResult(cniVersion string, args *skel.CmdArgs, ip netip.Addr, r datapath.Result) *current.Result {
	gw := net.ParseIP(datapath.GatewayV4)
	podIf := 1
	return &current.Result{
		CNIVersion: cniVersion,
		Interfaces: []*current.Interface{
			{Name: r.HostVeth, Mac: r.HostMAC.String()},
			{Name: args.IfName, Mac: r.PodMAC.String(), Sandbox: args.Netns},
		},
		IPs: []*current.IPConfig{{
			Interface: &podIf,
			Address:   net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(32, 32)},
			Gateway:   gw,
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}},
	}
}

// prevIP is the pod's IPv4 address in prevResult: the one on IfName's interface, else the first IPv4 one.
// ok false when there is no prevResult.
func prevIP(conf *Conf, ifName string) (ip netip.Addr, ok bool, err error) {
	if conf.RawPrevResult == nil {
		return netip.Addr{}, false, nil
	}
	if err := version.ParsePrevResult(&conf.NetConf.NetConf); err != nil {
		return netip.Addr{}, true, fmt.Errorf("prevResult: %w", err)
	}
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return netip.Addr{}, true, fmt.Errorf("prevResult: %w", err)
	}
	var first netip.Addr
	for _, c := range res.IPs {
		a, ok := netip.AddrFromSlice(c.Address.IP)
		if !ok || !a.Unmap().Is4() {
			continue
		}
		a = a.Unmap()
		if c.Interface != nil && *c.Interface >= 0 && *c.Interface < len(res.Interfaces) && res.Interfaces[*c.Interface].Name == ifName {
			return a, true, nil
		}
		if !first.IsValid() {
			first = a
		}
	}
	if !first.IsValid() {
		return netip.Addr{}, true, errors.New("prevResult: no IPv4 address")
	}
	return first, true, nil
}

// Del is the CNI DEL command.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	pa, err := ParseArgs(args.Args)
	if err != nil {
		p.warnf("DEL %s: %v (ignored)", args.ContainerID, err)
	}
	ip, _, err := prevIP(conf, args.IfName)
	if err != nil {
		// The datapath finds the address by the host veth's route, weftd by the container.
		p.warnf("DEL %s: %v: releasing by container ID", args.ContainerID, err)
		ip = netip.Addr{}
	}
	sp := statePath(conf.DataDir, args.ContainerID, args.IfName)
	st, _, err := loadState(sp)
	if err != nil {
		p.warnf("DEL %s: %v (ignored)", args.ContainerID, err)
	}
	if !ip.IsValid() {
		ip = st.IP
	}
	pod := datapathPod(args, ip, st.reply())
	if err := p.returnENI(args, st); err != nil { // exclusive mode: the ENI back to the host first (exclusive.go)
		return types.NewError(types.ErrInternal, "DEL: return the pod's ENI to the host: "+err.Error(), "")
	}
	if err := p.Datapath.Del(pod); err != nil {
		// Keep the address held while its datapath may remain: the runtime retries DEL.
		return types.NewError(types.ErrInternal, "DEL: remove the datapath: "+err.Error(), "")
	}
	if err := removeState(sp); err != nil {
		p.warnf("DEL %s: %v (GC removes it later)", args.ContainerID, err)
	}
	err = conf.client().Del(context.Background(), cniproto.DelRequest{Pod: podID(args, pa), IP: ip})
	if errors.Is(err, cniproto.ErrUnreachable) {
		p.warnf("DEL %s: %v: the pod's datapath is gone; weftd's GC frees the address later", args.ContainerID, err)
		return nil
	}
	if err != nil {
		return weftdError("DEL", conf.Socket, err)
	}
	return nil
}

// Check is the CNI CHECK command.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	pa, err := ParseArgs(args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	ip, ok, err := prevIP(conf, args.IfName)
	if !ok {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK: prevResult: missing, expected ADD's result", "")
	}
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "CHECK: "+err.Error(), "")
	}
	st, ok, err := loadState(statePath(conf.DataDir, args.ContainerID, args.IfName))
	if err != nil || !ok {
		return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK: no usable record of ADD for container %s interface %s in %s (%v)",
			args.ContainerID, args.IfName, conf.DataDir, err), "")
	}
	if st.IP != ip {
		return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK: prevResult says %v, ADD gave %v", ip, st.IP), "")
	}
	if st.Exclusive != nil { // exclusive.go
		if err := p.checkExclusive(args, st, conf.checkBandwidth(st)); err != nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK: the exclusive ENI of %v: %v", ip, err), "")
		}
	} else {
		pod := datapathPod(args, ip, st.reply())
		pod.Bandwidth = conf.checkBandwidth(st)
		if err := p.Datapath.Check(pod); err != nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK: the datapath of %v: %v", ip, err), "")
		}
	}
	if err := conf.client().Check(context.Background(), cniproto.CheckRequest{Pod: podID(args, pa), IP: ip}); err != nil {
		return weftdError("CHECK", conf.Socket, err)
	}
	return nil
}

// Status is the CNI STATUS command (spec 1.1).
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	c := conf.client()
	c.Timeout = min(c.Timeout, statusTimeout)
	if err := c.Status(context.Background()); err != nil {
		e := weftdError("STATUS", conf.Socket, err)
		return types.NewError(errPluginNotAvailable, e.Msg, e.Details)
	}
	return nil
}

// GC is the CNI GC command (spec 1.1): the datapaths of attachments the runtime no longer knows are removed, then
// weftd frees their addresses.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	valid := make([]cniproto.Attachment, 0, len(conf.ValidAttachments))
	dvalid := make([]datapath.Attachment, 0, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid = append(valid, cniproto.Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
		dvalid = append(dvalid, datapath.Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	var errs []error
	if err := p.Datapath.Prune(dvalid); err != nil {
		errs = append(errs, fmt.Errorf("remove stale pod datapaths: %w", err))
	} else if err := pruneStates(conf.DataDir, dvalid); err != nil {
		errs = append(errs, fmt.Errorf("remove stale pod records: %w", err))
	}
	if err := conf.client().GC(context.Background(), cniproto.GCRequest{Valid: valid}); err != nil {
		errs = append(errs, weftdError("GC", conf.Socket, err))
	}
	if len(errs) > 0 {
		code := types.ErrInternal
		var te *types.Error
		if len(errs) == 1 && errors.As(errs[0], &te) {
			code = te.Code
		}
		return types.NewError(code, "GC: "+errors.Join(errs...).Error(), "")
	}
	return nil
}
