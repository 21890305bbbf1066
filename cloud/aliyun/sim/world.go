// Package sim is alisim: a local Alibaba Cloud that the real alibaba-cloud-sdk-go talks to over HTTP. It serves
// the VPC 2016-04-28 RPC actions weft uses (route tables and their entries, VPCs, vSwitches), the ECS ENI actions
// (security groups checked, per-instance-type ENI and address limits, vSwitch exhaustion, the primary ENI listed;
// drills.go changes the world behind a node's back: console detach and unassign, a vSwitch filled),
// the Quota Center's route-entry quota (quotas 2020-05-10, from the per-table quotas), with signature v1
// verification, the documented error bodies and statuses, per-table route quotas and the asynchronous entry life
// cycle (Pending -> Available, Deleting -> gone), throttling and fault injection per action (refusals before a
// call runs, lost replies after it changed the state: faults.go), a write audit naming the credentials of each
// write (audit.go), an admin endpoint, a state file that survives restarts, and the instance metadata server
// (per MAC, trailing the API both ways by its Lag). Fabric mode (fabric.go) makes it carry real traffic.
// Everything read from a request is range-checked (params.go) and every topology validated (validate.go).
//
// Time is injected (Clock) and entry states are derived from timestamps when read, so the emulator needs no
// background goroutines and tests can move time explicitly. All state lives in one World guarded by one mutex;
// the HTTP front (rpc.go) only parses, authenticates and dispatches.
package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Clock is the emulator's time source.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Timing are the asynchronous delays and write spacing of route tables. Defaults resemble the real service.
type Timing struct {
	// EntryPending is how long a created entry stays Pending (real tables: about 3 s).
	EntryPending time.Duration `json:"entryPending"`
	// EntryDeleting is how long a deleted entry stays Deleting before it disappears.
	EntryDeleting time.Duration `json:"entryDeleting"`
	// WriteGap is the minimum spacing of two writes to one table; closer writes get TaskConflict
	// ("the operation is too frequent").
	WriteGap time.Duration `json:"writeGap"`
	// ENITransition is how long Attaching, Detaching and Deleting last for an ENI.
	ENITransition time.Duration `json:"eniTransition"`
}

// DefaultTiming: 3 s Pending and Deleting (what the service shows), 1 s between writes to one table.
// ENIs take 2 s to attach, detach or delete.
var DefaultTiming = Timing{EntryPending: 3 * time.Second, EntryDeleting: 3 * time.Second, WriteGap: time.Second,
	ENITransition: 2 * time.Second}

// State is the persistent part of the world (the state file and the admin dump).
type State struct {
	RegionID      string          `json:"regionId"`
	VPCs          []*VPC          `json:"vpcs"`
	VSwitches     []*VSwitch      `json:"vSwitches"`
	RouteTables   []*RouteTable   `json:"routeTables"`
	Instances     []*Instance     `json:"instances"`
	InstanceTypes []*InstanceType `json:"instanceTypes"`
	ENIs          []*ENI          `json:"enis"`
	// SecurityGroups are the groups an ENI may join (CreateNetworkInterface refuses others).
	SecurityGroups []*SecurityGroup `json:"securityGroups"`
	AccessKeys     []AccessKey      `json:"accessKeys"`
	Timing         Timing           `json:"timing"`
}

// VPC is a virtual private cloud.
type VPC struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CIDR      string    `json:"cidr"`
	VRouterID string    `json:"vRouterId"`
	Created   time.Time `json:"created"`
}

// VSwitch is a subnet of a VPC in one zone.
type VSwitch struct {
	ID           string `json:"id"`
	VPCID        string `json:"vpcId"`
	Zone         string `json:"zone"`
	CIDR         string `json:"cidr"`
	IPv6CIDR     string `json:"ipv6Cidr,omitempty"`
	RouteTableID string `json:"routeTableId"`
	// Reserved are addresses taken by something outside the emulated tenant (other accounts' services, an
	// exhaustion drill: World.FillVSwitch); they count as used and are never handed out.
	Reserved []string `json:"reserved,omitempty"`
}

// SecurityGroup is a VPC security group; ENIs join up to MaxSecurityGroupsPerENI of them.
type SecurityGroup struct {
	ID    string `json:"id"`
	VPCID string `json:"vpcId"`
}

// RouteTable holds route entries under a quota of custom entries.
type RouteTable struct {
	ID        string        `json:"id"`
	VPCID     string        `json:"vpcId"`
	Type      string        `json:"type"` // System or Custom
	Quota     int           `json:"quota"`
	Entries   []*RouteEntry `json:"entries"`
	LastWrite time.Time     `json:"lastWrite"`
	Created   time.Time     `json:"created"`

	index map[string]bool // destinations, rebuilt lazily after any change (see dsts)
}

// RouteEntry is one route.
type RouteEntry struct {
	ID          string    `json:"id"`
	Dst         string    `json:"dst"`
	NextHopType string    `json:"nextHopType"`
	NextHopID   string    `json:"nextHopId"`
	Type        string    `json:"type"` // Custom or System
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	ClientToken string    `json:"clientToken,omitempty"`
	ReadyAt     time.Time `json:"readyAt"`           // Pending until then
	DeleteAt    time.Time `json:"deleteAt,omitzero"` // Deleting since; gone at DeleteAt + EntryDeleting
	Modified    time.Time `json:"modified"`
}

