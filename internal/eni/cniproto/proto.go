// Package cniproto is the protocol between weft's CNI plugin weft-eni and weftd's eni backend: HTTP and JSON on
// a unix socket (DefaultSocket), one POST per CNI verb:
//
//	POST /v1/add    AddRequest    -> AddReply
//	POST /v1/del    DelRequest    -> {"Version"}
//	POST /v1/check  CheckRequest  -> {"Version"}
//	POST /v1/status {"Version"}   -> {"Version"}
//	POST /v1/gc     GCRequest     -> {"Version"}
//
// A failure is a non-2xx answer whose body is {"Version", "Error": {"Code", "Message"}}; the client returns it as
// *Error. Both sides check Version: a plugin and a daemon of different protocol versions refuse each other with
// Code Version rather than guess. The client sends its deadline in the Weft-Timeout header (a Go duration); the
// server gives the handler that deadline less a margin (a tenth, at most 2 s, so that its answer arrives in time),
// capped at MaxTimeout, and answers Code Timeout when it passes. An ADD that the handler completes after the
// request was answered (or whose answer cannot be delivered) is given back with the handler's Del: an address
// the plugin never learnt of is never left held.
//
// The server validates every request before the Handler sees it (container ID, interface name, netns path, pod
// namespace and name, addresses), bounds the body (MaxBody), refuses a second request for a ContainerID+IfName
// while one runs (Code Busy: the runtime retries), and turns a handler's panic into Code Internal.
package cniproto

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Version is the protocol version; requests and replies carry it.
const Version = "weft.eni/v1"

// DefaultSocket is where weftd serves the plugin.
const DefaultSocket = "/run/weft/eni.sock"

// PodID names one pod interface. Netns is the path of the pod's network namespace; Namespace and Name are the
// Kubernetes pod's (K8S_POD_NAMESPACE, K8S_POD_NAME).
type PodID struct {
	ContainerID, Netns, IfName, Namespace, Name string
}

// AddRequest asks for the pod's address.
type AddRequest struct {
	Version string
	Pod     PodID
}

// ENIInfo is the ENI an address lives on.
type ENIInfo struct {
	ID, MAC     string
	VSwitchCIDR netip.Prefix
	Gateway     netip.Addr
	PrimaryIP   netip.Addr `json:",omitzero"` // the ENI's primary address (exclusive mode: the pod's)
	// Dual stack (additive, dual.go): the vSwitch's IPv6 block and gateway, set when AddReply.IPv6 is.
	VSwitchIPv6CIDR netip.Prefix `json:",omitzero"`
	IPv6Gateway     netip.Addr   `json:",omitzero"`
	// Trunk (additive, trunk.go): set when the ENI is a trunk member ENI (exclusive mode only).
	Trunk *TrunkInfo `json:",omitempty"`
}

// The pod's mode, AddReply.Mode.
const (
	ModeShared    = "shared"    // a secondary address of a shared ENI, a veth (also when Mode is empty: older weftd)
	ModeExclusive = "exclusive" // the whole ENI moved into the pod (datapath.AddExclusive)
)

// AddReply is the pod's address and what the plugin needs to build its datapath.
type AddReply struct {
	Version     string
	IP          netip.Addr
	ENI         ENIInfo
	Table       int
	Rules       struct{ ToPod, FromPod int }
	MTU         int
	ServiceCIDR netip.Prefix // may be invalid
	// Exclusive ENI mode (additive: a weftd that predates it sends neither, meaning shared): Mode, and the
	// prefixes the pod reaches through its second veth (the node's address, the Service CIDR, host CIDRs).
	Mode       string         `json:",omitempty"`
	HostRoutes []netip.Prefix `json:",omitempty"`
	// IPv6 (dual stack, additive: an IPv4-only weftd sends none): the pod's IPv6 address, of the same ENI.
	IPv6 netip.Addr `json:",omitzero"`
	// HostRoutes6 (exclusive dual stack, exclusive_dual.go): the IPv6 prefixes the pod reaches through its
	// second veth (the node's IPv6 address when it has one).
	HostRoutes6 []netip.Prefix `json:",omitempty"`
}

// DelRequest releases the pod's address; IP comes from prevResult and may be invalid.
type DelRequest struct {
	Version string
	Pod     PodID
	IP      netip.Addr
}

// CheckRequest asks whether the pod still holds IP.
type CheckRequest struct {
	Version string
	Pod     PodID
	IP      netip.Addr
}

// Attachment is one attachment the runtime still knows.
type Attachment struct{ ContainerID, IfName string }

// GCRequest: every attachment of the network not in Valid may be released.
type GCRequest struct {
	Version string
	Valid   []Attachment
}

// Error codes.
const (
	CodeBusy       = "Busy"       // another request for the same ContainerID+IfName is running: try again later
	CodeLimit      = "Limit"      // the node serves no more pod addresses (its instance type's limit)
	CodeNotReady   = "NotReady"   // weftd cannot serve addresses yet (starting, degraded)
	CodeBadRequest = "BadRequest" // the request is malformed; Message names the field
	CodeVersion    = "Version"    // plugin and weftd speak different protocol versions
	CodeInternal   = "Internal"   // anything else, a handler's panic included
	CodeTimeout    = "Timeout"    // the request's deadline passed before the handler answered
)

// Error is a failure weftd answered. A Handler returns one (or wraps one) to choose the Code; any other error is
// answered as Code Internal with its text.
type Error struct{ Code, Message string }

func (e *Error) Error() string {
	if e.Message == "" {
		return "weftd: " + e.Code
	}
	return "weftd: " + e.Code + ": " + e.Message
}

