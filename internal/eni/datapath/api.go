// Package datapath is the netlink side of the eni backend: the pod's datapath (veth pair, /32 address, default
// route via 169.254.1.1, the host's /32 route and the two policy rules, Terway's shape) for the CNI plugin, and the
// host's ENI links, route tables and rules for weftd.
//
// This file only fixes the API of ENI-DESIGN.md on branch h-proto so the plugin compiles against it; every
// function returns ErrNotBuilt. The implementation comes from branch h-dp and replaces this file.
package datapath

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ErrNotBuilt is what every function of this placeholder returns.
var ErrNotBuilt = errors.New("datapath: not built on this branch")

// ErrNotFound: the link looked for is not (yet) on the host.
var ErrNotFound = errors.New("datapath: not found")

// Rules are the ip rule priorities of the pod rules.
type Rules struct{ ToPod, FromPod int }

// DefaultRules are Terway's: 512 "to <pod> lookup main" and 2048 "from <pod> lookup <ENI table>".
var DefaultRules = Rules{ToPod: 512, FromPod: 2048}

// GatewayV4 is the pod's default gateway (on-link, permanent neighbour).
const GatewayV4 = "169.254.1.1"

// HostVethName is the host end of the pod's veth: "wen" + 12 hex of sha256(containerID/ifName).
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "wen" + hex.EncodeToString(sum[:])[:12]
}

// Pod is one pod interface's datapath.
type Pod struct {
	ContainerID, Netns, IfName string // Netns: the path of the pod's network namespace
	IP                         netip.Addr
	Table                      int // the ENI's route table
	MTU                        int // 0: 1500
	Rules                      Rules
}

// Result is what Add made.
type Result struct {
	HostVeth        string
	HostMAC, PodMAC net.HardwareAddr
}

// Add builds the pod's datapath; any failure undoes all it did.
func Add(p Pod) (Result, error) { return Result{}, ErrNotBuilt }

// Del removes the pod's datapath; idempotent.
func Del(p Pod) error { return ErrNotBuilt }

// Check says what of the pod's datapath is missing.
func Check(p Pod) error { return ErrNotBuilt }

// Attachment is a pod interface the runtime still knows (CNI GC's cni.dev/valid-attachments).
type Attachment struct{ ContainerID, IfName string }

// Prune removes the host veths named like HostVethName of no valid attachment (their routes go with them).
// Added by h-proto for the plugin's GC; not yet in ENI-DESIGN.md.
func Prune(valid []Attachment) error { return ErrNotBuilt }

// ENILink is one ENI's host side.
type ENILink struct {
	MAC     net.HardwareAddr
	Gateway netip.Addr   // the vSwitch gateway
	CIDR    netip.Prefix // the vSwitch block
	Table   int
	MTU     int // 0: leave
}

// Host is weftd's side; H nil: the current netns.
type Host struct {
	H     *netlink.Handle
	Rules Rules
}

// LinkByMAC finds the ENI's link; ErrNotFound when not (yet) there.
func (h Host) LinkByMAC(mac net.HardwareAddr) (netlink.Link, error) { return nil, ErrNotBuilt }

// EnsureENI sets the ENI up with its table; idempotent.
func (h Host) EnsureENI(e ENILink) (ifindex int, err error) { return 0, ErrNotBuilt }

// HostPod is a pod datapath found on the host.
type HostPod struct {
	Veth string
	IP   netip.Addr
}

// PodRule is a rule pair of one pod.
type PodRule struct {
	IP    netip.Addr
	Table int
}

// Observed is the host's pod datapaths and rules.
type Observed struct {
	Pods  []HostPod
	Rules []PodRule
}

// Observe reads the host's pod veths, their /32 routes and the rules at the two priorities.
func (h Host) Observe() (Observed, error) { return Observed{}, ErrNotBuilt }

// SyncRules makes the rules at Rules.ToPod/FromPod exactly want.
func (h Host) SyncRules(want []PodRule) error { return ErrNotBuilt }

// TableFor is base + ifindex (Terway: 1000 + ifindex).
func TableFor(base, ifindex int) int { return base + ifindex }
