package aliyun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

func ecsClient(t *testing.T, f *fixture) *aliyun.Client {
	return f.client(t, nil, func(c *aliyun.Config) {
		c.ECSEndpoint = strings.TrimPrefix(f.http.URL, "http://")
		c.Attempts = 1
	})
}

// The documented pods-per-node figures come out of DescribeInstanceTypes.
func TestInstanceTypes(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	types, err := cl.InstanceTypes(context.Background(), "ecs.c7.4xlarge", "ecs.c6.4xlarge", "ecs.g7.2xlarge", "ecs.ebmg5s.24xlarge")
	if err != nil || len(types) != 4 {
		t.Fatalf("%v %v", types, err)
	}
	want := map[string][2]int{"ecs.c7.4xlarge": {210, 7}, "ecs.c6.4xlarge": {140, 7}, "ecs.g7.2xlarge": {45, 3}, "ecs.ebmg5s.24xlarge": {310, 31}}
	for _, ty := range types {
		if w := want[ty.ID]; ty.SharedENIPods() != w[0] || ty.ExclusiveENIPods() != w[1] {
			t.Errorf("%s: shared %d exclusive %d, want %v", ty.ID, ty.SharedENIPods(), ty.ExclusiveENIPods(), w)
		}
	}
	all, err := cl.InstanceTypes(context.Background())
	if err != nil || len(all) < 7 {
		t.Fatalf("all types: %d %v", len(all), err)
	}
}

func TestENILifecycleAndLimits(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	// i-alisim0003 is an ecs.g7.2xlarge: 4 ENIs (primary included), 15 IPv4 addresses per ENI.
	const inst = "i-alisim0003"
	var enis []aliyun.ENI
	for i := 0; i < 4; i++ {
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 2,
			Tags: map[string]string{"weft.io/node": inst}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != "Available" || len(e.Secondary) != 2 || !e.PrimaryIP.IsValid() {
			t.Fatalf("created %+v", e)
		}
		enis = append(enis, e)
	}
	for i, e := range enis[:3] {
		if err := cl.AttachENI(ctx, inst, e.ID); err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
	}
	if err := cl.AttachENI(ctx, inst, enis[3].ID); aliyun.Code(err) != "EniPerInstanceLimitExceeded" {
		t.Fatalf("fourth secondary ENI: %v", err)
	}
	got, _ := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{enis[0].ID}})
	if len(got) != 1 || got[0].Status != "Attaching" {
		t.Fatalf("right after attach: %+v", got)
	}
	f.clock.Advance(2 * time.Second)
	got, _ = cl.ENIs(ctx, aliyun.ENIFilter{InstanceID: inst, Type: "Secondary"})
	if len(got) != 3 || got[0].Status != "InUse" {
		t.Fatalf("attached ENIs: %+v", got)
	}
	if tagged, _ := cl.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{"weft.io/node": inst}}); len(tagged) != 4 {
		t.Fatalf("by tag: %d", len(tagged))
	}
	// 1 primary + 2 + 10 + 2 = 15 is the limit; one more is refused.
	ips, err := cl.AssignIPs(ctx, enis[0].ID, 10)
	if err != nil || len(ips) != 10 {
		t.Fatalf("assign 10: %v %v", ips, err)
	}
	if _, err := cl.AssignIPs(ctx, enis[0].ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AssignIPs(ctx, enis[0].ID, 1); aliyun.Code(err) != "InvalidOperation.Ipv4CountExceeded" {
		t.Fatalf("over the per-ENI limit: %v", err)
	}
	if err := cl.UnassignIPs(ctx, enis[0].ID, ips[:3]); err != nil {
		t.Fatal(err)
	}
	if err := cl.UnassignIPs(ctx, enis[0].ID, ips[:3]); err != nil {
		t.Fatalf("second unassign must count as done: %v", err)
	}
	if err := cl.DeleteENI(ctx, enis[1].ID); aliyun.Code(err) != "InvalidOperation.InvalidEniState" {
		t.Fatalf("delete while InUse: %v", err)
	}
	if err := cl.DetachENI(ctx, inst, enis[1].ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if err := cl.DeleteENI(ctx, enis[1].ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if left, _ := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{enis[1].ID}}); len(left) != 0 {
		t.Fatalf("deleted ENI still listed: %+v", left)
	}
	if err := cl.DeleteENI(ctx, enis[1].ID); err != nil {
		t.Fatalf("deleting a gone ENI must count as done: %v", err)
	}
}

