package aliyun_test

import (
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"

	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// The actions weft's client does not wrap yet, exercised with the SDK's own request types, so every served
// action is proven against the real SDK's encoding and decoding.
func TestRemainingActionsThroughTheSDK(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	host := strings.TrimPrefix(f.http.URL, "http://")
	cred := credentials.NewAccessKeyCredential(sim.DefaultAccessKeyID, sim.DefaultAccessKeySecret)
	cfg := sdk.NewConfig().WithScheme("HTTP")
	vc, err := vpc.NewClientWithOptions("cn-hangzhou", cfg, cred)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecs.NewClientWithOptions("cn-hangzhou", cfg, cred)
	if err != nil {
		t.Fatal(err)
	}
	point := func(r requests.AcsRequest) { r.SetDomain(host); r.SetScheme("HTTP") }

	dv := vpc.CreateDescribeVpcsRequest()
	point(dv)
	vpcs, err := vc.DescribeVpcs(dv)
	if err != nil || vpcs.TotalCount != 1 || vpcs.Vpcs.Vpc[0].CidrBlock != "192.168.0.0/16" || vpcs.Vpcs.Vpc[0].VRouterId != "vrt-alisim0001" {
		t.Fatalf("DescribeVpcs: %+v %v", vpcs, err)
	}
	dt := vpc.CreateDescribeRouteTablesRequest()
	point(dt)
	dt.VRouterId = "vrt-alisim0001"
	tables, err := vc.DescribeRouteTables(dt)
	if err != nil || len(tables.RouteTables.RouteTable) != 1 || len(tables.RouteTables.RouteTable[0].RouteEntrys.RouteEntry) != 3 {
		t.Fatalf("DescribeRouteTables: %+v %v", tables, err)
	}
	di := ecs.CreateDescribeInstancesRequest()
	point(di)
	di.InstanceIds = `["i-alisim0002","i-alisim0003"]`
	ins, err := ec.DescribeInstances(di)
	if err != nil || len(ins.Instances.Instance) != 2 || ins.Instances.Instance[0].InstanceType != "ecs.c6.4xlarge" ||
		ins.Instances.Instance[0].VpcAttributes.VpcId != "vpc-alisim0001" {
		t.Fatalf("DescribeInstances: %+v %v", ins, err)
	}
	// IPv6 on a vSwitch without IPv6 is refused; with it, assign and unassign round-trip.
	cn := ecs.CreateCreateNetworkInterfaceRequest()
	point(cn)
	cn.VSwitchId, cn.SecurityGroupId = "vsw-alisim0001", "sg-alisim0001"
	eni, err := ec.CreateNetworkInterface(cn)
	if err != nil {
		t.Fatal(err)
	}
	a6 := ecs.CreateAssignIpv6AddressesRequest()
	point(a6)
	a6.NetworkInterfaceId, a6.Ipv6AddressCount = eni.NetworkInterfaceId, requests.NewInteger(1)
	if _, err := ec.AssignIpv6Addresses(a6); err == nil || !strings.Contains(err.Error(), "Ipv6NotEnabled") {
		t.Fatalf("IPv6 on an IPv4-only vSwitch: %v", err)
	}
	f.world.EnableIPv6("vsw-alisim0001", "2408:4005:300:a100::/64")
	a6 = ecs.CreateAssignIpv6AddressesRequest()
	point(a6)
	a6.NetworkInterfaceId, a6.Ipv6AddressCount = eni.NetworkInterfaceId, requests.NewInteger(2)
	got, err := ec.AssignIpv6Addresses(a6)
	if err != nil || len(got.Ipv6Sets.Ipv6Address) != 2 {
		t.Fatalf("AssignIpv6Addresses: %+v %v", got, err)
	}
	u6 := ecs.CreateUnassignIpv6AddressesRequest()
	point(u6)
	list := got.Ipv6Sets.Ipv6Address[:1]
	u6.NetworkInterfaceId, u6.Ipv6Address = eni.NetworkInterfaceId, &list
	if _, err := ec.UnassignIpv6Addresses(u6); err != nil {
		t.Fatalf("UnassignIpv6Addresses: %v", err)
	}
	u6 = ecs.CreateUnassignIpv6AddressesRequest()
	point(u6)
	u6.NetworkInterfaceId, u6.Ipv6Address = eni.NetworkInterfaceId, &list
	if _, err := ec.UnassignIpv6Addresses(u6); err == nil || !strings.Contains(err.Error(), "InvalidIp.IpUnassigned") {
		t.Fatalf("second unassign: %v", err)
	}
	bad := ecs.CreateDescribeInstancesRequest()
	point(bad)
	bad.InstanceIds = "i-notjson"
	if _, err := ec.DescribeInstances(bad); err == nil || !strings.Contains(err.Error(), "InvalidInstanceIds.Malformed") {
		t.Fatalf("malformed InstanceIds: %v", err)
	}
}
