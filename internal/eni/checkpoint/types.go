// Package checkpoint holds weftd's record of every pod address of the eni backend: a versioned file saved
// atomically before a CNI ADD is answered, loaded and migrated at start.
package checkpoint

import (
	"net/netip"
	"time"
)

// Version is the checkpoint format this build writes.
const Version = 1

// State is what a record says about its address.
type State string

const (
	Assigned    State = "Assigned"    // held by a pod
	Cooldown    State = "Cooldown"    // released at ReleasedAt; not handed out before ReleasedAt + the cooldown
	Quarantined State = "Quarantined" // the truths disagree (Reason says how); never handed out
)

// Record is one address the checkpoint knows about.
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
}

// File is the checkpoint file.
type File struct {
	Version  int      `json:"version"`
	Instance string   `json:"instance"` // the ECS instance the records belong to
	Records  []Record `json:"records"`
}
