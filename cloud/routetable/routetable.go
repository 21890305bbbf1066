// Package routetable is weft's view of a VPC route table, free of the cloud SDK: tables and entries with typed
// states and kinds, the owner tag weft writes into an entry's Description, and the one rule that counts a table's
// custom entries by owner. cloud/aliyun reads tables into these types; the quota report and the ali-vpc leader's
// metrics count them with Count, so "this cluster's entries" means the same thing everywhere.
package routetable

import "net/netip"

// TableType is a route table's kind.
type TableType string

const (
	TableSystem TableType = "System"
	TableCustom TableType = "Custom"
)

// EntryType is a route entry's kind. Only Custom entries count against the table's quota.
type EntryType string

const (
	EntryCustom  EntryType = "Custom"
	EntrySystem  EntryType = "System"
	EntryBGP     EntryType = "BGP"
	EntryCEN     EntryType = "CEN"
	EntryECR     EntryType = "ECR"
	EntryVPN     EntryType = "VPN"
	EntryDynamic EntryType = "Dynamic"
)

// EntryStatus is where an entry is in its asynchronous life cycle.
type EntryStatus string

const (
	StatusPending   EntryStatus = "Pending"
	StatusAvailable EntryStatus = "Available"
	StatusModifying EntryStatus = "Modifying"
	StatusDeleting  EntryStatus = "Deleting"
)

// Settled tells whether the table may take a write for this entry: a table with an entry Pending, Modifying or
// Deleting refuses writes (IncorrectRouteEntryStatus).
func (s EntryStatus) Settled() bool {
	return s != StatusPending && s != StatusModifying && s != StatusDeleting
}

// Table is a VPC route table.
type Table struct {
	ID    string
	VPCID string
	Type  TableType
}

// Entry is one route of a table.
type Entry struct {
	ID          string
	TableID     string
	Dst         netip.Prefix
	Type        EntryType
	Status      EntryStatus
	NextHopType string
	NextHopID   string
	Name        string
	Description string
}
