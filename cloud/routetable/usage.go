package routetable

import "strings"

// OwnerPrefix starts the Description of every entry weft writes; the rest is the cluster's id.
const OwnerPrefix = "weft:"

// OwnerTag is the Description of the entries cluster clusterID owns ("weft:<clusterID>").
func OwnerTag(clusterID string) string { return OwnerPrefix + clusterID }

// Usage is a table's custom entries by owner. System (and other non-custom) entries are not counted: the quota
// is of custom entries.
type Usage struct {
	Custom    int // every custom entry: what the quota counts (Own + OtherWeft + Foreign)
	Own       int // this cluster's: Description exactly the owner tag
	OtherWeft int // other weft clusters': Description starts with OwnerPrefix but is not the owner tag
	Foreign   int // the rest: written by people or other tools
}

// Count counts a table's custom entries against owner, this cluster's tag (OwnerTag(clusterID)). An empty owner
// means no cluster is "this one": every weft entry counts as another cluster's.
func Count(entries []Entry, owner string) Usage {
	var u Usage
	for _, e := range entries {
		if e.Type != EntryCustom {
			continue
		}
		u.Custom++
		switch {
		case owner != "" && e.Description == owner:
			u.Own++
		case strings.HasPrefix(e.Description, OwnerPrefix):
			u.OtherWeft++
		default:
			u.Foreign++
		}
	}
	return u
}
