package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Version 1, frozen: the types as version 1 wrote them, and the step to version 2. Never change these to follow
// the current types: they are how a version 1 file is read.

type recordV1 struct {
	ContainerID  string     `json:"containerID,omitempty"`
	Netns        string     `json:"netns,omitempty"`
	IfName       string     `json:"ifName,omitempty"`
	PodNamespace string     `json:"podNamespace,omitempty"`
	PodName      string     `json:"podName,omitempty"`
	IP           netip.Addr `json:"ip"`
	ENI          string     `json:"eni"`
	State        string     `json:"state"`
	AssignedAt   time.Time  `json:"assignedAt,omitzero"`
	ReleasedAt   time.Time  `json:"releasedAt,omitzero"`
	Reason       string     `json:"reason,omitempty"`
}

type fileV1 struct {
	Version  int        `json:"version"`
	Instance string     `json:"instance"`
	Records  []recordV1 `json:"records"`
}

// upgradeV1 reads a version 1 file (its fields only: a field version 1 did not have is refused, as version 1's
// own Decode refused it) and writes it as version 2: every record as it was, none reserved. Version 1 knew no
// Reserved state, so a record claiming one is refused here, not upgraded.
func upgradeV1(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v1 fileV1
	if err := dec.Decode(&v1); err != nil {
		return nil, fmt.Errorf("version 1 checkpoint: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the checkpoint's JSON object")
	}
	out := File{Version: 2, Instance: v1.Instance, Records: make([]Record, 0, len(v1.Records))}
	for i, r := range v1.Records {
		if r.State == string(Reserved) {
			return nil, fmt.Errorf("records[%d].state: %q, which version 1 does not have (expected Assigned, Cooldown or Quarantined)", i, r.State)
		}
		out.Records = append(out.Records, Record{ContainerID: r.ContainerID, Netns: r.Netns, IfName: r.IfName,
			PodNamespace: r.PodNamespace, PodName: r.PodName, IP: r.IP, ENI: r.ENI, State: State(r.State),
			AssignedAt: r.AssignedAt, ReleasedAt: r.ReleasedAt, Reason: r.Reason})
	}
	return json.Marshal(&out)
}
