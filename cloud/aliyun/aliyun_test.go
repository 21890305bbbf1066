package aliyun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/cloud/routetable"
)

// clock is a settable time source for alisim.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	clock *clock
	world *sim.World
	srv   *sim.Server
	http  *httptest.Server
	state string
}

const table = "vtb-alisim0001"

func newFixture(t *testing.T, timing sim.Timing, wrap func(http.Handler) http.Handler) *fixture {
	t.Helper()
	st := sim.DefaultState()
	st.Timing = timing
	f := &fixture{clock: &clock{t: time.Now()}, state: filepath.Join(t.TempDir(), "state.json")}
	f.world = sim.NewWorld(st, f.clock, f.state)
	f.srv = sim.NewServer(f.world)
	var h http.Handler = f.srv
	if wrap != nil {
		h = wrap(h)
	}
	f.http = httptest.NewServer(h)
	t.Cleanup(f.http.Close)
	return f
}

func (f *fixture) client(t *testing.T, creds aliyun.CredentialProvider, mod func(*aliyun.Config)) *aliyun.Client {
	t.Helper()
	if creds == nil {
		creds = aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}
	}
	c := aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: strings.TrimPrefix(f.http.URL, "http://"), Scheme: "HTTP",
		Credentials: creds, BackoffBase: 5 * time.Millisecond, BackoffCap: 20 * time.Millisecond, RatePerSecond: 1000,
		RateLimits: unlimited()}
	if mod != nil {
		mod(&c)
	}
	cl, err := aliyun.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// unlimited lifts the client-side per-minute budgets, so tests making many calls do not wait for them.
func unlimited() map[string]int {
	m := map[string]int{}
	for a := range aliyun.DefaultRateLimits {
		m[a] = 0
	}
	return m
}

func entry(dst, hop string) aliyun.NewRouteEntry {
	return aliyun.NewRouteEntry{TableID: table, Dst: netip.MustParsePrefix(dst), NextHopID: hop, Description: "weft"}
}

