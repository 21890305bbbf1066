package sim

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// One signed DescribeVpcs with an absurd page number used to panic inside the handler with the world lock held,
// after which the API, the admin API and the metadata server hung for ever.
func TestHugePageNumberIsRefusedAndTheWorldStaysUsable(t *testing.T) {
	r := newRig(t)
	code, body := r.call("DescribeVpcs", map[string]string{"PageNumber": "9223372036854775807"})
	if code != 400 || body["Code"] != "InvalidParameter" || !strings.Contains(body["Message"].(string), "PageNumber") {
		t.Fatalf("DescribeVpcs PageNumber=MaxInt64: %d %v", code, body)
	}
	r.adminGet("/admin/state")
	if code, body := r.call("DescribeVpcs", nil); code != 200 {
		t.Fatalf("next call: %d %v", code, body)
	}
}

// A handler that panics is answered with 500 InternalError, and the world lock is released: the admin API and
// the next call still answer.
func TestPanickingHandlerAnswers500AndReleasesTheLock(t *testing.T) {
	r := newRig(t)
	vpcActions["AlisimTestPanic"] = func(*World, params) (any, *APIError) { panic("deliberate") }
	t.Cleanup(func() { delete(vpcActions, "AlisimTestPanic") })
	code, body := r.call("AlisimTestPanic", nil)
	if code != 500 || body["Code"] != "InternalError" || strings.Contains(fmt.Sprint(body), "deliberate") {
		t.Fatalf("panicking handler: %d %v", code, body)
	}
	r.adminGet("/admin/state")
	if code, body := r.call("DescribeVpcs", nil); code != 200 {
		t.Fatalf("next call: %d %v", code, body)
	}
}

