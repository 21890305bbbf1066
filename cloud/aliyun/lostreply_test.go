package aliyun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// lostReplyCase is one write action weft uses: how to prepare the world, make the call, and see it applied.
type lostReplyCase struct {
	action  string
	setup   func(t *testing.T, f *fixture, cl *aliyun.Client) string // returns what do and applied need (an id)
	do      func(cl *aliyun.Client, id string) error
	applied func(t *testing.T, f *fixture, cl *aliyun.Client, id string) bool
}

func lostReplyCases() []lostReplyCase {
	ctx := context.Background()
	noSetup := func(*testing.T, *fixture, *aliyun.Client) string { return "" }
	hasDst := func(dsts ...string) func(*testing.T, *fixture, *aliyun.Client, string) bool {
		return func(_ *testing.T, f *fixture, _ *aliyun.Client, _ string) bool {
			got := map[string]bool{}
			for _, e := range f.world.CustomEntries(table) {
				got[e.Dst] = true
			}
			for _, d := range dsts {
				if !got[d] {
					return false
				}
			}
			return len(got) == len(dsts)
		}
	}
	noEntries := func(_ *testing.T, f *fixture, _ *aliyun.Client, _ string) bool {
		return len(f.world.CustomEntries(table)) == 0
	}
	createEntries := func(dsts ...string) func(*testing.T, *fixture, *aliyun.Client) string {
		return func(t *testing.T, f *fixture, cl *aliyun.Client) string {
			var ne []aliyun.NewRouteEntry
			for _, d := range dsts {
				ne = append(ne, entry(d, "i-alisim0001"))
			}
			if r, err := cl.CreateRouteEntries(ctx, ne); err != nil || r.Succeeded != len(dsts) {
				t.Fatalf("setup: %+v %v", r, err)
			}
			return f.world.CustomEntries(table)[0].ID
		}
	}
	eni := func(t *testing.T, cl *aliyun.Client, id string) aliyun.ENI {
		got, err := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
		if err != nil || len(got) != 1 {
			t.Fatalf("ENI %s: %+v %v", id, got, err)
		}
		return got[0]
	}
	newENI := func(secondary int, attach bool) func(*testing.T, *fixture, *aliyun.Client) string {
		return func(t *testing.T, f *fixture, cl *aliyun.Client) string {
			f.world.EnableIPv6("vsw-alisim0001", "2408:4005:300:a100::/64")
			e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: secondary})
			if err != nil {
				t.Fatal(err)
			}
			if attach {
				if err := cl.AttachENI(ctx, "i-alisim0001", e.ID); err != nil {
					t.Fatal(err)
				}
			}
			return e.ID
		}
	}
	return []lostReplyCase{
		{"CreateRouteEntry", noSetup,
			func(cl *aliyun.Client, _ string) error {
				_, err := cl.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0001"))
				return err
			},
			hasDst("10.244.1.0/24")},
		{"DeleteRouteEntry", createEntries("10.244.1.0/24"),
			func(cl *aliyun.Client, id string) error { return cl.DeleteRouteEntry(ctx, table, id) }, noEntries},
		{"CreateRouteEntries", noSetup,
			func(cl *aliyun.Client, _ string) error {
				_, err := cl.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{entry("10.244.1.0/24", "i-alisim0001"), entry("10.244.2.0/24", "i-alisim0002")})
				return err
			}, hasDst("10.244.1.0/24", "10.244.2.0/24")},
		{"DeleteRouteEntries", createEntries("10.244.1.0/24", "10.244.2.0/24"),
			func(cl *aliyun.Client, _ string) error {
				es, err := cl.RouteEntries(ctx, table)
				if err != nil {
					return err
				}
				var custom []aliyun.RouteEntry
				for _, e := range es {
					if e.Type == "Custom" {
						custom = append(custom, e)
					}
				}
				_, err = cl.DeleteRouteEntries(ctx, custom)
				return err
			}, noEntries},
		{"CreateNetworkInterface", noSetup,
			func(cl *aliyun.Client, _ string) error {
				_, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}})
				return err
			}, func(t *testing.T, _ *fixture, cl *aliyun.Client, _ string) bool {
				got, err := cl.ENIs(ctx, aliyun.ENIFilter{Type: "Secondary"})
				return err == nil && len(got) == 1
			}},
		{"AttachNetworkInterface", newENI(0, false),
			func(cl *aliyun.Client, id string) error { return cl.AttachENI(ctx, "i-alisim0001", id) },
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				e := eni(t, cl, id)
				return e.InstanceID == "i-alisim0001" && e.Status == "InUse"
			}},
		{"DetachNetworkInterface", newENI(0, true),
			func(cl *aliyun.Client, id string) error { return cl.DetachENI(ctx, "i-alisim0001", id) },
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				e := eni(t, cl, id)
				return e.InstanceID == "" && e.Status == "Available"
			}},
		{"DeleteNetworkInterface", newENI(0, false),
			func(cl *aliyun.Client, id string) error { return cl.DeleteENI(ctx, id) },
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				got, err := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
				return err == nil && len(got) == 0
			}},
		{"AssignPrivateIpAddresses", newENI(0, true),
			func(cl *aliyun.Client, id string) error { _, err := cl.AssignIPs(ctx, id, 2); return err },
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				return len(eni(t, cl, id).Secondary) == 2
			}},
		{"UnassignPrivateIpAddresses", newENI(2, true),
			func(cl *aliyun.Client, id string) error {
				e, err := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
				if err != nil || len(e) != 1 {
					return err
				}
				return cl.UnassignIPs(ctx, id, e[0].Secondary)
			},
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				return len(eni(t, cl, id).Secondary) == 0
			}},
		{"AssignIpv6Addresses", newENI(0, true),
			func(cl *aliyun.Client, id string) error { _, err := cl.AssignIPv6(ctx, id, 1); return err },
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				return len(eni(t, cl, id).IPv6) == 1
			}},
		{"UnassignIpv6Addresses", func(t *testing.T, f *fixture, cl *aliyun.Client) string {
			id := newENI(0, true)(t, f, cl)
			if _, err := cl.AssignIPv6(ctx, id, 2); err != nil {
				t.Fatal(err)
			}
			return id
		},
			func(cl *aliyun.Client, id string) error {
				e, err := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
				if err != nil || len(e) != 1 || len(e[0].IPv6) != 2 {
					return fmt.Errorf("ENI %s before the unassign: %+v %v", id, e, err)
				}
				return cl.UnassignIPv6(ctx, id, e[0].IPv6)
			},
			func(t *testing.T, _ *fixture, cl *aliyun.Client, id string) bool {
				return len(eni(t, cl, id).IPv6) == 0
			}},
	}
}