func statuses(t *testing.T, cl *aliyun.Client) map[string]string {
	t.Helper()
	es, err := cl.RouteEntries(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range es {
		if e.Type == routetable.EntryCustom {
			out[e.Dst.String()] = string(e.Status)
		}
	}
	return out
}

func TestDescribe(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := f.client(t, nil, nil)
	ctx := context.Background()
	tables, err := cl.RouteTables(ctx, "vpc-alisim0001")
	if err != nil || len(tables) != 1 || tables[0].ID != table || tables[0].Type != routetable.TableSystem {
		t.Fatalf("tables %+v %v", tables, err)
	}
	sws, err := cl.VSwitches(ctx, "vpc-alisim0001")
	if err != nil || len(sws) != 2 || sws[0].CIDR.String() != "192.168.0.0/24" || sws[0].Available != 256-4-2 {
		t.Fatalf("vswitches %+v %v", sws, err)
	}
	es, err := cl.RouteEntries(ctx, table)
	if err != nil || len(es) != 3 {
		t.Fatalf("system entries %+v %v", es, err)
	}
}

func TestLifecycleQuotaAndBatches(t *testing.T) {
	f := newFixture(t, sim.Timing{EntryPending: 3 * time.Second, EntryDeleting: 3 * time.Second, WriteGap: time.Second}, nil)
	cl := f.client(t, nil, func(c *aliyun.Config) { c.Attempts = 1 })
	ctx := context.Background()
	if err := f.world.SetQuota(table, 3); err != nil {
		t.Fatal(err)
	}
	res, err := cl.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{entry("10.244.1.0/24", "i-alisim0001"), entry("10.244.2.0/24", "i-alisim0002"),
		entry("10.244.3.0/24", "i-alisim0003"), entry("10.244.4.0/24", "i-alisim0001"), entry("192.168.0.128/25", "i-alisim0001"),
		entry("100.64.1.0/24", "i-alisim0001"), entry("10.244.9.0/24", "i-nope")})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, fl := range res.Failed {
		codes[fl.Dst.String()] = fl.Code
	}
	want := map[string]string{"10.244.4.0/24": "QuotaExceeded", "192.168.0.128/25": "InvalidCidrBlock",
		"100.64.1.0/24": "InvalidCidrBlock", "10.244.9.0/24": "InvalidNextHopId.NotFound"}
	if res.Succeeded != 3 || fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("batch: %d ok, failures %v; want 3 and %v", res.Succeeded, codes, want)
	}
	if got := statuses(t, cl); got["10.244.1.0/24"] != "Pending" || len(got) != 3 {
		t.Fatalf("after create: %v", got)
	}
	// While entries are Pending the table refuses writes; a write too soon after the last gets TaskConflict.
	_, err = cl.CreateRouteEntry(ctx, entry("10.244.5.0/24", "i-alisim0001"))
	if aliyun.Code(err) != "IncorrectRouteEntryStatus" {
		t.Fatalf("create while pending: %v", err)
	}
	f.clock.Advance(3 * time.Second)
	if got := statuses(t, cl); got["10.244.1.0/24"] != "Available" {
		t.Fatalf("after 3 s: %v", got)
	}
	_, err = cl.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0002"))
	if aliyun.Code(err) != "InvalidCIDRBlock.Duplicate" {
		t.Fatalf("duplicate: %v", err)
	}
	_, err = cl.CreateRouteEntry(ctx, entry("10.244.6.0/24", "i-alisim0002"))
	if aliyun.Code(err) != "QuotaExceeded" {
		t.Fatalf("over quota: %v", err)
	}
	es, _ := cl.RouteEntries(ctx, table)
	var del []aliyun.RouteEntry
	for _, e := range es {
		if e.Dst.String() == "10.244.2.0/24" {
			del = append(del, e)
		}
	}
	del = append(del, aliyun.RouteEntry{TableID: table, ID: "rte-missing", Dst: netip.MustParsePrefix("10.244.77.0/24")})
	dres, err := cl.DeleteRouteEntries(ctx, del)
	if err != nil || dres.Succeeded != 1 || len(dres.Failed) != 1 || dres.Failed[0].Code != "VPC_ROUTER_ENTRY_NOT_EXIST" {
		t.Fatalf("delete: %+v %v", dres, err)
	}
	if got := statuses(t, cl); got["10.244.2.0/24"] != "Deleting" {
		t.Fatalf("after delete: %v", got)
	}
	f.clock.Advance(3 * time.Second)
	if got := statuses(t, cl); len(got) != 2 {
		t.Fatalf("deleted entry still listed: %v", got)
	}
	if _, err := cl.RouteEntries(ctx, "vtb-nope"); aliyun.Code(err) != "InvalidRouteTableId.NotFound" {
		t.Fatalf("unknown table: %v", err)
	}
	// State survives a restart: a new world from the state file sees the same entries.
	st, err := sim.LoadState(f.state)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range st.RouteTables[0].Entries {
		if e.Type == "Custom" {
			n++
		}
	}
	if n != 3 || st.RouteTables[0].Quota != 3 { // two live entries plus the one still Deleting when last written
		t.Fatalf("state file: %d custom entries, quota %d", n, st.RouteTables[0].Quota)
	}
}

func TestPaginationAndSplitBatches(t *testing.T) {
	f := newFixture(t, sim.Timing{}, nil) // zero timing is replaced by defaults; set explicit zero delays below
	f.world.SetTiming(sim.Timing{EntryPending: 0, EntryDeleting: 0, WriteGap: 0})
	if err := f.world.SetQuota(table, 1000); err != nil {
		t.Fatal(err)
	}
	cl := f.client(t, nil, nil)
	ctx := context.Background()
	var want []aliyun.NewRouteEntry
	for i := 0; i < 230; i++ {
		want = append(want, entry(fmt.Sprintf("10.%d.%d.0/24", 100+i/200, i%200), "i-alisim0001"))
	}
	res, err := cl.CreateRouteEntries(ctx, want) // 5 calls of at most 50
	if err != nil || res.Succeeded != 230 || len(res.EntryIDs) != 230 {
		t.Fatalf("create 230: %+v %v", res.Succeeded, err)
	}
	if got := statuses(t, cl); len(got) != 230 {
		t.Fatalf("listed %d custom entries over pages, want 230", len(got))
	}
}