// Is makes a Code Timeout answer match context.DeadlineExceeded, like the client's own deadline.
func (e *Error) Is(target error) bool {
	return e.Code == CodeTimeout && target == context.DeadlineExceeded
}

// Handler serves the requests; weftd's eni backend implements it. The requests it gets are validated.
type Handler interface {
	Add(ctx context.Context, r AddRequest) (AddReply, error)
	Del(ctx context.Context, r DelRequest) error
	Check(ctx context.Context, r CheckRequest) error
	Status(ctx context.Context) error
	GC(ctx context.Context, r GCRequest) error
}

// Bounds of what a request may carry.
const (
	MaxContainerID = 256  // runtimes use 64 hex digits
	MaxPath        = 4096 // PATH_MAX
)

func badRequest(format string, a ...any) *Error {
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, a...)}
}

func checkVersion(v string) *Error {
	if v != Version {
		return &Error{Code: CodeVersion, Message: fmt.Sprintf("weftd speaks %s, the request %s", Version, describeVersion(v))}
	}
	return nil
}

func describeVersion(v string) string {
	if v == "" {
		return "carries no Version"
	}
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return fmt.Sprintf("%q", v)
}

// validContainerID: the CNI runtime's rule (a letter or digit, then letters, digits, _ . -), bounded.
func validContainerID(field, id string) error {
	if id == "" {
		return errors.New(field + ": empty, expected the container ID")
	}
	if len(id) > MaxContainerID {
		return fmt.Errorf("%s: %d characters, expected at most %d", field, len(id), MaxContainerID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fmt.Errorf("%s %q: expected letters, digits, _ . - (a letter or digit first)", field, clip(id))
		}
	}
	return nil
}

// validIfName: a Linux interface name: 1..15 bytes, not . or .., no / : whitespace or control characters.
func validIfName(field, name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("%s %q: expected an interface name of 1 to 15 characters", field, clip(name))
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%s %q: not an interface name", field, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == '/' || c == ':' || c == 0x7f {
			return fmt.Errorf("%s %q: expected an interface name without / : whitespace or control characters", field, name)
		}
	}
	return nil
}

// validNetns: an absolute, clean path without NUL.
func validNetns(field, p string) error {
	if len(p) > MaxPath || !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || filepath.Clean(p) != p {
		return fmt.Errorf("%s %q: expected the absolute path of the pod's network namespace", field, clip(p))
	}
	return nil
}

// validDNS: a Kubernetes name: lowercase letters, digits and '-' (and '.' when dots), max characters, alphanumeric
// at both ends.
func validDNS(field, s string, max int, dots bool) error {
	ok := s != "" && len(s) <= max
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		ok = alnum || (i > 0 && i < len(s)-1 && (c == '-' || dots && c == '.'))
	}
	if !ok {
		what := "a DNS label (lowercase letters, digits, -)"
		if dots {
			what = "a DNS subdomain (lowercase letters, digits, - and .)"
		}
		return fmt.Errorf("%s %q: expected %s of at most %d characters", field, clip(s), what, max)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// validate checks a pod: needNetns for ADD and CHECK (DEL may come without one), needPod when the Kubernetes
// pod must be named (ADD).
func (p PodID) validate(needNetns, needPod bool) error {
	if err := validContainerID("Pod.ContainerID", p.ContainerID); err != nil {
		return err
	}
	if err := validIfName("Pod.IfName", p.IfName); err != nil {
		return err
	}
	if p.Netns != "" || needNetns {
		if err := validNetns("Pod.Netns", p.Netns); err != nil {
			return err
		}
	}
	if p.Namespace != "" || needPod {
		if err := validDNS("Pod.Namespace", p.Namespace, 63, false); err != nil {
			return err
		}
	}
	if p.Name != "" || needPod {
		if err := validDNS("Pod.Name", p.Name, 253, true); err != nil {
			return err
		}
	}
	return nil
}

func validIPv4(field string, ip netip.Addr, need bool) error {
	if !ip.IsValid() && !need {
		return nil
	}
	if !ip.Is4() || ip.IsUnspecified() {
		return fmt.Errorf("%s %v: expected a pod's IPv4 address", field, ip)
	}
	return nil
}

func (r AddRequest) validate() error { return r.Pod.validate(true, true) }

func (r DelRequest) validate() error {
	if err := r.Pod.validate(false, false); err != nil {
		return err
	}
	return validIPv4("IP", r.IP, false)
}

func (r CheckRequest) validate() error {
	if err := r.Pod.validate(true, false); err != nil {
		return err
	}
	return validIPv4("IP", r.IP, true)
}

func (r GCRequest) validate() error {
	for i, a := range r.Valid {
		if err := validContainerID(fmt.Sprintf("Valid[%d].ContainerID", i), a.ContainerID); err != nil {
			return err
		}
		if err := validIfName(fmt.Sprintf("Valid[%d].IfName", i), a.IfName); err != nil {
			return err
		}
	}
	return nil
}

// validate checks what a handler (server side) or weftd (client side) answered to ADD.
func (r AddReply) validate() error {
	if err := validIPv4("IP", r.IP, true); err != nil {
		return err
	}
	if r.Table < 1 && r.Mode != ModeExclusive { // exclusive: the ENI leaves the host, and its table with it
		return fmt.Errorf("Table %d: expected the ENI's route table (> 0)", r.Table)
	}
	if r.MTU < 0 || r.Rules.ToPod < 0 || r.Rules.FromPod < 0 {
		return fmt.Errorf("MTU %d, Rules %d/%d: expected no negative number", r.MTU, r.Rules.ToPod, r.Rules.FromPod)
	}
	if err := r.validateDual(); err != nil {
		return err
	}
	if err := r.validateExclusive(); err != nil {
		return err
	}
	return r.validateTrunk() // trunk.go
}
