package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

func TestParseFlags(t *testing.T) {
	if a, l, err := parseLimit("*=20:40"); err != nil || a != "*" || l.Rate != 20 || l.Burst != 40 {
		t.Errorf("limit: %v %v %v", a, l, err)
	}
	if a, f, err := parseFault("CreateRouteEntries=Throttling:0.2,InternalError:0.1@50ms"); err != nil || a != "CreateRouteEntries" ||
		f.Errors["Throttling"] != 0.2 || f.Errors["InternalError"] != 0.1 || f.Latency != 50*time.Millisecond {
		t.Errorf("fault: %v %+v %v", a, f, err)
	}
	for _, bad := range []string{"x", "*=1", "*=a:1", "*=1:0"} {
		if _, _, err := parseLimit(bad); err == nil || !strings.Contains(err.Error(), "--limit") {
			t.Errorf("limit %q accepted: %v", bad, err)
		}
	}
	a, f, err := parseFault("*=Throttling:0.2,after:InternalError:0.1,after:reset:0.05,before:SystemBusy:0.01")
	if err != nil || a != "*" || f.Errors["Throttling"] != 0.2 || f.Errors["SystemBusy"] != 0.01 || f.After["InternalError"] != 0.1 ||
		f.After[sim.Reset] != 0.05 || len(f.Errors) != 2 || len(f.After) != 2 {
		t.Errorf("fault with after-codes: %v %+v %v", a, f, err)
	}
	if _, f, err := parseFault("A=@20ms"); err != nil || f.Latency != 20*time.Millisecond {
		t.Errorf("latency only: %+v %v", f, err)
	}
	for _, bad := range []string{"x", "A=T:2", "A=T", "A=T:0.1@soon", "A=", "=T:0.1", "A=:0.1", "A=after::0.5", "A=after:T:1.5",
		"A=T:NaN", "A=T:-0.1", "A=T:0.1@-5ms", "A=during:T:0.1"} {
		if _, _, err := parseFault(bad); err == nil || !strings.Contains(err.Error(), "--fault") {
			t.Errorf("fault %q accepted: %v", bad, err)
		}
	}
}

// A --listen other hosts can reach is refused without --allow-remote-admin: /admin/state dumps every secret.
func TestCheckListen(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8900", "127.0.0.1:0", "[::1]:0", "localhost:8900", "127.1.2.3:80"} {
		if err := checkListen(ok, false); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, remote := range []string{"0.0.0.0:8900", ":8900", "10.0.0.1:8900", "[::]:8900", "example.com:8900"} {
		if err := checkListen(remote, false); err == nil || !strings.Contains(err.Error(), "--allow-remote-admin") {
			t.Errorf("%s accepted: %v", remote, err)
		}
		if err := checkListen(remote, true); err != nil {
			t.Errorf("%s with --allow-remote-admin: %v", remote, err)
		}
	}
	if err := checkListen("nope", true); err == nil {
		t.Error("an address without a port accepted")
	}
}

// alisim started with no arguments prints its endpoint and key pair, and the real SDK works against it at once;
// with a state file it keeps its state across a restart.
func TestStartsWithDefaultWorldAndPersists(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "alisim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// Refusals exit at once; a binary that serves instead is killed after 10 s and fails the check.
	refused := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("alisim %v was not refused: %v %s", args, err, out)
		}
		return string(out)
	}
	if out := refused("--listen", "0.0.0.0:0"); !strings.Contains(out, "--allow-remote-admin") {
		t.Fatalf("non-loopback --listen: %s", out)
	}
	if out := refused("--fault", "CreateRouteEntry=:0.5"); !strings.Contains(out, "--fault") {
		t.Fatalf("a fault with an empty code: %s", out)
	}
	if out := refused("--eni-transition", "-1s"); !strings.Contains(out, "--eni-transition") {
		t.Fatalf("a negative ENI transition: %s", out)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	start := func() (map[string]any, func()) {
		cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--state", state, "--entry-pending", "0", "--write-gap", "0",
			"--eni-transition", "1ns", "--metadata-lag", "0")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		if err := json.Unmarshal([]byte(line), &info); err != nil {
			t.Fatalf("first line %q: %v", line, err)
		}
		return info, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	}
	info, stop := start()
	if info["accessKeyId"] != sim.DefaultAccessKeyID || info["regionId"] != "cn-hangzhou" {
		t.Fatalf("start-up line %v", info)
	}
	cl, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: info["endpoint"].(string), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: info["accessKeyId"].(string), AccessKeySecret: info["accessKeySecret"].(string)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.CreateRouteEntry(ctx, aliyun.NewRouteEntry{TableID: "vtb-alisim0001", Dst: mustPrefix("10.244.7.0/24"), NextHopID: "i-alisim0001"}); err != nil {
		t.Fatal(err)
	}
	ecsCl, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", ECSEndpoint: info["endpoint"].(string), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	eni, err := ecsCl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0002", SecurityGroupIDs: []string{"sg-alisim0002"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+info["endpoint"].(string)+"/admin/vswitch/fill", "application/json",
		strings.NewReader(`{"vSwitchId":"vsw-alisim0002","leave":0}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("fill over the admin API: %v %v", resp, err)
	}
	resp.Body.Close()
	stop()
	info, stop = start()
	defer stop()
	cl, _ = aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: info["endpoint"].(string), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	es, err := cl.RouteEntries(ctx, "vtb-alisim0001")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		found = found || e.Dst.String() == "10.244.7.0/24"
	}
	if !found {
		t.Fatalf("entry lost across restart: %+v", es)
	}
	ecsCl, _ = aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", ECSEndpoint: info["endpoint"].(string), Scheme: "HTTP", Attempts: 1,
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	got, err := ecsCl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{eni.ID}})
	if err != nil || len(got) != 1 || len(got[0].SecurityGroupIDs) != 1 || got[0].SecurityGroupIDs[0] != "sg-alisim0002" || got[0].CreationTime.IsZero() {
		t.Fatalf("ENI across restart: %+v %v", got, err)
	}
	if _, err := ecsCl.AssignIPs(ctx, eni.ID, 1); !aliyun.IsVSwitchExhausted(err) {
		t.Fatalf("the filled vSwitch across restart: %v", err)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// FuzzParseFault: no --fault value panics, and every accepted one is a valid fault.
func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"CreateRouteEntries=Throttling:0.2,InternalError:0.1@50ms", "*=after:reset:1", "A=before:T:0.5,after:X:NaN",
		"A=@-1s", "=", "A=T:1e309", "A=after:", "A=:::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, flt, err := parseFault(s); err == nil {
			if verr := flt.Validate(); verr != nil {
				t.Fatalf("%q accepted but invalid: %v", s, verr)
			}
		}
	})
}
