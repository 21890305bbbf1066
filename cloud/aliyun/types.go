package aliyun

import (
	"net/netip"

	"github.com/weftnet/weft/cloud/routetable"
)

// RouteTable is a VPC route table (the SDK-free routetable.Table).
type RouteTable = routetable.Table

// RouteEntry is one route of a table (the SDK-free routetable.Entry). Compare its Type and Status with the
// routetable constants (routetable.EntryCustom, routetable.StatusAvailable, ...).
type RouteEntry = routetable.Entry

// EntryType and EntryStatus are a route entry's kind and life-cycle state.
type (
	EntryType   = routetable.EntryType
	EntryStatus = routetable.EntryStatus
	TableType   = routetable.TableType
)

// NewRouteEntry is an entry to create.
type NewRouteEntry struct {
	TableID     string
	Dst         netip.Prefix
	NextHopType string // default Instance
	NextHopID   string
	Name        string
	Description string
}

// EntryFailure is one entry a batch could not handle.
type EntryFailure struct {
	Dst     netip.Prefix
	NextHop string
	EntryID string
	Code    string
	Message string
}

// BatchResult is the outcome of a batch write.
type BatchResult struct {
	Succeeded int
	EntryIDs  []string
	Failed    []EntryFailure
}

// VSwitch is a VPC subnet.
type VSwitch struct {
	ID, VPCID, Zone string
	CIDR            netip.Prefix
	IPv6CIDR        netip.Prefix
	Available       int
}

// MaxBatch is the most entries CreateRouteEntries / DeleteRouteEntries take per call.
const MaxBatch = 50
