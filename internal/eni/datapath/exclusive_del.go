package datapath

// Exclusive ENI mode, taking a pod down (exclusive.go: the design): DelExclusive and ReturnENI bring the
// pod's ENI back to the host namespace (moveOut).

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// moveOut moves the ENI (by mac when given, else every link AddExclusive moved) from the pod back to the host:
// down, addresses flushed, under its host name (under its moving name when that is taken), alias cleared.
func moveOut(pod, host *netlink.Handle, hostNs netns.NsHandle, mac net.HardwareAddr, containerID, ifName string) error {
	var links []netlink.Link
	if mac != nil {
		l, err := linkByMAC(pod, mac)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		links = append(links, l)
	} else {
		var err error
		if links, err = enisIn(pod); err != nil {
			return fmt.Errorf("the pod's links: %w", err)
		}
	}
	var errs []error
	for _, l := range links {
		orig, ok := strings.CutPrefix(l.Attrs().Alias, ExclusiveAlias)
		if !ok || validIfName(orig) != nil {
			errs = append(errs, fmt.Errorf("%s (MAC %s) carries no host name in its alias %q: left in the pod", l.Attrs().Name, l.Attrs().HardwareAddr, l.Attrs().Alias))
			continue
		}
		tmp := movingName(containerID, ifName)
		if err := errors.Join(pod.LinkSetDown(l), flushAddrs(pod, l)); err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Attrs().Name != tmp {
			if err := pod.LinkSetName(l, tmp); err != nil {
				errs = append(errs, fmt.Errorf("rename %s: %w", l.Attrs().Name, err))
				continue
			}
		}
		if err := pod.LinkSetNsFd(l, int(hostNs)); err != nil {
			errs = append(errs, fmt.Errorf("move %s back to the host: %w", orig, err))
			continue
		}
		hl, err := host.LinkByName(tmp)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on the host: %w", tmp, err))
			continue
		}
		if _, err := host.LinkByName(orig); err == nil {
			errs = append(errs, fmt.Errorf("the ENI %s is back on the host as %s: %s is taken", hl.Attrs().HardwareAddr, tmp, orig))
			continue
		}
		if err := host.LinkSetName(hl, orig); err != nil {
			errs = append(errs, fmt.Errorf("rename %s back to %s: %w", tmp, orig, err))
			continue
		}
		_ = host.LinkSetAlias(hl, "")
	}
	return errors.Join(errs...)
}

// DelExclusive removes p's datapath: see the file comment. Only ContainerID and IfName are needed; Netns (when
// the namespace still exists) to bring the ENI back, MAC (else the ENI is found by its alias), IP (else Del finds
// it from the host veth's route).
func DelExclusive(p ExclusivePod) error {
	base := Pod{ContainerID: p.ContainerID, IfName: p.IfName, IP: p.IP}
	if err := base.withDefaults().validate(false); err != nil {
		return err
	}
	if p.Netns != "" {
		if err := returnENI(p); err != nil {
			return fmt.Errorf("datapath: del exclusive %s: %w", p.id(), err)
		}
	}
	return Del(base)
}

// ReturnENI is DelExclusive's first part alone: the ENI in p's namespace (by p.MAC when set, else by its
// alias) back to the host; nothing when the namespace is gone or holds none.
func ReturnENI(p ExclusivePod) error {
	if p.Netns == "" {
		return nil
	}
	if err := returnENI(p); err != nil {
		return fmt.Errorf("datapath: return the ENI of %s: %w", p.id(), err)
	}
	return nil
}

func returnENI(p ExclusivePod) error {
	podNs, err := netns.GetFromPath(p.Netns)
	if err != nil {
		return nil // gone: its devices went with it (a real NIC back to the host)
	}
	defer podNs.Close()
	pod, err := netlink.NewHandleAt(podNs)
	if err != nil {
		return fmt.Errorf("netlink in pod netns %s: %w", p.Netns, err)
	}
	defer pod.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer host.Close()
	hostNs, err := netns.Get()
	if err != nil {
		return fmt.Errorf("host netns: %w", err)
	}
	defer hostNs.Close()
	var mac net.HardwareAddr
	if len(p.MAC) == 6 {
		mac = p.MAC
	}
	return errors.Join(unshapeExclusive(pod), moveOut(pod, host, hostNs, mac, p.ContainerID, p.IfName))
}
