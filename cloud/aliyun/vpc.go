package aliyun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// RouteTable is a VPC route table.
type RouteTable struct {
	ID    string
	VPCID string
	Type  string // System or Custom
}

// RouteEntry is one route of a table.
type RouteEntry struct {
	ID          string
	TableID     string
	Dst         netip.Prefix
	Type        string // Custom, System, ...
	Status      string // Pending, Available, Modifying, Deleting
	NextHopType string
	NextHopID   string
	Name        string
	Description string
}

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

// APIError is a refusal from the service (or alisim): code, HTTP status and message. Match codes with Code or
// errors.As; never compare Error() strings.
type APIError struct {
	Action    string
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d): %s [request %s]", e.Action, e.Code, e.Status, e.Message, e.RequestID)
}

// Code returns the service error code of err, or "".
func Code(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// retryable are the codes a careful client retries after a short wait (alibaba-api.md).
var retryable = map[string]bool{
	"Throttling": true, "Throttling.User": true, "Throttling.Api": true, "ServiceUnavailable": true, "InternalError": true,
	"TaskConflict": true, "OperationConflict": true, "IncorrectRouteEntryStatus": true, "SystemBusy": true,
	"LastTokenProcessing": true, "OperationFailed.DistibuteLock": true, "IncorrectVpcStatus": true,
	"IncorrectInstanceStatus": true, "Operation.Conflict": true,
}

// Retryable tells whether err is worth retrying (throttling, busy tables, transient server and network errors).
func Retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return retryable[ae.Code] || ae.Status >= 500
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Config configures a Client. Empty fields are read from the environment the way other tools do.
type Config struct {
	Region      string
	VPCEndpoint string // host[:port]; env VPC_ENDPOINT; default vpc.<region>.aliyuncs.com (SDK's)
	ECSEndpoint string // host[:port]; env ECS_ENDPOINT; default the SDK's
	Scheme      string // HTTP or HTTPS; env ALICLOUD_CLIENT_SCHEME; default HTTPS
	Credentials CredentialProvider
	// Retry: attempts per call (default 5) and the backoff base and cap (default 500 ms, 10 s).
	Attempts      int
	BackoffBase   time.Duration
	BackoffCap    time.Duration
	RatePerSecond float64 // client-side limit per action (default 10/s, burst 10)
	Registerer    prometheus.Registerer
	Timeout       time.Duration // per HTTP call (default 10 s)
}

// Client talks to the VPC API.
type Client struct {
	c       Config
	mu      sync.Mutex
	sdk     *vpc.Client
	ecs     *ecs.Client
	sdkKey  string
	limits  map[string]*rate.Limiter
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewClient builds a client; nothing is contacted yet.
func NewClient(c Config) (*Client, error) {
	if c.Region == "" {
		return nil, errors.New("aliyun: region is required (metadata region-id or configuration)")
	}
	if c.VPCEndpoint == "" {
		c.VPCEndpoint = os.Getenv("VPC_ENDPOINT")
	}
	if c.ECSEndpoint == "" {
		c.ECSEndpoint = os.Getenv("ECS_ENDPOINT")
	}
	if c.Scheme == "" {
		c.Scheme = os.Getenv("ALICLOUD_CLIENT_SCHEME")
	}
	if c.Scheme == "" {
		c.Scheme = "HTTPS"
	}
	c.Scheme = strings.ToUpper(c.Scheme)
	if c.Scheme != "HTTP" && c.Scheme != "HTTPS" {
		return nil, fmt.Errorf("aliyun: scheme %q: expected HTTP or HTTPS", c.Scheme)
	}
	if c.Credentials == nil {
		return nil, errors.New("aliyun: no credential provider")
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = 500 * time.Millisecond
	}
	if c.BackoffCap == 0 {
		c.BackoffCap = 10 * time.Second
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 10
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	cl := &Client{c: c, limits: map[string]*rate.Limiter{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cloud_api_calls_total",
			Help: "Cloud API calls by action and outcome (ok, throttled, refused, server_error, network_error)."}, []string{"action", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_cloud_api_duration_seconds",
			Help: "Cloud API call latency by action.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"action"}),
	}
	if c.Registerer != nil {
		if err := c.Registerer.Register(cl.calls); err != nil {
			return nil, err
		}
		if err := c.Registerer.Register(cl.latency); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// client returns an SDK client for the current credentials (rebuilt when they rotate).
func (c *Client) client(ctx context.Context) (*vpc.Client, error) {
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sdk, nil
}

func (c *Client) ecsClient(ctx context.Context) (*ecs.Client, error) {
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ecs, nil
}

// refresh (re)builds the SDK clients when the credentials changed.
func (c *Client) refresh(ctx context.Context) error {
	cr, err := c.c.Credentials.Credentials(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := cr.AccessKeyID + "/" + cr.SecurityToken
	if c.sdk != nil && c.sdkKey == key {
		return nil
	}
	var cred auth.Credential = credentials.NewAccessKeyCredential(cr.AccessKeyID, cr.AccessKeySecret)
	if cr.SecurityToken != "" {
		cred = credentials.NewStsTokenCredential(cr.AccessKeyID, cr.AccessKeySecret, cr.SecurityToken)
	}
	cfg := sdk.NewConfig().WithScheme(c.c.Scheme).WithAutoRetry(false).WithTimeout(c.c.Timeout)
	cl, err := vpc.NewClientWithOptions(c.c.Region, cfg, cred)
	if err != nil {
		return fmt.Errorf("aliyun: SDK client: %w", err)
	}
	ec, err := ecs.NewClientWithOptions(c.c.Region, cfg, cred)
	if err != nil {
		return fmt.Errorf("aliyun: SDK client: %w", err)
	}
	c.sdk, c.ecs, c.sdkKey = cl, ec, key
	return nil
}

func (c *Client) limiter(action string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.limits[action]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(c.c.RatePerSecond), max(1, int(c.c.RatePerSecond)))
		c.limits[action] = l
	}
	return l
}

// prepare points an SDK request at the configured VPC endpoint and scheme.
func (c *Client) prepare(r requests.AcsRequest) {
	if c.c.VPCEndpoint != "" {
		r.SetDomain(c.c.VPCEndpoint)
	}
	r.SetScheme(c.c.Scheme)
}

// prepareECS points an SDK request at the configured ECS endpoint and scheme.
func (c *Client) prepareECS(r requests.AcsRequest) {
	if c.c.ECSEndpoint != "" {
		r.SetDomain(c.c.ECSEndpoint)
	}
	r.SetScheme(c.c.Scheme)
}

// call runs one API action with rate limiting, metrics and retries. do must build a fresh request per attempt
// (a new SignatureNonce) but keep any ClientToken it was given.
func (c *Client) call(ctx context.Context, action string, do func(*vpc.Client) error) error {
	return c.retry(ctx, action, func() error {
		cl, err := c.client(ctx)
		if err != nil {
			return err
		}
		return do(cl)
	})
}

// callECS is call for ECS actions.
func (c *Client) callECS(ctx context.Context, action string, do func(*ecs.Client) error) error {
	return c.retry(ctx, action, func() error {
		cl, err := c.ecsClient(ctx)
		if err != nil {
			return err
		}
		return do(cl)
	})
}

func (c *Client) retry(ctx context.Context, action string, do func() error) error {
	var last error
	for attempt := 1; attempt <= c.c.Attempts; attempt++ {
		if err := c.limiter(action).Wait(ctx); err != nil {
			return err
		}
		start := time.Now()
		err := translate(action, do())
		c.latency.WithLabelValues(action).Observe(time.Since(start).Seconds())
		c.calls.WithLabelValues(action, outcome(err)).Inc()
		if err == nil {
			return nil
		}
		last = err
		if !Retryable(err) || attempt == c.c.Attempts {
			break
		}
		d := c.c.BackoffBase << (attempt - 1)
		if d > c.c.BackoffCap || d <= 0 {
			d = c.c.BackoffCap
		}
		d = d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return last
}

func outcome(err error) string {
	var ae *APIError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae) && strings.HasPrefix(ae.Code, "Throttling"):
		return "throttled"
	case errors.As(err, &ae) && ae.Status >= 500:
		return "server_error"
	case errors.As(err, &ae):
		return "refused"
	default:
		return "network_error"
	}
}

// translate turns SDK errors into APIError, and other errors into messages without request URLs (which carry
// the access key id and signature).
func translate(action string, err error) error {
	if err == nil {
		return nil
	}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return &APIError{Action: action, Status: se.HttpStatus(), Code: se.ErrorCode(), Message: se.Message(), RequestID: se.RequestId()}
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: client error %s: %s", action, ce.ErrorCode(), redactURL(ce.Message()))
	}
	return fmt.Errorf("%s: %s", action, redactURL(err.Error()))
}

// redactURL drops query strings from any URL in s.
func redactURL(s string) string {
	for {
		i := strings.Index(s, "?")
		if i < 0 {
			return s
		}
		j := strings.IndexAny(s[i:], " \"'")
		if j < 0 {
			return s[:i] + "?<redacted>"
		}
		s = s[:i] + "?<redacted>" + s[i+j:]
	}
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RouteTables lists the VPC's route tables.
func (c *Client) RouteTables(ctx context.Context, vpcID string) ([]RouteTable, error) {
	var out []RouteTable
	for pageNo := 1; ; pageNo++ {
		var resp *vpc.DescribeRouteTableListResponse
		err := c.call(ctx, "DescribeRouteTableList", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeRouteTableListRequest()
			c.prepare(req)
			req.VpcId, req.PageNumber, req.PageSize = vpcID, requests.NewInteger(pageNo), requests.NewInteger(50)
			resp, err = cl.DescribeRouteTableList(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range resp.RouterTableList.RouterTableListType {
			out = append(out, RouteTable{ID: t.RouteTableId, VPCID: t.VpcId, Type: t.RouteTableType})
		}
		if len(out) >= resp.TotalCount || len(resp.RouterTableList.RouterTableListType) == 0 {
			return out, nil
		}
	}
}

// RouteEntries lists every entry of a table (all pages).
func (c *Client) RouteEntries(ctx context.Context, tableID string) ([]RouteEntry, error) {
	var out []RouteEntry
	token := ""
	for {
		var resp *vpc.DescribeRouteEntryListResponse
		err := c.call(ctx, "DescribeRouteEntryList", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeRouteEntryListRequest()
			c.prepare(req)
			req.RouteTableId, req.MaxResult, req.NextToken = tableID, requests.NewInteger(100), token
			resp, err = cl.DescribeRouteEntryList(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.RouteEntrys.RouteEntry {
			dst, err := netip.ParsePrefix(e.DestinationCidrBlock)
			if err != nil {
				continue
			}
			re := RouteEntry{ID: e.RouteEntryId, TableID: tableID, Dst: dst, Type: e.Type, Status: e.Status,
				NextHopType: e.NextHopType, NextHopID: e.InstanceId, Name: e.RouteEntryName, Description: e.Description}
			if hops := e.NextHops.NextHop; len(hops) > 0 {
				re.NextHopType, re.NextHopID = hops[0].NextHopType, hops[0].NextHopId
			}
			out = append(out, re)
		}
		if resp.NextToken == "" {
			return out, nil
		}
		token = resp.NextToken
	}
}

// CreateRouteEntry creates one entry; retries reuse one ClientToken, so a create that timed out but succeeded is
// not made twice.
func (c *Client) CreateRouteEntry(ctx context.Context, e NewRouteEntry) (string, error) {
	token := newToken()
	var id string
	err := c.call(ctx, "CreateRouteEntry", func(cl *vpc.Client) error {
		req := vpc.CreateCreateRouteEntryRequest()
		c.prepare(req)
		req.RouteTableId, req.DestinationCidrBlock, req.NextHopId = e.TableID, e.Dst.String(), e.NextHopID
		req.NextHopType = hopType(e.NextHopType)
		req.RouteEntryName, req.Description, req.ClientToken = e.Name, e.Description, token
		resp, err := cl.CreateRouteEntry(req)
		if err == nil {
			id = resp.RouteEntryId
		}
		return err
	})
	return id, err
}

// DeleteRouteEntry deletes one entry by id.
func (c *Client) DeleteRouteEntry(ctx context.Context, tableID, entryID string) error {
	return c.call(ctx, "DeleteRouteEntry", func(cl *vpc.Client) error {
		req := vpc.CreateDeleteRouteEntryRequest()
		c.prepare(req)
		req.RouteTableId, req.RouteEntryId = tableID, entryID
		_, err := cl.DeleteRouteEntry(req)
		return err
	})
}

func hopType(t string) string {
	if t == "" {
		return "Instance"
	}
	return t
}

// CreateRouteEntries creates entries in batches of at most MaxBatch; per-entry failures are reported, not
// returned as an error. A call-level refusal (busy table, quota, throttling after retries) is returned as an
// error with the results of earlier batches.
func (c *Client) CreateRouteEntries(ctx context.Context, entries []NewRouteEntry) (BatchResult, error) {
	var res BatchResult
	for len(entries) > 0 {
		n := min(len(entries), MaxBatch)
		chunk := entries[:n]
		entries = entries[n:]
		var resp *vpc.CreateRouteEntriesResponse
		err := c.call(ctx, "CreateRouteEntries", func(cl *vpc.Client) (err error) {
			req := vpc.CreateCreateRouteEntriesRequest()
			c.prepare(req)
			list := make([]vpc.CreateRouteEntriesRouteEntries, 0, len(chunk))
			for _, e := range chunk {
				list = append(list, vpc.CreateRouteEntriesRouteEntries{RouteTableId: e.TableID, DstCidrBlock: e.Dst.String(),
					NextHop: e.NextHopID, NextHopType: hopType(e.NextHopType), Name: e.Name, Description: e.Description,
					IpVersion: ipVersion(e.Dst)})
			}
			req.RouteEntries = &list
			resp, err = cl.CreateRouteEntries(req)
			return err
		})
		if err != nil {
			return res, err
		}
		res.Succeeded += resp.SuccessCount
		res.EntryIDs = append(res.EntryIDs, resp.RouteEntryIds...)
		res.Failed = append(res.Failed, failures(resp.FailedRouteEntries)...)
	}
	return res, nil
}

// DeleteRouteEntries deletes entries by id in batches of at most MaxBatch.
func (c *Client) DeleteRouteEntries(ctx context.Context, entries []RouteEntry) (BatchResult, error) {
	var res BatchResult
	for len(entries) > 0 {
		n := min(len(entries), MaxBatch)
		chunk := entries[:n]
		entries = entries[n:]
		var resp *vpc.DeleteRouteEntriesResponse
		err := c.call(ctx, "DeleteRouteEntries", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDeleteRouteEntriesRequest()
			c.prepare(req)
			list := make([]vpc.DeleteRouteEntriesRouteEntries, 0, len(chunk))
			for _, e := range chunk {
				list = append(list, vpc.DeleteRouteEntriesRouteEntries{RouteTableId: e.TableID, RouteEntryId: e.ID,
					DstCidrBlock: e.Dst.String(), NextHop: e.NextHopID})
			}
			req.RouteEntries = &list
			resp, err = cl.DeleteRouteEntries(req)
			return err
		})
		if err != nil {
			return res, err
		}
		res.Succeeded += resp.SuccessCount
		res.Failed = append(res.Failed, failures(resp.FailedRouteEntries)...)
	}
	return res, nil
}

func failures(in []vpc.FailedRouteEntriesItem) []EntryFailure {
	var out []EntryFailure
	for _, f := range in {
		dst, _ := netip.ParsePrefix(f.DstCidrBlock)
		out = append(out, EntryFailure{Dst: dst, NextHop: f.NextHop, EntryID: f.RouteEntryId, Code: f.FailedCode, Message: f.FailedMessage})
	}
	return out
}

func ipVersion(p netip.Prefix) string {
	if p.Addr().Is6() {
		return "IPv6"
	}
	return "IPv4"
}

// VSwitches lists the VPC's vSwitches.
func (c *Client) VSwitches(ctx context.Context, vpcID string) ([]VSwitch, error) {
	var out []VSwitch
	for pageNo := 1; ; pageNo++ {
		var resp *vpc.DescribeVSwitchesResponse
		err := c.call(ctx, "DescribeVSwitches", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeVSwitchesRequest()
			c.prepare(req)
			req.VpcId, req.PageNumber, req.PageSize = vpcID, requests.NewInteger(pageNo), requests.NewInteger(50)
			resp, err = cl.DescribeVSwitches(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range resp.VSwitches.VSwitch {
			v := VSwitch{ID: s.VSwitchId, VPCID: s.VpcId, Zone: s.ZoneId, Available: int(s.AvailableIpAddressCount)}
			v.CIDR, _ = netip.ParsePrefix(s.CidrBlock)
			v.IPv6CIDR, _ = netip.ParsePrefix(s.Ipv6CidrBlock)
			out = append(out, v)
		}
		if len(out) >= resp.TotalCount || len(resp.VSwitches.VSwitch) == 0 {
			return out, nil
		}
	}
}

// RouteEntryByDst returns the entry of a table for one destination (a single filtered call), or nil.
func (c *Client) RouteEntryByDst(ctx context.Context, tableID string, dst netip.Prefix) (*RouteEntry, error) {
	var resp *vpc.DescribeRouteEntryListResponse
	err := c.call(ctx, "DescribeRouteEntryList", func(cl *vpc.Client) (err error) {
		req := vpc.CreateDescribeRouteEntryListRequest()
		c.prepare(req)
		req.RouteTableId, req.DestinationCidrBlock = tableID, dst.String()
		resp, err = cl.DescribeRouteEntryList(req)
		return err
	})
	if err != nil || len(resp.RouteEntrys.RouteEntry) == 0 {
		return nil, err
	}
	e := resp.RouteEntrys.RouteEntry[0]
	return &RouteEntry{ID: e.RouteEntryId, TableID: tableID, Dst: dst, Type: e.Type, Status: e.Status, NextHopType: e.NextHopType,
		NextHopID: e.InstanceId, Description: e.Description}, nil
}
