package sim

import (
	"net/url"
	"sort"
	"testing"
)

// allActions lists every served action, sorted, so a fuzz input can pick one by number.
func allActions() []string {
	var out []string
	for _, m := range []map[string]handler{vpcActions, ecsActions, quotasActions} {
		for a := range m {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func handlerOf(action string) handler {
	for _, m := range []map[string]handler{vpcActions, ecsActions, quotasActions} {
		if h := m[action]; h != nil {
			return h
		}
	}
	return nil
}

// FuzzParams feeds arbitrary parameters to every action's handler, the way they arrive after signature checks:
// no input may panic (the server would answer 500, but a panic is a parsing bug), a refusal must carry a status
// and a code, and the world must still be a valid state afterwards. The seed corpus runs with go test.
func FuzzParams(f *testing.F) {
	actions := allActions()
	seeds := []struct{ action, query string }{
		{"DescribeVpcs", "PageNumber=9223372036854775807"},
		{"DescribeVpcs", "PageNumber=2&PageSize=1"},
		{"DescribeVSwitches", "PageSize=-3"},
		{"DescribeRouteEntryList", "RouteTableId=vtb-alisim0001&MaxResult=500&NextToken=LTU"},
		{"DescribeRouteEntryList", "RouteTableId=vtb-alisim0001&DestCidrBlockList.2=10.0.0.0/8"},
		{"CreateRouteEntry", "RouteTableId=vtb-alisim0001&DestinationCidrBlock=10.244.1.0/24&NextHopId=i-alisim0001&ClientToken=t"},
		{"CreateRouteEntry", "RouteTableId=vtb-alisim0001&DestinationCidrBlock=::/0&NextHopType=Bogus"},
		{"CreateRouteEntries", "RouteEntries.1.RouteTableId=vtb-alisim0001&RouteEntries.1.DstCidrBlock=10.244.1.0/24&RouteEntries.1.NextHop=i-alisim0001&RouteEntries.3.DstCidrBlock=10.244.3.0/24"},
		{"CreateRouteEntries", "RouteEntries.99999999999999999999.DstCidrBlock=x"},
		{"DeleteRouteEntries", "RouteEntries.1.RouteTableId=vtb-alisim0001&RouteEntries.1.RouteEntryId=rte-sys-vsw1"},
		{"DeleteRouteEntry", "RouteEntryId=rte-sys-cloud"},
		{"CreateNetworkInterface", "VSwitchId=vsw-alisim0001&SecurityGroupId=sg&SecondaryPrivateIpAddressCount=9223372036854775807"},
		{"CreateNetworkInterface", "VSwitchId=vsw-alisim0001&SecurityGroupIds.1=sg&Ipv6AddressCount=3&Tag.1.Key=a&Tag.1.Value=b"},
		{"AssignPrivateIpAddresses", "NetworkInterfaceId=eni-x&PrivateIpAddress.1=192.168.0.300"},
		{"AssignIpv6Addresses", "NetworkInterfaceId=eni-x&Ipv6AddressCount=-1"},
		{"DescribeInstances", `InstanceIds=["i-alisim0001"]&NextToken=LTE`},
		{"DescribeInstanceTypes", "InstanceTypes.1=ecs.c7.4xlarge&MaxResults=0"},
		{"DescribeNetworkInterfaces", "Tag.2.Key=x&NetworkInterfaceId.1=eni-1"},
		{"GetProductQuota", "ProductCode=vpc&QuotaActionCode=vpc_quota_route_entrys_num&Dimensions.1.Key=regionId&Dimensions.1.Value=cn-hangzhou"},
		{"ListProductQuotas", "ProductCode=vpc&Dimensions.2.Key=regionId"},
		{"AttachNetworkInterface", "NetworkInterfaceId=&InstanceId=i-alisim0001"},
	}
	index := map[string]int{}
	for i, a := range actions {
		index[a] = i
	}
	for _, s := range seeds {
		f.Add(uint8(index[s.action]), s.query)
	}
	f.Fuzz(func(t *testing.T, n uint8, query string) {
		action := actions[int(n)%len(actions)]
		values, _ := url.ParseQuery(query) // what parses, as net/http would keep it
		p := params{}
		for k, v := range values {
			if len(v) > 0 {
				p[k] = v[0]
			}
		}
		st := DefaultState()
		st.Timing = Timing{}
		w := NewWorld(st, fixedClock{}, "")
		// An ENI to act on, so the ENI actions get past the lookup.
		if _, e := w.createNetworkInterface(params{"VSwitchId": "vsw-alisim0001", "SecurityGroupId": "sg-alisim0001", "ClientToken": "seed"}); e != nil {
			t.Fatal(e)
		}
		if id := p.get("NetworkInterfaceId"); id == "eni-x" {
			p["NetworkInterfaceId"] = w.st.ENIs[0].ID
		}
		_, _, e := NewServer(w).apply(action, handlerOf(action), p, AccessKey{ID: "fuzz"}, "fuzz")
		if e != nil && (e.Status < 400 || e.Status > 599 || e.Code == "") {
			t.Fatalf("%s %q: refusal without a status or code: %+v", action, query, e)
		}
		if err := w.st.Validate(); err != nil {
			t.Fatalf("%s %q left an invalid world: %v", action, query, err)
		}
	})
}
