package datapath

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAddRuleOnceRace: weftd's host loop may add a pod's rule between Add's look at the rules and its write (CI
// saw "rule 2048 from … lookup 1127: file exists" fail an ADD in the churn drill). addRuleOnce takes the rule
// that is already there as its own result without claiming it for the undo,.
func TestAddRuleOnceRace(t *testing.T) {
	n := newTestNet(t)
	ip := netip.MustParseAddr("10.9.0.5")
	for _, want := range []podRule{
		{Priority: 2048, IP: ip, Table: 1127},
		{Priority: 512, To: true, IP: ip, Table: unix.RT_TABLE_MAIN},
		{Priority: 2048, IP: netip.MustParseAddr("fd00::5"), Table: 1127},
	} {
		added, err := addRuleOnce(n.host, want)
		if err != nil || !added {
			t.Fatalf("%s on an empty table: added %v, err %v; want added", want, added, err)
		}
		added, err = addRuleOnce(n.host, want) // the host loop was first
		if err != nil || added {
			t.Fatalf("%s already there: added %v, err %v; want not added, no error", want, added, err)
		}
	}
	if got := rulesAt(t, n.host, 2048); !slices.Equal(got, []string{"rule 2048 from 10.9.0.5/32 lookup 1127"}) {
		t.Errorf("IPv4 rules at 2048: %q, want the one rule once", got)
	}
}
