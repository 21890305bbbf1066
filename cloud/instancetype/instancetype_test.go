package instancetype

import "testing"

// The documented pods-per-node figures follow from the ENI figures of the built-in table.
func TestBuiltinPods(t *testing.T) {
	want := map[string][3]int{"ecs.c7.4xlarge": {210, 7, 23}, "ecs.c6.4xlarge": {140, 7, 0}, "ecs.g7.2xlarge": {45, 3, 11},
		"ecs.ebmg5s.24xlarge": {310, 31, 0}, "ecs.g6.large": {6, 1, 0}}
	seen := map[string]bool{}
	for _, ty := range Builtin() {
		if seen[ty.ID] {
			t.Errorf("%s listed twice", ty.ID)
		}
		seen[ty.ID] = true
		w, ok := want[ty.ID]
		if !ok {
			continue
		}
		if got := [3]int{ty.SharedENIPods(), ty.ExclusiveENIPods(), ty.TrunkPods()}; got != w {
			t.Errorf("%s: shared, exclusive, trunk pods %v, want %v", ty.ID, got, w)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s missing from the built-in table", id)
		}
	}
	if (Type{ENIs: 0, IPv4PerENI: 10}).SharedENIPods() != 0 || (Type{ENIs: 4, ENIsWithTrunk: 2, TrunkSupported: true}).TrunkPods() != 0 {
		t.Error("figures below the primary ENI must not go negative")
	}
}
