package reconcile

import (
	"cmp"
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// reservation judges the Reserved records of one address: the one kept (nil: none) and the others dropped.
func (r *reconciler) reservation(a netip.Addr, i *addrInfo, resv []checkpoint.Record, claimed bool) *checkpoint.Record {
	var keep *checkpoint.Record
	for k, c := range resv { // ties: by pod, so the input's order does not matter
		if keep == nil || c.ReleasedAt.After(keep.ReleasedAt) || c.ReleasedAt.Equal(keep.ReleasedAt) &&
			cmp.Or(cmp.Compare(c.PodNamespace, keep.PodNamespace), cmp.Compare(c.PodName, keep.PodName), cmp.Compare(c.IfName, keep.IfName)) < 0 {
			keep = &resv[k]
		}
	}
	for k, c := range resv {
		if &resv[k] != keep {
			r.find(a, c, KindDropped, fmt.Sprintf("Reserved record of address %s on ENI %s (kept for %s) dropped for a later reservation of the address", a, c.ENI, pod(c)), "")
		}
	}
	if keep == nil {
		return nil
	}
	why := ""
	switch {
	case claimed:
		why = "a pod's Assigned record claims the address"
	case len(i.veths) > 0:
		why = fmt.Sprintf("the host routes the address to veth %s", i.veths[0])
	case len(i.enis) == 0:
		why = "no ENI of this instance lists the address"
	}
	if why != "" {
		r.find(a, *keep, KindDropped, fmt.Sprintf("Reserved record of address %s on ENI %s (kept for %s) dropped: %s", a, keep.ENI, pod(*keep), why), "")
		return nil
	}
	return keep
}
