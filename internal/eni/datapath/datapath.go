// Package datapath is the kernel side of the eni backend: Terway's policy-routing datapath for pods on
// secondary addresses of shared ENIs.
//
// The pod side (Add, Del, Check) is what the CNI plugin runs in the host network namespace for one pod: a veth
// pair whose host end is named HostVethName(containerID, ifName) and whose other end is created directly inside
// the pod's namespace as IfName (one netlink call, so no half-moved device ever exists). In the pod: the address
// as /32, a scope-link route to GatewayV4, a default route via GatewayV4 on-link and a permanent neighbour entry
// for GatewayV4 pointing at the host end's MAC, so the pod never ARPs for its gateway. On the host: a /32 route to
// the pod via its veth, rule Rules.ToPod "to IP/32 lookup main" (traffic to the pod, whoever sends it, follows the
// main table to the veth) and rule Rules.FromPod "from IP/32 lookup Table" (traffic from the pod leaves through
// its ENI's table). Add is a list of named steps, each registering its undo; a failing step undoes the ones before
// it in reverse, so a failed Add leaves the host and the pod namespace as it found them (one exception:
// net.ipv4.ip_forward, a host-wide precondition other pods rely on, stays 1). Add returns only once both ends
// transmit: the kernel swaps a new device's placeholder qdisc (which drops everything) for the real one
// asynchronously, and a pod's first packets, typically its first DNS query, must not be lost to that.
// Pod.Bandwidth, the pod's bandwidth limits, are tbf qdiscs on the two veth ends (bandwidth.go), checked by Check.
//
// The host side (Host) is what weftd runs for the node: it finds an ENI by MAC, keeps its table (default via the
// vSwitch gateway on-link, the vSwitch block on-link), reads back the pods' veths, routes and rules, and keeps the
// rules at the two priorities equal to the wanted set. weft owns exactly those two priorities: rules found there
// that nobody wants are removed; rules at any other priority are never touched.
//
// Routes and rules weft installs carry the protocol RouteProtocol (87, "weft"; free in iproute2's rt_protos), so
// `ip route show proto 87` and `ip rule` show which ones are ours. IPv4 only.
//
// Sysctls (ip_forward, rp_filter, the pod end's IPv6 autoconf) are written through /proc/sys, which the kernel
// resolves in the network namespace of the calling thread: call the pod side from a thread in the host
// namespace, and give Host a nil handle (or a handle of the caller's own namespace).
package datapath

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/bandwidth"
)

// Rules are the ip rule priorities of the pod rules.
type Rules struct{ ToPod, FromPod int }

// DefaultRules are Terway's priorities: 512 "to <pod> lookup main", 2048 "from <pod> lookup <ENI table>".
// A zero Rules means DefaultRules everywhere in this package.
var DefaultRules = Rules{ToPod: 512, FromPod: 2048}

// GatewayV4 is the pod's default gateway: on-link, a permanent neighbour entry to the host veth's MAC.
const GatewayV4 = "169.254.1.1"

// RouteProtocol marks the routes and rules this package installs (rtm_protocol / FRA_PROTOCOL).
const RouteProtocol netlink.RouteProtocol = 87

// DefaultMTU is the pod's MTU when Pod.MTU is 0.
const DefaultMTU = 1500

// ErrNotFound: the link asked for is not (yet) on the host.
var ErrNotFound = errors.New("not found")

// ErrExists: Add found the pod's host veth or its interface in the pod already there (an earlier ADD of the same
// container and interface without a DEL); Add changed nothing.
var ErrExists = errors.New("already exists")

var gatewayV4 = netip.MustParseAddr(GatewayV4)

// HostVethName is the host end of a pod's veth: "wen" and 12 hex digits of sha256(containerID "/" ifName), 15
// bytes, the longest name the kernel takes.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return vethPrefix + hex.EncodeToString(sum[:])[:vethHexLen]
}

const (
	vethPrefix = "wen"
	vethHexLen = 12
)