func TestVSwitchRunsOutOfAddresses(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	// A /24 offers 256 - 4 reserved - 2 instances = 250 addresses to ENIs.
	n := 0
	for {
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 9})
		if err != nil {
			if aliyun.Code(err) != "InvalidVSwitchId.IpNotEnough" {
				t.Fatalf("after %d addresses: %v", n, err)
			}
			break
		}
		n += 1 + len(e.Secondary)
		if n > 300 {
			t.Fatal("the vSwitch pool never ran out")
		}
	}
	if n != 250 { // 25 ENIs of 10 addresses
		t.Fatalf("%d addresses handed out before IpNotEnough, want 250", n)
	}
	sws, _ := cl.VSwitches(ctx, "vpc-alisim0001")
	if sws[0].Available != 0 {
		t.Fatalf("AvailableIpAddressCount %d", sws[0].Available)
	}
}

// Metadata shows an attached ENI and its new addresses only after a lag, as a real instance does, and serves
// the token flow.
func TestMetadataFollowsAPIWithLag(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	md := sim.NewMetadata(f.world, "i-alisim0001")
	srv := httptest.NewServer(md)
	defer srv.Close()
	get := func(path string) string {
		v, err := (&aliyun.Metadata{BaseURL: srv.URL}).Get(ctx, path)
		if err != nil {
			return "ERR " + err.Error()
		}
		return v
	}
	if get("instance-id") != "i-alisim0001" || get("region-id") != "cn-hangzhou" || get("vpc-id") != "vpc-alisim0001" {
		t.Fatalf("basics: %s %s %s", get("instance-id"), get("region-id"), get("vpc-id"))
	}
	e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = cl.AttachENI(ctx, "i-alisim0001", e.ID)
	f.clock.Advance(2 * time.Second) // attached now, but metadata lags
	if macs := get("network/interfaces/macs/"); strings.Contains(macs, e.MAC) {
		t.Fatalf("ENI visible in metadata without lag: %q", macs)
	}
	f.clock.Advance(time.Second)
	if macs := get("network/interfaces/macs/"); !strings.Contains(macs, e.MAC) {
		t.Fatalf("ENI not in metadata after the lag: %q", macs)
	}
	ips, _ := cl.AssignIPs(ctx, e.ID, 1)
	base := "network/interfaces/macs/" + e.MAC + "/"
	if v := get(base + "private-ipv4s"); strings.Contains(v, ips[0].String()) {
		t.Fatalf("new address visible without lag: %s", v)
	}
	f.clock.Advance(time.Second)
	if v := get(base + "private-ipv4s"); v != fmt.Sprintf(`[%q,%q]`, e.PrimaryIP, ips[0]) {
		t.Fatalf("private-ipv4s %s", v)
	}
	if v := get(base + "network-interface-id"); v != e.ID {
		t.Fatalf("network-interface-id %s", v)
	}
	// Token flow.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/latest/api/token", nil)
	req.Header.Set("X-aliyun-ecs-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: %v %v", resp, err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range []struct {
		tok  string
		want int
	}{{string(tok), 200}, {"forged", 401}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/latest/meta-data/instance-id", nil)
		req.Header.Set("X-aliyun-ecs-metadata-token", c.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != c.want {
			t.Errorf("token %q: %v %v, want %d", c.tok, resp.StatusCode, err, c.want)
		}
		resp.Body.Close()
	}
}

// Metadata per MAC carries what the datapath needs (the ENI id, its addresses, the vSwitch block, gateway and
// netmask), and trails the API both ways: an unassigned address and a detached ENI stay listed for the lag.
func TestMetadataPerMACAndLagBothWays(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	md := sim.NewMetadata(f.world, "i-alisim0002")
	srv := httptest.NewServer(md)
	defer srv.Close()
	get := func(path string) string {
		v, err := (&aliyun.Metadata{BaseURL: srv.URL}).Get(ctx, path)
		if err != nil {
			return "ERR " + err.Error()
		}
		return v
	}
	e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0002", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AttachENI(ctx, "i-alisim0002", e.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Second) // attached for the transition, then the lag
	base := "network/interfaces/macs/" + e.MAC + "/"
	for key, want := range map[string]string{
		"network-interface-id": e.ID, "primary-ip-address": e.PrimaryIP.String(),
		"private-ipv4s": fmt.Sprintf("[%q,%q,%q]", e.PrimaryIP, e.Secondary[0], e.Secondary[1]),
		"vswitch-id":    "vsw-alisim0002", "vswitch-cidr-block": "192.168.1.0/24", "gateway": "192.168.1.253",
		"netmask": "255.255.255.0", "vpc-id": "vpc-alisim0001", "vpc-cidr-block": "192.168.0.0/16",
	} {
		if got := get(base + key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if got := get("network/interfaces/macs/00:16:3e:00:00:02/netmask"); got != "255.255.255.0" {
		t.Errorf("the primary MAC's netmask: %q", got)
	}
	if err := cl.UnassignIPs(ctx, e.ID, e.Secondary[:1]); err != nil {
		t.Fatal(err)
	}
	if got := get(base + "private-ipv4s"); !strings.Contains(got, e.Secondary[0].String()) {
		t.Fatalf("an unassigned address left metadata without lag: %s", got)
	}
	f.clock.Advance(time.Second)
	if got := get(base + "private-ipv4s"); got != fmt.Sprintf("[%q,%q]", e.PrimaryIP, e.Secondary[1]) {
		t.Fatalf("after the lag: %s", got)
	}
	if err := cl.DetachENI(ctx, "i-alisim0002", e.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second) // detached in the API
	if got, _ := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{e.ID}}); len(got) != 1 || got[0].Status != "Available" {
		t.Fatalf("API after detach: %+v", got)
	}
	if macs := get("network/interfaces/macs/"); !strings.Contains(macs, e.MAC) {
		t.Fatalf("a detached ENI left metadata without lag: %q", macs)
	}
	if got := get(base + "network-interface-id"); got != e.ID {
		t.Fatalf("the lagging entry: %q", got)
	}
	f.clock.Advance(time.Second)
	if macs := get("network/interfaces/macs/"); strings.Contains(macs, e.MAC) {
		t.Fatalf("a detached ENI still in metadata after the lag: %q", macs)
	}
	if got := get(base + "network-interface-id"); !strings.HasPrefix(got, "ERR") {
		t.Fatalf("the detached ENI's keys after the lag: %q", got)
	}
}

// A small vSwitch from a topology file runs out after its block minus the four reserved addresses, for create
// and assign alike; its gateway and netmask follow the block, not a /24.
func TestSmallVSwitchFromTopology(t *testing.T) {
	st := sim.DefaultState()
	st.VSwitches = append(st.VSwitches, &sim.VSwitch{ID: "vsw-small", VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-h", CIDR: "192.168.2.0/28",
		RouteTableID: "vtb-alisim0001"})
	path := filepath.Join(t.TempDir(), "topology.json")
	b, _ := json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := sim.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	w := sim.NewWorld(loaded, c, "")
	hs := httptest.NewServer(sim.NewServer(w))
	t.Cleanup(hs.Close)
	f := &fixture{clock: c, world: w, http: hs}
	cl := ecsClient(t, f)
	ctx := context.Background()
	e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-small", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AssignIPs(ctx, e.ID, 3); !aliyun.IsVSwitchExhausted(err) { // 16 - 4 reserved - 10 = 2 left
		t.Fatalf("assign 3 of 2: %v", err)
	}
	if _, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-small", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 2}); !aliyun.IsVSwitchExhausted(err) {
		t.Fatalf("create needing 3 of 2: %v", err)
	}
	x, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-small", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append([]netip.Addr{e.PrimaryIP, x.PrimaryIP}, append(e.Secondary, x.Secondary...)...) {
		if a.As4()[3] == 0 || a.As4()[3] >= 13 {
			t.Errorf("handed out the reserved address %s", a)
		}
	}
	if err := cl.AttachENI(ctx, "i-alisim0001", x.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Second)
	md := httptest.NewServer(sim.NewMetadata(w, "i-alisim0001"))
	defer md.Close()
	for key, want := range map[string]string{"gateway": "192.168.2.13", "netmask": "255.255.255.240", "vswitch-cidr-block": "192.168.2.0/28"} {
		if got, err := (&aliyun.Metadata{BaseURL: md.URL}).Get(ctx, "network/interfaces/macs/"+x.MAC+"/"+key); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", key, got, err, want)
		}
	}
	st.VSwitches[len(st.VSwitches)-1].CIDR = "192.168.2.0/30"
	if err := st.Validate(); err == nil || !strings.Contains(err.Error(), "/16 to /29") {
		t.Fatalf("a /30 vSwitch: %v", err)
	}
}