// A create whose answer is lost is retried with the same ClientToken and does not make a second entry.
func TestClientTokenPreventsDoubles(t *testing.T) {
	var dropped atomic.Bool
	f := newFixture(t, sim.DefaultTiming, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if r.Form.Get("Action") == "CreateRouteEntry" && dropped.CompareAndSwap(false, true) {
				h.ServeHTTP(httptest.NewRecorder(), r) // the service did it...
				w.WriteHeader(503)                     // ...but the answer is lost
				_, _ = io.WriteString(w, `{"Code":"ServiceUnavailable","Message":"lost","RequestId":"x"}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	cl := f.client(t, nil, nil)
	id, err := cl.CreateRouteEntry(context.Background(), entry("10.244.1.0/24", "i-alisim0001"))
	if err != nil || id == "" || !dropped.Load() {
		t.Fatalf("create: %q %v (dropped %v)", id, err, dropped.Load())
	}
	if got := statuses(t, cl); len(got) != 1 {
		t.Fatalf("entries after retried create: %v", got)
	}
}

func TestAuthenticationRefusals(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	ctx := context.Background()
	wrong := f.client(t, aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: "not-the-secret"}, func(c *aliyun.Config) { c.Attempts = 1 })
	_, err := wrong.RouteTables(ctx, "vpc-alisim0001")
	if aliyun.Code(err) != "SignatureDoesNotMatch" || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := f.client(t, aliyun.Static{AccessKeyID: "LTAInobody", AccessKeySecret: "x"}, func(c *aliyun.Config) { c.Attempts = 1 })
	if _, err := unknown.RouteTables(ctx, "vpc-alisim0001"); aliyun.Code(err) != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("unknown key: %v", err)
	}
	// Raw signed requests: an old timestamp, then a reused nonce.
	raw := func(ts time.Time, nonce string) (int, string) {
		p := map[string]string{"Action": "DescribeRouteTableList", "Version": "2016-04-28", "Format": "JSON", "AccessKeyId": sim.DefaultAccessKeyID,
			"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureType": "", "SignatureNonce": nonce,
			"Timestamp": ts.UTC().Format("2006-01-02T15:04:05Z"), "RegionId": "cn-hangzhou"}
		p["Signature"] = sim.Sign("POST", p, sim.DefaultAccessKeySecret)
		q := url.Values{}
		for k, v := range p {
			q.Set(k, v)
		}
		resp, err := http.Post(f.http.URL+"/?"+q.Encode(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Code
	}
	if code, c := raw(f.clock.Now().Add(-20*time.Minute), "n1"); code != 400 || c != "InvalidTimeStamp.Expired" {
		t.Fatalf("old timestamp: %d %s", code, c)
	}
	if code, c := raw(f.clock.Now(), "n2"); code != 200 {
		t.Fatalf("fresh request: %d %s", code, c)
	}
	if code, c := raw(f.clock.Now(), "n2"); code != 400 || c != "SignatureNonceUsed" {
		t.Fatalf("reused nonce: %d %s", code, c)
	}
}

func TestRAMRoleCredentialsExpireAndRefresh(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	md := sim.NewMetadata(f.world, "i-alisim0001")
	md.CredentialTTL = 10 * time.Minute // short enough to expire within the 15-minute timestamp window
	mdSrv := httptest.NewServer(md)
	defer mdSrv.Close()
	role := &aliyun.RAMRole{MetadataURL: mdSrv.URL, Now: f.clock.Now}
	cl := f.client(t, role, func(c *aliyun.Config) { c.Attempts = 1 })
	ctx := context.Background()
	if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); err != nil {
		t.Fatalf("with RAM role credentials: %v", err)
	}
	first, _ := role.Credentials(ctx)
	if first.SecurityToken == "" || !strings.HasPrefix(first.AccessKeyID, "STS.") {
		t.Fatalf("credentials %v", first)
	}
	if strings.Contains(first.String(), first.AccessKeySecret) || strings.Contains(first.String(), first.SecurityToken) {
		t.Fatalf("String() leaks: %s", first)
	}
	// Near expiry the role refreshes; the old STS key is refused once expired.
	f.clock.Advance(6 * time.Minute)
	second, _ := role.Credentials(ctx)
	if second.AccessKeyID == first.AccessKeyID {
		t.Fatal("credentials not refreshed 4 minutes before expiry")
	}
	f.clock.Advance(5 * time.Minute)
	stale := f.client(t, aliyun.Static(first), func(c *aliyun.Config) { c.Attempts = 1 })
	if _, err := stale.RouteTables(ctx, "vpc-alisim0001"); aliyun.Code(err) != "InvalidSecurityToken.Expired" {
		t.Fatalf("expired STS token: %v", err)
	}
	if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); err != nil {
		t.Fatalf("refreshed credentials refused: %v", err)
	}
}

func TestThrottlingFaultsAndMetrics(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	reg := prometheus.NewRegistry()
	cl := f.client(t, nil, func(c *aliyun.Config) { c.Attempts = 3; c.Registerer = reg })
	ctx := context.Background()
	admin := func(path, body string) {
		resp, err := http.Post(f.http.URL+path, "application/json", bytes.NewBufferString(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	admin("/admin/limit", `{"action":"DescribeRouteTableList","rate":0.001,"burst":1}`)
	if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); err != nil {
		t.Fatal(err)
	}
	_, err := cl.RouteTables(ctx, "vpc-alisim0001")
	if aliyun.Code(err) != "Throttling.User" {
		t.Fatalf("second call: %v", err)
	}
	if n := testutil.ToFloat64(mustCounter(t, reg, "DescribeRouteTableList", "throttled")); n != 3 {
		t.Fatalf("throttled calls counted %v, want 3 attempts", n)
	}
	admin("/admin/limit", `{"action":"DescribeRouteTableList","rate":0}`)
	admin("/admin/fault", `{"action":"DescribeRouteEntryList","errors":{"InternalError":1}}`)
	if _, err := cl.RouteEntries(ctx, table); aliyun.Code(err) != "InternalError" || !aliyun.Retryable(err) {
		t.Fatalf("injected: %v", err)
	}
	admin("/admin/fault", `{"action":"DescribeRouteEntryList"}`)
	if _, err := cl.RouteEntries(ctx, table); err != nil {
		t.Fatalf("after clearing the fault: %v", err)
	}
	resp, _ := http.Get(f.http.URL + "/admin/state")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"vtb-alisim0001"`) {
		t.Fatalf("state dump: %s", b)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, action, outcome string) prometheus.Collector {
	t.Helper()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "weft_cloud_api_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["action"] == action && l["outcome"] == outcome {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no weft_cloud_api_calls_total{action=%q,outcome=%q}", action, outcome)
	return nil
}

func TestCredentialChain(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	dir := t.TempDir()
	chain := aliyun.DefaultChain(aliyun.ChainOptions{Getenv: getenv, File: filepath.Join(dir, "none")})
	if _, err := chain.Credentials(ctx); err != aliyun.ErrNoCredentials {
		t.Fatalf("empty chain: %v", err)
	}
	file := filepath.Join(dir, "credentials")
	_ = os.WriteFile(file, []byte("[other]\naccess_key_id = x\n[default]\ntype = access_key\naccess_key_id = LTAIfile\naccess_key_secret = s3\n"), 0o600)
	chain = aliyun.DefaultChain(aliyun.ChainOptions{Getenv: getenv, File: file})
	if c, err := chain.Credentials(ctx); err != nil || c.AccessKeyID != "LTAIfile" {
		t.Fatalf("file: %v %v", c, err)
	}
	env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "LTAIalibaba", "s2"
	if c, _ := chain.Credentials(ctx); c.AccessKeyID != "LTAIalibaba" {
		t.Fatalf("ALIBABA_CLOUD_* env: %v", c)
	}
	env["ACCESS_KEY_ID"], env["ACCESS_KEY_SECRET"] = "LTAIflannel", "s1"
	if c, _ := chain.Credentials(ctx); c.AccessKeyID != "LTAIflannel" {
		t.Fatalf("ACCESS_KEY_ID env (upstream's names) must win: %v", c)
	}
	if got := aliyun.MetadataURL(getenv); got != aliyun.DefaultMetadataURL {
		t.Errorf("MetadataURL without env = %s", got)
	}
	env["METADATA_ENDPOINT"] = "127.0.0.1:9100"
	if got := aliyun.MetadataURL(getenv); got != "http://127.0.0.1:9100" {
		t.Errorf("MetadataURL from env = %s", got)
	}
	static := aliyun.DefaultChain(aliyun.ChainOptions{Getenv: getenv, Static: &aliyun.Credentials{AccessKeyID: "LTAIconf", AccessKeySecret: "s0"}})
	if c, _ := static.Credentials(ctx); c.AccessKeyID != "LTAIconf" || strings.Contains(fmt.Sprint(c), "s0") {
		t.Fatalf("static: %v", c)
	}
}

func TestRouteEntryByDst(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := f.client(t, nil, nil)
	ctx := context.Background()
	if _, err := cl.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0001")); err != nil {
		t.Fatal(err)
	}
	e, err := cl.RouteEntryByDst(ctx, table, netip.MustParsePrefix("10.244.1.0/24"))
	if err != nil || e == nil || e.NextHopID != "i-alisim0001" || e.Status != routetable.StatusPending {
		t.Fatalf("%+v %v", e, err)
	}
	if e, err := cl.RouteEntryByDst(ctx, table, netip.MustParsePrefix("10.244.9.0/24")); err != nil || e != nil {
		t.Fatalf("absent: %+v %v", e, err)
	}
}
