package datapath

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Attachment is a pod interface the container runtime still knows (CNI GC's cni.dev/valid-attachments).
type Attachment struct{ ContainerID, IfName string }

// Prune removes, from the current (host) network namespace, every veth named like HostVethName whose attachment
// is not in valid: the leftovers of pods the runtime has forgotten (their host routes go with the link; their
// rules are weftd's SyncRules' to remove, since weftd knows which addresses are still held). Links of other
// shapes, or not veths, are never touched.
func Prune(valid []Attachment) error {
	keep := map[string]bool{}
	for _, a := range valid {
		keep[HostVethName(a.ContainerID, a.IfName)] = true
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if _, veth := l.(*netlink.Veth); !veth || !isHostVethName(name) || keep[name] {
			continue
		}
		if err := h.LinkDel(l); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