// zeroTiming makes every transition complete at once, so a test sees a write's effect without moving time.
func zeroTimingFixture(t *testing.T) *fixture {
	f := newFixture(t, sim.DefaultTiming, nil)
	f.world.SetTiming(sim.Timing{})
	return f
}

// For every write action weft uses, a fault after the write makes the client (one attempt, no retries) see an
// error, an API error or a dropped connection, while the world shows the write applied; the fault is counted
// and the audit marks the write's reply as lost.
func TestLostRepliesThroughTheSDK(t *testing.T) {
	for _, lost := range []string{"InternalError", "ServiceUnavailable", sim.Reset} {
		for _, c := range lostReplyCases() {
			t.Run(lost+"/"+c.action, func(t *testing.T) {
				f := zeroTimingFixture(t)
				cl := ecsClient(t, f) // Attempts 1: the client's retries would hide the lost reply
				id := c.setup(t, f, cl)
				if err := f.srv.SetFault(c.action, sim.Fault{After: map[string]float64{lost: 1}}); err != nil {
					t.Fatal(err)
				}
				err := c.do(cl, id)
				switch {
				case err == nil:
					t.Fatal("the call succeeded although its reply was lost")
				case lost == sim.Reset && aliyun.Code(err) != "":
					t.Fatalf("a reset connection reads as an API error: %v", err)
				case lost != sim.Reset && aliyun.Code(err) != lost:
					t.Fatalf("error %v, want code %s", err, lost)
				}
				if err := f.srv.SetFault(c.action, sim.Fault{}); err != nil {
					t.Fatal(err)
				}
				if !c.applied(t, f, cl, id) {
					t.Fatal("the write was not applied")
				}
				if n := f.srv.Injected()[c.action].After[lost]; n != 1 {
					t.Fatalf("after-faults counted %d, want 1: %+v", n, f.srv.Injected())
				}
				writes, _ := f.world.Writes()
				if last := writes[len(writes)-1]; last.Action != c.action || last.Lost != lost {
					t.Fatalf("last audited write %+v", last)
				}
			})
		}
	}
}

// A create whose reply is lost is retried by the client with the same ClientToken and makes one entry (one ENI),
// not two: through the real SDK, with the fault from alisim rather than from a wrapper.
func TestRetryAfterALostReplyDoesNotDoubleCreate(t *testing.T) {
	ctx := context.Background()
	for _, lost := range []string{"InternalError", sim.Reset} {
		f := zeroTimingFixture(t)
		cl := f.client(t, nil, func(c *aliyun.Config) { c.Attempts = 3; c.ECSEndpoint = strings.TrimPrefix(f.http.URL, "http://") })
		for _, a := range []string{"CreateRouteEntry", "CreateNetworkInterface"} {
			if err := f.srv.SetFault(a, sim.Fault{After: map[string]float64{lost: 1}, Count: 1}); err != nil {
				t.Fatal(err)
			}
		}
		id, err := cl.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0001"))
		if err != nil || id == "" {
			t.Fatalf("%s: create: %q %v", lost, id, err)
		}
		if es := f.world.CustomEntries(table); len(es) != 1 || es[0].ID != id {
			t.Fatalf("%s: entries after the retried create: %+v (id %s)", lost, es, id)
		}
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}})
		if err != nil {
			t.Fatalf("%s: create ENI: %v", lost, err)
		}
		if all, _ := cl.ENIs(ctx, aliyun.ENIFilter{Type: "Secondary"}); len(all) != 1 || all[0].ID != e.ID {
			t.Fatalf("%s: ENIs after the retried create: %+v", lost, all)
		}
		got := f.srv.Injected()
		if got["CreateRouteEntry"].After[lost] != 1 || got["CreateNetworkInterface"].After[lost] != 1 {
			t.Fatalf("%s: counters %+v", lost, got)
		}
	}
}

