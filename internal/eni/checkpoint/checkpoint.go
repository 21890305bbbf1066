// Package checkpoint is the eni backend's memory of which pod holds which secondary address: a versioned JSON
// file, written atomically, read back on every start.
//
// Why it is written before the CNI answer. weftd hands a pod an address and the plugin builds the pod's datapath
// from the answer. If weftd answered first and crashed before writing, a restarted weftd would see the address
// as idle and give it to a second pod while the first still uses it: two pods on one address, which nothing on
// the node can detect later (aws/amazon-vpc-cni-k8s#972, #1188, #2110). Written first, the worst a crash can do
// is keep a record of an allocation the pod never received, which the start-up reconcile and the address GC
// clear (internal/eni/reconcile). So the pool saves before it returns, and a failed save fails the ADD.
//
// Why atomic, and why the loader refuses so much. The file is the only record of allocations that the cloud and
// the host cannot tell apart (an address assigned to an ENI but not yet routed to a pod, an address cooling down
// after a pod left). Save writes a temporary file beside it, fsyncs it, renames it over the old one and fsyncs
// the directory, so after a crash or power loss the path holds the old file or the new one, never a torn one, and
// a leftover temporary file is never read. Load refuses anything it cannot read with certainty: a corrupt,
// truncated, oversized or invalid file, a file without a version, or one of a version this weft does not know (a
// newer weft wrote it: a rollback). It names the path and the problem and leaves the file as it is; the caller
// refuses to serve rather than guess, so an operator can look at the file, and a roll forward finds it intact.
//
// Versions. Version is the format Save writes. Decode turns any version it knows into the current one through a
// chain of per-version steps (upgrade, in decode.go): version N+1 adds the step from N, decoding version N with a
// frozen copy of its types, so old files keep loading and each step stays small. Version 1 is the first format;
// version 2 adds fixed pod addresses (reserve.go: the Reserved state, and the Reserve, StatefulSet and
// ReservedUntil fields), and a version 1 file loads as it is, with none reserved.
package checkpoint

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Version is the checkpoint format Save writes and the newest one Decode reads.
const Version = 2

// State is where an address stands in the pool.
type State string

const (
	Assigned    State = "Assigned"    // held by a pod
	Cooldown    State = "Cooldown"    // released at ReleasedAt; not handed out before ReleasedAt + the cooldown
	Quarantined State = "Quarantined" // the truths disagree (Reason says how); never handed out
	// Reserved (version 2): kept for the pod PodNamespace/PodName, which released it at ReleasedAt, until
	// ReservedUntil; handed to no other pod (reserve.go).
	Reserved State = "Reserved"
)

// Record is one address the node must remember: held by a pod, cooling down after one, or quarantined.
type Record struct {
	ContainerID  string     `json:"containerID,omitempty"`
	Netns        string     `json:"netns,omitempty"`
	IfName       string     `json:"ifName,omitempty"`
	PodNamespace string     `json:"podNamespace,omitempty"`
	PodName      string     `json:"podName,omitempty"`
	IP           netip.Addr `json:"ip"`
	ENI          string     `json:"eni"` // ENI id
	State        State      `json:"state"`
	AssignedAt   time.Time  `json:"assignedAt,omitzero"`
	ReleasedAt   time.Time  `json:"releasedAt,omitzero"`
	Reason       string     `json:"reason,omitempty"`
	// Version 2: fixed pod addresses (reserve.go).
	Reserve       bool      `json:"reserve,omitempty"`      // the pod keeps the address after its release (Assigned, Reserved)
	StatefulSet   string    `json:"statefulSet,omitempty"`  // the pod's owning StatefulSet, whose scale-down ends the reservation
	ReservedUntil time.Time `json:"reservedUntil,omitzero"` // a Reserved record's end
	// IPv6 (version 2, optional; dual stack, ipv6.go): the IPv6 address of the same ENI paired with IP.
	IPv6 netip.Addr `json:"ipv6,omitzero"`
}

// File is the whole checkpoint.
type File struct {
	Version  int      `json:"version"`
	Instance string   `json:"instance"` // the ECS instance the records belong to
	Records  []Record `json:"records"`
}

// maxProblems bounds how many problems one Validate error lists, so a damaged file of thousands of records
// yields a readable message.
const maxProblems = 20

