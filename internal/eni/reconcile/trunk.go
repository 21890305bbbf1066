package reconcile

// Trunk and member ENIs (the eni backend's enable_eni_trunking). A member ENI is a pod's ENI like any other: its
// address is adopted, quarantined or freed by the same rules, whichever pod namespace holds it. The trunk ENI is
// the node's and never a pod's: its addresses are left out of the cloud's account (a record claiming one is
// KindGone, quarantined), and the detached-ENI collector leaves a detached trunk of a node that still exists to
// that node, whose agent attaches it back (it holds no members while detached: the cloud refuses to detach a
// trunk that has any, TrunkHasMembers).

// The ENI types of CloudENI.Type that matter here.
const (
	TypeTrunk  = "Trunk"
	TypeMember = "Member"
)

// podENI says whether an ENI's addresses may be a pod's: all but a trunk's.
func podENI(e CloudENI) bool { return e.Type != TypeTrunk }

// keepTrunk says whether the collector keeps a detached ENI because it is the trunk of a node that exists.
func keepTrunk(e CloudENI, node NodeState) bool { return e.Type == TypeTrunk && node.Exists }