// Instance is an ECS instance attached to a vSwitch.
type Instance struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Zone      string `json:"zone"`
	VSwitchID string `json:"vSwitchId"`
	PrimaryIP string `json:"primaryIp"`
	// PrimaryIPv6 is the instance's IPv6 address, when its vSwitch has an IPv6 block.
	PrimaryIPv6 string `json:"primaryIpv6,omitempty"`
	MAC         string `json:"mac"`
	Status      string `json:"status"`
	Hostname    string `json:"hostname"`
	RAMRole     string `json:"ramRole,omitempty"`
}

// InstanceType carries the ENI figures the planner and the ENI backend need.
type InstanceType struct {
	ID                          string `json:"id"`
	EniQuantity                 int    `json:"eniQuantity"`
	EniPrivateIpAddressQuantity int    `json:"eniPrivateIpAddressQuantity"`
	EniIpv6AddressQuantity      int    `json:"eniIpv6AddressQuantity"`
	EniTotalQuantity            int    `json:"eniTotalQuantity"`
	EniTrunkSupported           bool   `json:"eniTrunkSupported"`
}

// AccessKey is a credential the emulator accepts.
type AccessKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	// STS keys carry a token and an expiry.
	SecurityToken string    `json:"securityToken,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
	// Instance is the instance a RAM-role key was issued to by the metadata server (the write audit names it).
	Instance string `json:"instance,omitempty"`
}

// World is the emulator's state and the lock around it.
type World struct {
	mu     sync.Mutex
	st     *State
	clock  Clock
	path   string // state file; "" for none
	nonces map[string]time.Time
	// writes is the audit of applied writes (audit.go); dropped counts the oldest records let go.
	writes  []Write
	dropped int
}

// NewWorld wraps a state. path, when set, is rewritten after every change.
func NewWorld(st *State, clock Clock, path string) *World {
	if clock == nil {
		clock = realClock{}
	}
	if st.Timing == (Timing{}) {
		st.Timing = DefaultTiming
	}
	return &World{st: st, clock: clock, path: path, nonces: map[string]time.Time{}}
}

// LoadState reads a state file (or a topology) and validates it.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &st, nil
}

// save writes the state file atomically; mu must be held.
func (w *World) save() error {
	if w.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(w.st, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(w.path), ".alisim-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), w.path)
}

// Dump returns the state as JSON, with entry statuses settled to now.
func (w *World) Dump() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	return json.MarshalIndent(w.st, "", " ")
}

// settle removes entries whose deletion has completed; mu must be held.
func (w *World) settle() {
	now := w.clock.Now()
	for _, t := range w.st.RouteTables {
		kept := t.Entries[:0]
		for _, e := range t.Entries {
			if !e.DeleteAt.IsZero() && !now.Before(e.DeleteAt.Add(w.st.Timing.EntryDeleting)) {
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) != len(t.Entries) {
			t.index = nil
		}
		t.Entries = kept
	}
	w.settleENIs()
}

// status is the entry's status at now.
func (w *World) status(e *RouteEntry, now time.Time) string {
	switch {
	case !e.DeleteAt.IsZero():
		return "Deleting"
	case now.Before(e.ReadyAt):
		return "Pending"
	default:
		return "Available"
	}
}

func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + "-" + strings.ToLower(hex.EncodeToString(b))[:20]
}

func (w *World) vpc(id string) *VPC {
	for _, v := range w.st.VPCs {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (w *World) table(id string) *RouteTable {
	for _, t := range w.st.RouteTables {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (w *World) instance(id string) *Instance {
	for _, i := range w.st.Instances {
		if i.ID == id {
			return i
		}
	}
	return nil
}

func (w *World) vswitch(id string) *VSwitch {
	for _, s := range w.st.VSwitches {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// customCount is the number of custom entries counted against the quota (Deleting ones still count).
func customCount(t *RouteTable) int {
	n := 0
	for _, e := range t.Entries {
		if e.Type == "Custom" {
			n++
		}
	}
	return n
}

func sortedTables(ts []*RouteTable) []*RouteTable {
	out := append([]*RouteTable(nil), ts...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// inCGNAT tells whether a prefix lies within 100.64.0.0/10, which VPC routes may not target.
func inCGNAT(p netip.Prefix) bool {
	cg := netip.MustParsePrefix("100.64.0.0/10")
	return p.Addr().Is4() && cg.Overlaps(p) && p.Bits() >= cg.Bits()
}

// SetTiming replaces the route-table timing (tests and the admin API).
func (w *World) SetTiming(t Timing) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.Timing = t
}

// EnableIPv6 gives a vSwitch an IPv6 block (tests and topologies built in code).
func (w *World) EnableIPv6(vswitch, cidr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.vswitch(vswitch); s != nil {
		s.IPv6CIDR = cidr
	}
}

// CustomEntries returns copies of a table's custom entries (tests and tools).
func (w *World) CustomEntries(table string) []RouteEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	var out []RouteEntry
	if t := w.table(table); t != nil {
		for _, e := range t.Entries {
			if e.Type == "Custom" {
				out = append(out, *e)
			}
		}
	}
	return out
}

// DeleteEntry removes an entry at once, as an operator's console action would (tests).
func (w *World) DeleteEntry(table, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.table(table)
	if t == nil {
		return fmt.Errorf("route table %q does not exist", table)
	}
	for i, e := range t.Entries {
		if e.ID == id {
			t.Entries = append(t.Entries[:i], t.Entries[i+1:]...)
			t.index = nil
			return w.save()
		}
	}
	return fmt.Errorf("route entry %q does not exist", id)
}
