package routetable

import "testing"

func TestCount(t *testing.T) {
	e := func(typ EntryType, desc string) Entry { return Entry{Type: typ, Description: desc} }
	for _, c := range []struct {
		name    string
		entries []Entry
		owner   string
		want    Usage
	}{
		{"empty table", nil, "weft:c1", Usage{}},
		{"system entries are not counted", []Entry{e(EntrySystem, ""), e(EntrySystem, "weft:c1"), e(EntryBGP, "weft:c1")}, "weft:c1", Usage{}},
		{"own entries: Description exactly the tag", []Entry{e(EntryCustom, "weft:c1"), e(EntryCustom, "weft:c1")}, "weft:c1",
			Usage{Custom: 2, Own: 2}},
		{"a longer cluster id sharing the prefix is another cluster", []Entry{e(EntryCustom, "weft:c1"), e(EntryCustom, "weft:c10")}, "weft:c1",
			Usage{Custom: 2, Own: 1, OtherWeft: 1}},
		{"foreign entries", []Entry{e(EntryCustom, ""), e(EntryCustom, "to the VPN"), e(EntryCustom, "Weft:c1"), e(EntryCustom, " weft:c1")}, "weft:c1",
			Usage{Custom: 4, Foreign: 4}},
		{"two clusters sharing one table, seen from each", []Entry{e(EntryCustom, "weft:a"), e(EntryCustom, "weft:b"), e(EntryCustom, "weft:b"),
			e(EntryCustom, "ops")}, "weft:b", Usage{Custom: 4, Own: 2, OtherWeft: 1, Foreign: 1}},
		{"no owner: every weft entry is another cluster's", []Entry{e(EntryCustom, "weft:a"), e(EntryCustom, "weft:"), e(EntryCustom, "")}, "",
			Usage{Custom: 3, OtherWeft: 2, Foreign: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Count(c.entries, c.owner); got != c.want {
				t.Fatalf("Count = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestOwnerTagAndSettled(t *testing.T) {
	if got := OwnerTag("10.244.0.0/16"); got != "weft:10.244.0.0/16" {
		t.Fatalf("OwnerTag = %q", got)
	}
	for s, want := range map[EntryStatus]bool{StatusPending: false, StatusModifying: false, StatusDeleting: false, StatusAvailable: true, "": true} {
		if s.Settled() != want {
			t.Errorf("%q.Settled() = %v, want %v", s, !want, want)
		}
	}
}