// The admin API sets after-faults, and /admin/state counts injected faults per action, point and code.
func TestAdminAfterFaultsAndCounters(t *testing.T) {
	f := zeroTimingFixture(t)
	cl := f.client(t, nil, func(c *aliyun.Config) { c.Attempts = 1 })
	ctx := context.Background()
	post := func(body string) {
		resp, err := http.Post(f.http.URL+"/admin/fault", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin fault %s: %v %v", body, err, resp)
		}
		resp.Body.Close()
	}
	post(`{"action":"CreateRouteEntries","after":{"reset":1},"count":1}`)
	post(`{"action":"DescribeRouteTableList","errors":{"Throttling.User":1},"count":2}`)
	if _, err := cl.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{entry("10.244.1.0/24", "i-alisim0001")}); err == nil {
		t.Fatal("lost reply not seen")
	}
	for i := 0; i < 2; i++ {
		if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); aliyun.Code(err) != "Throttling.User" {
			t.Fatalf("refused before: %v", err)
		}
	}
	if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); err != nil {
		t.Fatalf("after count strikes: %v", err)
	}
	resp, err := http.Get(f.http.URL + "/admin/state")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var dump struct {
		InjectedFaults map[string]sim.FaultCounts `json:"injectedFaults"`
	}
	if err := json.Unmarshal(b, &dump); err != nil {
		t.Fatal(err)
	}
	if dump.InjectedFaults["CreateRouteEntries"].After[sim.Reset] != 1 || dump.InjectedFaults["DescribeRouteTableList"].Before["Throttling.User"] != 2 {
		t.Fatalf("injectedFaults %+v", dump.InjectedFaults)
	}
	if len(f.world.CustomEntries(table)) != 1 {
		t.Fatal("the batch whose reply was lost was not applied")
	}
}

// The write audit names the key of every applied write and, for RAM-role credentials, the instance they were
// issued to; reads and refused writes are not recorded.
func TestWriteAudit(t *testing.T) {
	f := zeroTimingFixture(t)
	ctx := context.Background()
	static := f.client(t, nil, func(c *aliyun.Config) { c.Attempts = 1 })
	md := httptestServer(t, sim.NewMetadata(f.world, "i-alisim0002"))
	role := f.client(t, &aliyun.RAMRole{MetadataURL: md, Now: f.clock.Now}, func(c *aliyun.Config) { c.Attempts = 1 })
	if _, err := static.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0001")); err != nil {
		t.Fatal(err)
	}
	if _, err := static.CreateRouteEntry(ctx, entry("10.244.1.0/24", "i-alisim0001")); aliyun.Code(err) != "InvalidCIDRBlock.Duplicate" {
		t.Fatalf("duplicate: %v", err)
	}
	f.clock.Advance(time.Minute)
	if _, err := role.RouteEntries(ctx, table); err != nil {
		t.Fatal(err)
	}
	if _, err := role.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{entry("10.244.2.0/24", "i-alisim0002")}); err != nil {
		t.Fatal(err)
	}
	writes, dropped := f.world.Writes()
	if len(writes) != 2 || dropped != 0 {
		t.Fatalf("audit: %+v (dropped %d)", writes, dropped)
	}
	if w := writes[0]; w.Action != "CreateRouteEntry" || w.AccessKeyID != sim.DefaultAccessKeyID || w.Instance != "" || w.RequestID == "" {
		t.Fatalf("static-key write: %+v", w)
	}
	if w := writes[1]; w.Action != "CreateRouteEntries" || !strings.HasPrefix(w.AccessKeyID, "STS.") || w.Instance != "i-alisim0002" ||
		!w.At.Equal(f.clock.Now()) || !w.At.After(writes[0].At) {
		t.Fatalf("RAM-role write: %+v", w)
	}
	resp, err := http.Get(f.http.URL + "/admin/writes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Writes []sim.Write `json:"writes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Writes) != 2 || body.Writes[1].Instance != "i-alisim0002" {
		t.Fatalf("/admin/writes: %+v %v", body, err)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