// Every numeric parameter is range-checked and refused with InvalidParameter naming it; none panics.
func TestNumericParametersAreRangeChecked(t *testing.T) {
	r := newRig(t)
	code, eni := r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupId": "sg-alisim0001"})
	if code != 200 {
		t.Fatalf("create ENI: %d %v", code, eni)
	}
	r.world.EnableIPv6("vsw-alisim0001", "2408:4005:300:a100::/64")
	id := eni["NetworkInterfaceId"].(string)
	const huge = "9223372036854775807"
	token := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		action, param, value, code string
		extra                      map[string]string
	}{
		{"DescribeVpcs", "PageNumber", huge, "InvalidParameter", nil},
		{"DescribeVpcs", "PageNumber", "2147483648", "InvalidParameter", nil},
		{"DescribeVpcs", "PageNumber", "0", "InvalidParameter", nil},
		{"DescribeVpcs", "PageNumber", "-1", "InvalidParameter", nil},
		{"DescribeVpcs", "PageNumber", "1e3", "InvalidParameter", nil},
		{"DescribeVpcs", "PageSize", "51", "InvalidParameter", nil},
		{"DescribeVSwitches", "PageSize", "99999999999999999999", "InvalidParameter", nil},
		{"DescribeVSwitches", "PageNumber", huge, "InvalidParameter", nil},
		{"DescribeRouteTableList", "PageNumber", huge, "InvalidParameter", nil},
		{"DescribeRouteTables", "PageNumber", huge, "InvalidParameter", nil},
		{"DescribeRouteEntryList", "MaxResult", huge, "InvalidParameter", map[string]string{"RouteTableId": "vtb-alisim0001"}},
		{"DescribeRouteEntryList", "MaxResult", "0", "InvalidParameter", map[string]string{"RouteTableId": "vtb-alisim0001"}},
		{"DescribeRouteEntryList", "NextToken", token("-5"), "InvalidNextToken", map[string]string{"RouteTableId": "vtb-alisim0001"}},
		{"DescribeRouteEntryList", "NextToken", token(huge), "InvalidNextToken", map[string]string{"RouteTableId": "vtb-alisim0001"}},
		{"DescribeNetworkInterfaces", "NextToken", token("-5"), "InvalidNextToken", nil},
		{"DescribeNetworkInterfaces", "MaxResults", huge, "InvalidParameter", nil},
		{"DescribeInstanceTypes", "MaxResults", "501", "InvalidParameter", nil},
		{"DescribeInstances", "NextToken", token("-1"), "InvalidNextToken", nil},
		{"CreateNetworkInterface", "SecondaryPrivateIpAddressCount", huge, "InvalidParameter",
			map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupId": "sg-alisim0001"}},
		{"CreateNetworkInterface", "SecondaryPrivateIpAddressCount", "-1", "InvalidParameter",
			map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupId": "sg-alisim0001"}},
		{"CreateNetworkInterface", "Ipv6AddressCount", huge, "InvalidParameter",
			map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupId": "sg-alisim0001"}},
		{"AssignPrivateIpAddresses", "SecondaryPrivateIpAddressCount", huge, "InvalidParameter", map[string]string{"NetworkInterfaceId": id}},
		{"AssignIpv6Addresses", "Ipv6AddressCount", huge, "InvalidParameter", map[string]string{"NetworkInterfaceId": id}},
		{"AssignPrivateIpAddresses", "PrivateIpAddress.1", "10.9.9.9", "InvalidParameter", map[string]string{"NetworkInterfaceId": id}},
	}
	for _, c := range cases {
		p := map[string]string{c.param: c.value}
		for k, v := range c.extra {
			p[k] = v
		}
		code, body := r.call(c.action, p)
		msg, _ := body["Message"].(string)
		if code != 400 || body["Code"] != c.code || !strings.Contains(msg, strings.Split(c.param, ".")[0]) {
			t.Errorf("%s %s=%s: %d %v; want 400 %s naming %s", c.action, c.param, c.value, code, body, c.code, c.param)
		}
	}
	r.adminGet("/admin/state")
}

// List parameters must be numbered 1..N without gaps, as the SDK numbers them: a batch holding entries 1 and 3
// used to create entry 1 and silently drop 3; it is now refused as a whole, naming the missing entry 2.
func TestListsWithGapsAreRefusedWhole(t *testing.T) {
	r := newRig(t)
	entry := func(i int, dst string) map[string]string {
		k := fmt.Sprintf("RouteEntries.%d.", i)
		return map[string]string{k + "RouteTableId": "vtb-alisim0001", k + "DstCidrBlock": dst, k + "NextHop": "i-alisim0001"}
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	code, body := r.call("CreateRouteEntries", merge(entry(1, "10.244.1.0/24"), entry(3, "10.244.3.0/24")))
	if code != 400 || body["Code"] != "InvalidParameter" || !strings.Contains(body["Message"].(string), "RouteEntries.2") {
		t.Fatalf("entries 1 and 3: %d %v", code, body)
	}
	for _, bad := range []map[string]string{entry(0, "10.244.1.0/24"), {"RouteEntries.01.DstCidrBlock": "10.244.1.0/24"},
		{"RouteEntries.x.DstCidrBlock": "10.244.1.0/24"}} {
		if code, body := r.call("CreateRouteEntries", bad); code != 400 || body["Code"] != "InvalidParameter" {
			t.Errorf("%v: %d %v", bad, code, body)
		}
	}
	if n := len(r.world.CustomEntries("vtb-alisim0001")); n != 0 {
		t.Fatalf("refused batches created %d entries", n)
	}
	for _, c := range []struct{ action, key string }{{"DescribeRouteEntryList", "DestCidrBlockList.2"},
		{"DescribeNetworkInterfaces", "Tag.2.Key"}, {"DescribeNetworkInterfaces", "NetworkInterfaceId.3"},
		{"DescribeInstanceTypes", "InstanceTypes.2"}} {
		code, body := r.call(c.action, map[string]string{"RouteTableId": "vtb-alisim0001", c.key: "x"})
		if code != 400 || !strings.Contains(fmt.Sprint(body["Message"]), ".1 is missing") {
			t.Errorf("%s with only %s: %d %v", c.action, c.key, code, body)
		}
	}
	// Numbered 1..2 the batch goes through whole, whatever order the keys arrive in.
	code, body = r.call("CreateRouteEntries", merge(entry(2, "10.244.2.0/24"), entry(1, "10.244.1.0/24")))
	if code != 200 || body["SuccessCount"] != float64(2) || len(r.world.CustomEntries("vtb-alisim0001")) != 2 {
		t.Fatalf("entries 1 and 2: %d %v", code, body)
	}
}

// NextHopType outside the documented values is refused, on single and batch creates.
func TestBogusNextHopTypeIsRefused(t *testing.T) {
	r := newRig(t)
	code, body := r.call("CreateRouteEntry", map[string]string{"RouteTableId": "vtb-alisim0001", "DestinationCidrBlock": "10.244.1.0/24",
		"NextHopId": "i-alisim0001", "NextHopType": "Bogus"})
	if code != 400 || body["Code"] != "InvalidParameter" || !strings.Contains(body["Message"].(string), "NextHopType") {
		t.Fatalf("CreateRouteEntry NextHopType=Bogus: %d %v", code, body)
	}
	code, body = r.call("CreateRouteEntries", map[string]string{"RouteEntries.1.RouteTableId": "vtb-alisim0001",
		"RouteEntries.1.DstCidrBlock": "10.244.1.0/24", "RouteEntries.1.NextHop": "i-alisim0001", "RouteEntries.1.NextHopType": "Bogus"})
	if code != 400 || !strings.Contains(fmt.Sprint(body["Message"]), "RouteEntries.1.NextHopType") {
		t.Fatalf("CreateRouteEntries NextHopType=Bogus: %d %v", code, body)
	}
	if n := len(r.world.CustomEntries("vtb-alisim0001")); n != 0 {
		t.Fatalf("refused creates made %d entries", n)
	}
	code, body = r.call("CreateRouteEntry", map[string]string{"RouteTableId": "vtb-alisim0001", "DestinationCidrBlock": "10.244.1.0/24",
		"NextHopId": "havip-1", "NextHopType": "HaVip"})
	if code != 200 {
		t.Fatalf("documented NextHopType HaVip: %d %v", code, body)
	}
}
