package pool

import "fmt"

// Trunk member ENIs (the eni backend's enable_eni_trunking, exclusive mode): a pod holds a whole ENI, which is
// either an ordinary ENI of the instance or a member ENI of the instance's trunk ENI. The pool does not tell them
// apart (each is one address, its primary) and never sees the trunk ENI itself: Limits.ENIs counts the ordinary
// ENIs the trunk leaves room for (EniQuantity - 2: the primary and the trunk take a slot each) plus Limits.Members
// (EniTotalQuantity - EniQuantity). Which kind the next ENI is, the backend decides when it creates one.

// Ordinary is the ENIs of the limits that are not trunk members.
func (l Limits) Ordinary() int { return max(l.ENIs-l.Members, 0) }

// trunkLimitMessage is LimitError's text for an exclusive node with trunking.
func trunkLimitMessage(l Limits, inUse int) string {
	return fmt.Sprintf("node is at its exclusive ENI limit with trunking: %s holds %d pods on exclusive ENIs "+
		"(%d ENIs - the primary - the trunk ENI + %d trunk member ENIs); %d in use",
		l.InstanceType, l.Pods(), l.Ordinary()+2, l.Members, inUse)
}
