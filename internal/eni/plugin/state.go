package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/internal/bandwidth"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/readfile"
)

// DefaultDataDir is where ADD keeps, per pod interface, what DEL and CHECK need beyond prevResult: weftd's route
// table, MTU and rule priorities. DEL works without it (prevResult, or the host veth's route, gives the address).
const DefaultDataDir = "/var/lib/cni/weft-eni"

// state is what ADD built the datapath with.
type state struct {
	IP        netip.Addr
	Table     int
	MTU       int
	Rules     datapath.Rules
	Bandwidth *bandwidth.Limits `json:",omitempty"` // nil: none (bandwidth.go)
	// Exclusive: the pod holds a whole ENI (exclusive.go); nil for a shared one.
	Exclusive *exclusiveState `json:",omitempty"`
	// IPv6: the pod's IPv6 address (dual stack, dual.go); absent when IPv4 only.
	IPv6 netip.Addr `json:",omitzero"`
}

const stateExt = ".json"

// reply is the state as weftd's answer, for datapathPod.
func (s state) reply() cniproto.AddReply {
	r := cniproto.AddReply{IP: s.IP, Table: s.Table, MTU: s.MTU, IPv6: s.IPv6}
	r.Rules.ToPod, r.Rules.FromPod = s.Rules.ToPod, s.Rules.FromPod
	return r
}

// statePath names a pod interface's state by its host veth's name: a fixed-length name of safe characters
// whatever the container ID and interface name are.
func statePath(dir, containerID, ifName string) string {
	return filepath.Join(dir, datapath.HostVethName(containerID, ifName)+stateExt)
}

func saveState(path string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadState: ok false when ADD left none.
func loadState(path string) (s state, ok bool, err error) {
	b, err := readfile.Limited(path, 64<<10)
	if errors.Is(err, os.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, false, fmt.Errorf("%s: %w", path, err)
	}
	if s.IPv6.IsValid() && (!s.IPv6.Is6() || s.IPv6.Is4In6() || !s.IPv6.IsGlobalUnicast()) {
		return state{}, false, fmt.Errorf("pod state %s: IPv6 %v: expected a global unicast IPv6 address", path, s.IPv6)
	}
	if !s.IP.Is4() || s.Table < 0 || s.MTU < 0 || s.Rules.ToPod < 0 || s.Rules.FromPod < 0 {
		return state{}, false, fmt.Errorf("%s: %+v: not a pod's datapath", path, s)
	}
	if s.Bandwidth != nil {
		if err := s.Bandwidth.Validate(); err != nil {
			return state{}, false, fmt.Errorf("%s: %w", path, err)
		}
	}
	return s, true, nil
}

func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// pruneStates removes the states of pod interfaces not among valid.
func pruneStates(dir string, valid []datapath.Attachment) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, a := range valid {
		keep[filepath.Base(statePath(dir, a.ContainerID, a.IfName))] = true
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, stateExt) || !strings.HasPrefix(n, "wen") || keep[n] {
			continue
		}
		if err := removeState(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