// Validate checks every field of every record and the records against each other. Its error lists the problems
// (at most maxProblems, then how many more), each naming the record index, its field and what was expected.
//
// Per record: IP a unicast IPv4 address; State one of the three; ENI set (a Quarantined record may leave it empty:
// the address is on no ENI the node knows, yet must not be handed out should the cloud list it again); an
// Assigned record names its ContainerID and IfName; a Cooldown record has ReleasedAt; ContainerID, IfName and
// Netns well formed when set (the CNI specification's rules; Netns an absolute path); PodNamespace and PodName
// both or neither. Across records: no address twice among Assigned and Cooldown records (Quarantined ones may
// repeat an address: they only keep it from being handed out), and no ContainerID+IfName twice among Assigned
// records (a Cooldown record keeps the pod that released it, and that pod may be added again). A file with
// records names its Instance. Version 2's reservations: see reserveProblems; Reserved records count with the
// Assigned and Cooldown ones (no address twice), and a pod interface has at most one Reserved record.
func (f *File) Validate() error {
	if f == nil {
		return errors.New("checkpoint: no file")
	}
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	if f.Version != Version {
		add("version: %d, expected %d", f.Version, Version)
	}
	if len(f.Records) > 0 && strings.TrimSpace(f.Instance) == "" {
		add("instance: empty, expected the ECS instance id the %d records belong to", len(f.Records))
	}
	if err := checkText(f.Instance); err != nil {
		add("instance: %v", err)
	}
	byIP := map[netip.Addr]int{}
	byPod := map[[2]string]int{}
	byReserved := map[[3]string]int{}
	byIPv6 := map[netip.Addr]int{}
	for i, r := range f.Records {
		for _, p := range r.problems() {
			add("records[%d].%s", i, p)
		}
		if r.IP.IsValid() && (r.State == Assigned || r.State == Cooldown || r.State == Reserved) {
			if j, dup := byIP[r.IP]; dup {
				add("records[%d].ip: %s is already held by records[%d] (%s); an address is Assigned, Cooldown or Reserved once",
					i, r.IP, j, f.Records[j].State)
			} else {
				byIP[r.IP] = i
			}
		}
		if p := ipv6Dup(byIPv6, f.Records, i); p != "" {
			add("%s", p)
		}
		if r.State == Assigned && r.ContainerID != "" && r.IfName != "" {
			k := [2]string{r.ContainerID, r.IfName}
			if j, dup := byPod[k]; dup {
				add("records[%d].containerID: container %s interface %s already holds records[%d] (%s); a pod interface has one address",
					i, r.ContainerID, r.IfName, j, f.Records[j].IP)
			} else {
				byPod[k] = i
			}
		}
		if r.State == Reserved && r.PodName != "" {
			k := [3]string{r.PodNamespace, r.PodName, r.IfName}
			if j, dup := byReserved[k]; dup {
				add("records[%d].podName: pod %s/%s interface %s already has an address reserved by records[%d] (%s); a pod keeps one",
					i, r.PodNamespace, r.PodName, r.IfName, j, f.Records[j].IP)
			} else {
				byReserved[k] = i
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	more := ""
	if len(probs) > maxProblems {
		more = fmt.Sprintf("; and %d more", len(probs)-maxProblems)
		probs = probs[:maxProblems]
	}
	return fmt.Errorf("invalid checkpoint: %s%s", strings.Join(probs, "; "), more)
}

// Validate checks one record on its own (File.Validate's per-record rules; nothing about other records): its
// error lists the problems, each naming the field and what was expected.
func (r Record) Validate() error {
	if p := r.problems(); len(p) > 0 {
		return fmt.Errorf("invalid checkpoint record: %s", strings.Join(p, "; "))
	}
	return nil
}

// problems lists what is wrong with one record on its own, each starting with the JSON name of the field.
func (r Record) problems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	switch {
	case !r.IP.IsValid():
		add("ip: missing, expected an IPv4 address")
	case !r.IP.Is4():
		add("ip: %s, expected an IPv4 address", r.IP)
	case !r.IP.IsGlobalUnicast(): // not 0.0.0.0, loopback, link-local, multicast nor 255.255.255.255
		add("ip: %s, expected a unicast IPv4 address", r.IP)
	}
	switch r.State {
	case Assigned, Cooldown, Quarantined, Reserved:
	default:
		add("state: %q, expected %s, %s, %s or %s", string(r.State), Assigned, Cooldown, Quarantined, Reserved)
	}
	if r.ENI == "" && r.State != Quarantined {
		add("eni: empty, expected the id of the ENI the address is on")
	} else if err := checkID(r.ENI); err != nil {
		add("eni: %v", err)
	}
	if r.State == Assigned {
		if r.ContainerID == "" {
			add("containerID: empty, expected the container of the pod that holds the address")
		}
		if r.IfName == "" {
			add("ifName: empty, expected the pod's interface name")
		}
	}
	if r.State == Cooldown && r.ReleasedAt.IsZero() {
		add("releasedAt: missing, expected the time a Cooldown address was released")
	}
	if r.ContainerID != "" {
		if err := checkID(r.ContainerID); err != nil {
			add("containerID: %v", err)
		}
	}
	if r.IfName != "" {
		if err := checkIfName(r.IfName); err != nil {
			add("ifName: %v", err)
		}
	}
	if r.Netns != "" && !filepath.IsAbs(r.Netns) {
		add("netns: %q, expected an absolute path", r.Netns)
	} else if err := checkText(r.Netns); err != nil {
		add("netns: %v", err)
	}
	p = append(p, r.reserveProblems()...)
	p = append(p, r.ipv6Problems()...)
	if (r.PodNamespace == "") != (r.PodName == "") {
		add("podName: namespace %q and name %q, expected both or neither", r.PodNamespace, r.PodName)
	}
	for _, f := range []struct{ name, v string }{
		{"podNamespace", r.PodNamespace}, {"podName", r.PodName}, {"reason", r.Reason},
	} {
		if err := checkText(f.v); err != nil {
			add("%s: %v", f.name, err)
		}
	}
	return p
}

// checkID: the CNI specification's container ID (letters, digits, '_', '.', '-'), which ENI ids also satisfy.
func checkID(s string) error {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%q, expected only letters, digits, '_', '.' and '-'", s)
		}
	}
	return nil
}

// checkIfName: the CNI specification's interface name: at most 15 bytes, not "." or "..", no '/', ':' or space.
func checkIfName(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\v\f\r") {
		return fmt.Errorf("%q, expected an interface name (at most 15 bytes, not . or .., no '/', ':' or spaces)", s)
	}
	return checkText(s)
}

// checkText refuses control characters, which have no place in names and would garble a log line or an Event.
func checkText(s string) error {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%q holds a control character", s)
		}
	}
	return nil
}