// FillVSwitch leaves exactly the addresses asked for; ReleaseReserved gives them back. A throttled action
// reads as IsThrottled.
func TestFillVSwitchAndThrottled(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	if _, err := f.world.FillVSwitch("vsw-alisim0002", 1); err != nil {
		t.Fatal(err)
	}
	sws, _ := cl.VSwitches(ctx, "vpc-alisim0001")
	if sws[1].ID != "vsw-alisim0002" || sws[1].Available != 1 {
		t.Fatalf("after the fill: %+v", sws[1])
	}
	if n, err := f.world.ReleaseReserved("vsw-alisim0002", -1); err != nil || n != 256-4-1-1 {
		t.Fatalf("released %d %v", n, err)
	}
	sws, _ = cl.VSwitches(ctx, "vpc-alisim0001")
	if sws[1].Available != 256-4-1 {
		t.Fatalf("after the release: %+v", sws[1])
	}
	f.srv.SetLimit("CreateNetworkInterface", sim.Limit{Rate: 0.001, Burst: 1})
	var err error
	for range 2 {
		_, err = cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}})
	}
	if !aliyun.IsThrottled(err) || aliyun.IsENILimit(err) || aliyun.IsVSwitchExhausted(err) {
		t.Fatalf("second create past the service's limit: %v", err)
	}
}

// A caller's ClientToken the service would refuse is refused before any call, naming the field.
func TestCreateENIChecksCallerToken(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	_, err := cl.CreateENI(context.Background(), aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"},
		ClientToken: strings.Repeat("x", 65)})
	if err == nil || !strings.Contains(err.Error(), "ClientToken") {
		t.Fatalf("a 65-character token: %v", err)
	}
	if n := f.srv.Calls("CreateNetworkInterface"); n != 0 {
		t.Fatalf("%d calls made with a token the service refuses", n)
	}
}

// The instance's type and zone come from DescribeInstances; an unknown instance is an error naming it.
func TestInstance(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	in, err := cl.Instance(context.Background(), "i-alisim0002")
	if err != nil {
		t.Fatal(err)
	}
	if in.Type != "ecs.c6.4xlarge" || in.Zone != "cn-hangzhou-i" || in.VSwitchID != "vsw-alisim0002" || in.VPCID != "vpc-alisim0001" {
		t.Errorf("%+v", in)
	}
	if _, err := cl.Instance(context.Background(), "i-nonexistent"); err == nil || !strings.Contains(err.Error(), "i-nonexistent") {
		t.Errorf("unknown instance: %v", err)
	}
}