// isHostVethName says whether name has HostVethName's shape.
func isHostVethName(name string) bool {
	if len(name) != len(vethPrefix)+vethHexLen || name[:len(vethPrefix)] != vethPrefix {
		return false
	}
	for _, c := range name[len(vethPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Pod is one pod interface's datapath.
type Pod struct {
	ContainerID, Netns, IfName string // Netns: the path of the pod's network namespace
	IP                         netip.Addr
	Table                      int // the ENI's route table
	MTU                        int // 0: DefaultMTU
	Rules                      Rules
	Bandwidth                  bandwidth.Limits // zero: no limits (bandwidth.go)
	IPv6                       netip.Addr       // dual stack (ipv6.go): the pod's IPv6 address; invalid: IPv4 only
}

// Result is what Add made.
type Result struct {
	HostVeth        string
	HostMAC, PodMAC net.HardwareAddr
}

func (p Pod) withDefaults() Pod {
	if p.Rules == (Rules{}) {
		p.Rules = DefaultRules
	}
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	return p
}

func (p Pod) id() string { return p.ContainerID + "/" + p.IfName }

// validate checks p after withDefaults. full: Add and Check (everything); else Del (what identifies the pod's
// datapath: ContainerID, IfName, Rules, and IP when it is set).
func (p Pod) validate(full bool) error {
	var errs []error
	if p.ContainerID == "" {
		errs = append(errs, errors.New("ContainerID: empty, want the container's ID"))
	}
	if err := validIfName(p.IfName); err != nil {
		errs = append(errs, fmt.Errorf("IfName %q: %w", p.IfName, err))
	}
	if err := p.Rules.validate(); err != nil {
		errs = append(errs, err)
	}
	if full || p.IP.IsValid() {
		if !p.IP.IsValid() || !p.IP.Is4() {
			errs = append(errs, fmt.Errorf("IP %v: want an IPv4 address", p.IP))
		} else if p.IP.IsUnspecified() || p.IP.IsLoopback() || p.IP.IsMulticast() || p.IP == gatewayV4 ||
			p.IP == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			errs = append(errs, fmt.Errorf("IP %v: want a unicast IPv4 address other than %s", p.IP, GatewayV4))
		}
	}
	if err := p.validateIPv6(); err != nil {
		errs = append(errs, err)
	}
	if full {
		if p.Netns == "" {
			errs = append(errs, errors.New("Netns: empty, want the path of the pod's network namespace"))
		}
		if err := validTable(p.Table); err != nil {
			errs = append(errs, fmt.Errorf("Table %d: %w", p.Table, err))
		}
		if err := validMTU(p.MTU); err != nil {
			errs = append(errs, fmt.Errorf("MTU %d: %w", p.MTU, err))
		} else if err := p.validateBandwidth(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("datapath: pod %s: %w", p.id(), errors.Join(errs...))
	}
	return nil
}

// validate: both priorities in 1..32765 (0 is the local table's rule, 32766/32767 main's and default's), distinct,
// and ToPod first: traffic between two pods of this node must find the main table before the ENI table.
func (r Rules) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"Rules.ToPod", r.ToPod}, {"Rules.FromPod", r.FromPod}} {
		if f.v < 1 || f.v > 32765 {
			errs = append(errs, fmt.Errorf("%s %d: want a rule priority in 1..32765", f.name, f.v))
		}
	}
	if len(errs) == 0 && r.ToPod >= r.FromPod {
		errs = append(errs, fmt.Errorf("Rules.ToPod %d, Rules.FromPod %d: want ToPod below FromPod (distinct, "+
			"\"to <pod> lookup main\" evaluated first)", r.ToPod, r.FromPod))
	}
	return errors.Join(errs...)
}

func (r Rules) withDefaults() Rules {
	if r == (Rules{}) {
		return DefaultRules
	}
	return r
}

// validTable: a route table a rule can point at and that is not one of the kernel's own (253 default, 254 main,
// 255 local; 0 is unspecified).
func validTable(t int) error {
	if t < 1 || int64(t) > 0xFFFFFFFF {
		return errors.New("want a route table in 1..4294967295")
	}
	if t == unix.RT_TABLE_DEFAULT || t == unix.RT_TABLE_MAIN || t == unix.RT_TABLE_LOCAL {
		return errors.New("want a route table other than the kernel's default (253), main (254) and local (255)")
	}
	return nil
}

func validMTU(m int) error {
	if m < 68 || m > 65535 {
		return errors.New("want 68..65535 (or 0 for the default)")
	}
	return nil
}

// validIfName is the kernel's dev_valid_name.
func validIfName(n string) error {
	switch {
	case n == "":
		return errors.New("empty, want an interface name")
	case len(n) > 15:
		return errors.New("longer than 15 bytes")
	case n == "." || n == "..":
		return errors.New("not an interface name")
	}
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c == '/' || c == ':' || c == 0:
			return fmt.Errorf("contains %q", c)
		case c == ' ' || c >= '\t' && c <= '\r':
			return errors.New("contains white space")
		}
	}
	return nil
}

func host32(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

// addr32 is the address of a /32 IPv4 net, if n is one.
func addr32(n *net.IPNet) (netip.Addr, bool) {
	if n == nil {
		return netip.Addr{}, false
	}
	ones, bits := n.Mask.Size()
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok || ones != 32 || bits != 32 {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.Is4()
}

// notFound reports the errors deleting something already gone gives.
func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL)
}
