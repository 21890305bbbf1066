package plan

// Plan is the answer; its JSON form is the stable interface for scripts (SchemaVersion).
type Plan struct {
	SchemaVersion  string          `json:"schemaVersion"`
	Input          InputSummary    `json:"input"`
	Backends       []Result        `json:"backends"`
	Recommendation *Recommendation `json:"recommendation"` // null when no backend fits
	// Status is ok (a backend is recommended and every one asked for fits), partial (a backend is recommended
	// but one asked for does not fit) or fail (none fits); the CLI's exit code is 0, 1 or 2 accordingly.
	Status string `json:"status"`
}

// Result is one backend's answer. Counts saturate at MaxCount (IPv6 ranges are larger than any cluster).
type Result struct {
	Backend         string    `json:"backend"`
	Fits            bool      `json:"fits"` // no errors
	PodsPerNode     int64     `json:"podsPerNode"`
	NodesPerCluster int64     `json:"nodesPerCluster"`
	PodsPerCluster  int64     `json:"podsPerCluster"`
	PodLimit        string    `json:"podLimit"`  // the limit that binds pods per node
	NodeLimit       string    `json:"nodeLimit"` // the limit that binds nodes per cluster
	Limits          []Limit   `json:"limits"`
	Errors          []Finding `json:"errors"`
	Warnings        []Finding `json:"warnings"`
}

// Limit is one ceiling: Scope "node" caps pods per node, "cluster" caps nodes per cluster.
type Limit struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Value  int64  `json:"value"`
	Detail string `json:"detail"`
}

// Limit names.
const (
	LimitSubnetAddresses  = "subnet-addresses"
	LimitMaxPods          = "max-pods"
	LimitSubnets          = "subnets"
	LimitRouteTableQuota  = "route-table-quota"
	LimitAddressesPerENI  = "addresses-per-eni"
	LimitENICount         = "eni-count"
	LimitVSwitchAddresses = "vswitch-addresses"
)

// Finding is an error or warning with a stable code.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Recommendation is the backend plan suggests and why.
type Recommendation struct {
	Backend string   `json:"backend"`
	Reasons []string `json:"reasons"`
}
