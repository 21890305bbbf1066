package aliyun

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// ENI is an elastic network interface.
type ENI struct {
	ID         string
	Status     string // Available, Attaching, InUse, Detaching, Deleting
	Type       string
	MAC        string
	PrimaryIP  netip.Addr
	Secondary  []netip.Addr
	IPv6       []netip.Addr
	InstanceID string
	VSwitchID  string
	Tags       map[string]string
	// SecurityGroupIDs are the groups the ENI is in.
	SecurityGroupIDs []string
	// DeviceIndex is the ENI's slot on its instance (Attachment.DeviceIndex; 0 when not attached).
	DeviceIndex int
	// CreationTime is when the ENI was made (zero in CreateENI's answer, which does not carry it).
	CreationTime time.Time
	// TrunkID and VLAN are a member ENI's trunk ENI and VLAN id (Type Member; trunk.go).
	TrunkID string
	VLAN    int
}

// NewENI describes an ENI to create.
type NewENI struct {
	VSwitchID        string
	SecurityGroupIDs []string
	SecondaryIPs     int
	IPv6             int
	Tags             map[string]string
	Description      string
	// ClientToken makes the create idempotent: the service answers a second create with the same token with
	// the ENI the first one made. Empty: a fresh token per call (its retries reuse it). A caller that persists
	// its token before calling can repeat the create after a restart without making a second ENI. At most 64
	// ASCII characters.
	ClientToken string
	// Trunk makes a trunk ENI (InstanceType=Trunk; trunk.go) instead of a Secondary one.
	Trunk bool
}

// CreateENI creates an ENI; retries reuse one ClientToken (n.ClientToken when set).
func (c *Client) CreateENI(ctx context.Context, n NewENI) (ENI, error) {
	token := n.ClientToken
	if token == "" {
		token = newToken()
	}
	if len(token) > 64 || strings.ContainsFunc(token, func(r rune) bool { return r > unicode.MaxASCII || r < ' ' }) {
		return ENI{}, fmt.Errorf("CreateNetworkInterface: ClientToken %q: expected at most 64 printable ASCII characters", excerpt(token, 80))
	}
	var out ENI
	err := c.callECS(ctx, "CreateNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateCreateNetworkInterfaceRequest()
		c.prepareECS(req)
		req.VSwitchId, req.ClientToken, req.Description = n.VSwitchID, token, n.Description
		sgs := append([]string(nil), n.SecurityGroupIDs...)
		req.SecurityGroupIds = &sgs
		if n.Trunk {
			req.InstanceType = "Trunk"
		}
		if n.SecondaryIPs > 0 {
			req.SecondaryPrivateIpAddressCount = requests.NewInteger(n.SecondaryIPs)
		}
		if n.IPv6 > 0 {
			req.Ipv6AddressCount = requests.NewInteger(n.IPv6)
		}
		var tags []ecs.CreateNetworkInterfaceTag
		for k, v := range n.Tags {
			tags = append(tags, ecs.CreateNetworkInterfaceTag{Key: k, Value: v})
		}
		if len(tags) > 0 {
			req.Tag = &tags
		}
		resp, err := cl.CreateNetworkInterface(req)
		if err != nil {
			return err
		}
		out = ENI{ID: resp.NetworkInterfaceId, Status: resp.Status, Type: resp.Type, MAC: resp.MacAddress, VSwitchID: resp.VSwitchId, Tags: n.Tags,
			SecurityGroupIDs: append([]string(nil), resp.SecurityGroupIds.SecurityGroupId...)}
		if out.VSwitchID == "" {
			out.VSwitchID = n.VSwitchID
		}
		out.PrimaryIP, _ = netip.ParseAddr(resp.PrivateIpAddress)
		for _, s := range resp.PrivateIpSets.PrivateIpSet {
			if a, err := netip.ParseAddr(s.PrivateIpAddress); err == nil && !s.Primary {
				out.Secondary = append(out.Secondary, a)
			}
		}
		for _, s := range resp.Ipv6Sets.Ipv6Set {
			if a, err := netip.ParseAddr(s.Ipv6Address); err == nil {
				out.IPv6 = append(out.IPv6, a)
			}
		}
		return nil
	})
	return out, err
}

// AttachENI attaches an ENI to an instance (asynchronous: poll ENIs until InUse).
func (c *Client) AttachENI(ctx context.Context, instanceID, eniID string) error {
	return c.callECS(ctx, "AttachNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateAttachNetworkInterfaceRequest()
		c.prepareECS(req)
		req.InstanceId, req.NetworkInterfaceId = instanceID, eniID
		_, err := cl.AttachNetworkInterface(req)
		return err
	})
}

// DetachENI detaches an ENI; an ENI that no longer exists counts as detached.
func (c *Client) DetachENI(ctx context.Context, instanceID, eniID string) error {
	err := c.callECS(ctx, "DetachNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateDetachNetworkInterfaceRequest()
		c.prepareECS(req)
		req.InstanceId, req.NetworkInterfaceId = instanceID, eniID
		_, err := cl.DetachNetworkInterface(req)
		return err
	})
	if Code(err) == "InvalidEniId.NotFound" {
		return nil
	}
	return err
}

// DeleteENI deletes an ENI; an ENI that no longer exists counts as deleted.
func (c *Client) DeleteENI(ctx context.Context, eniID string) error {
	err := c.callECS(ctx, "DeleteNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateDeleteNetworkInterfaceRequest()
		c.prepareECS(req)
		req.NetworkInterfaceId = eniID
		_, err := cl.DeleteNetworkInterface(req)
		return err
	})
	if Code(err) == "InvalidEniId.NotFound" {
		return nil
	}
	return err
}

// ENIFilter selects ENIs; the fields set are combined with AND (Tags: every pair must match).
type ENIFilter struct {
	IDs        []string
	InstanceID string
	Tags       map[string]string
	Status     string // Available, Attaching, InUse, Detaching, Deleting
	Type       string // Primary, Secondary, Trunk, Member
	VSwitchID  string
	// MaxResults is the page size (0: DefaultENIPageSize; the service takes 1..500). ENIs reads every page.
	MaxResults int
}

// DefaultENIPageSize is the page size of ENIs: 500, as Terway asks.
const DefaultENIPageSize = 500

// ENIs lists ENIs matching f (all pages).
func (c *Client) ENIs(ctx context.Context, f ENIFilter) ([]ENI, error) {
	var out []ENI
	token := ""
	for {
		var resp *ecs.DescribeNetworkInterfacesResponse
		err := c.callECS(ctx, "DescribeNetworkInterfaces", func(cl *ecs.Client) (err error) {
			req := ecs.CreateDescribeNetworkInterfacesRequest()
			c.prepareECS(req)
			if len(f.IDs) > 0 {
				ids := append([]string(nil), f.IDs...)
				req.NetworkInterfaceId = &ids
			}
			size := f.MaxResults
			if size == 0 {
				size = DefaultENIPageSize
			}
			req.InstanceId, req.MaxResults, req.NextToken = f.InstanceID, requests.NewInteger(size), token
			req.Status, req.Type, req.VSwitchId = f.Status, f.Type, f.VSwitchID
			var tags []ecs.DescribeNetworkInterfacesTag
			for k, v := range f.Tags {
				tags = append(tags, ecs.DescribeNetworkInterfacesTag{Key: k, Value: v})
			}
			if len(tags) > 0 {
				req.Tag = &tags
			}
			resp, err = cl.DescribeNetworkInterfaces(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range resp.NetworkInterfaceSets.NetworkInterfaceSet {
			e := ENI{ID: s.NetworkInterfaceId, Status: s.Status, Type: s.Type, MAC: s.MacAddress, InstanceID: s.InstanceId,
				VSwitchID: s.VSwitchId, Tags: map[string]string{}, DeviceIndex: s.Attachment.DeviceIndex,
				SecurityGroupIDs: append([]string(nil), s.SecurityGroupIds.SecurityGroupId...)}
			if e.InstanceID == "" {
				e.InstanceID = s.Attachment.InstanceId
			}
			trunkFields(&e, s.Attachment)
			e.CreationTime, _ = time.Parse("2006-01-02T15:04:05Z", s.CreationTime)
			e.PrimaryIP, _ = netip.ParseAddr(s.PrivateIpAddress)
			for _, ip := range s.PrivateIpSets.PrivateIpSet {
				if a, err := netip.ParseAddr(ip.PrivateIpAddress); err == nil && !ip.Primary {
					e.Secondary = append(e.Secondary, a)
				}
			}
			for _, ip := range s.Ipv6Sets.Ipv6Set {
				if a, err := netip.ParseAddr(ip.Ipv6Address); err == nil {
					e.IPv6 = append(e.IPv6, a)
				}
			}
			for _, t := range s.Tags.Tag {
				e.Tags[t.TagKey] = t.TagValue
			}
			out = append(out, e)
		}
		if resp.NextToken == "" {
			return out, nil
		}
		token = resp.NextToken
	}
}

// AssignIPs assigns n secondary IPv4 addresses (at most 10 per call, as the service allows) and returns them.
func (c *Client) AssignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error) {
	token := newToken()
	var out []netip.Addr
	err := c.callECS(ctx, "AssignPrivateIpAddresses", func(cl *ecs.Client) error {
		req := ecs.CreateAssignPrivateIpAddressesRequest()
		c.prepareECS(req)
		req.NetworkInterfaceId, req.SecondaryPrivateIpAddressCount, req.ClientToken = eniID, requests.NewInteger(n), token
		resp, err := cl.AssignPrivateIpAddresses(req)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, s := range resp.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

// AssignSpecificIPs assigns the given secondary IPv4 addresses (at most 10 per call), e.g. to move an address
// to another ENI of the same instance; an address in use elsewhere is refused (InvalidIp.IpAssigned).
func (c *Client) AssignSpecificIPs(ctx context.Context, eniID string, ips []netip.Addr) error {
	token := newToken()
	return c.callECS(ctx, "AssignPrivateIpAddresses", func(cl *ecs.Client) error {
		req := ecs.CreateAssignPrivateIpAddressesRequest()
		c.prepareECS(req)
		list := make([]string, 0, len(ips))
		for _, a := range ips {
			list = append(list, a.String())
		}
		req.NetworkInterfaceId, req.PrivateIpAddress, req.ClientToken = eniID, &list, token
		_, err := cl.AssignPrivateIpAddresses(req)
		return err
	})
}

// UnassignIPs releases secondary IPv4 addresses; addresses (or an ENI) already gone count as released.
func (c *Client) UnassignIPs(ctx context.Context, eniID string, ips []netip.Addr) error {
	err := c.callECS(ctx, "UnassignPrivateIpAddresses", func(cl *ecs.Client) error {
		req := ecs.CreateUnassignPrivateIpAddressesRequest()
		c.prepareECS(req)
		list := make([]string, 0, len(ips))
		for _, a := range ips {
			list = append(list, a.String())
		}
		req.NetworkInterfaceId, req.PrivateIpAddress = eniID, &list
		_, err := cl.UnassignPrivateIpAddresses(req)
		return err
	})
	if c := Code(err); c == "InvalidIp.IpUnassigned" || c == "InvalidEniId.NotFound" {
		return nil
	}
	return err
}

// AssignIPv6 assigns n IPv6 addresses.
func (c *Client) AssignIPv6(ctx context.Context, eniID string, n int) ([]netip.Addr, error) {
	token := newToken()
	var out []netip.Addr
	err := c.callECS(ctx, "AssignIpv6Addresses", func(cl *ecs.Client) error {
		req := ecs.CreateAssignIpv6AddressesRequest()
		c.prepareECS(req)
		req.NetworkInterfaceId, req.Ipv6AddressCount, req.ClientToken = eniID, requests.NewInteger(n), token
		resp, err := cl.AssignIpv6Addresses(req)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, s := range resp.Ipv6Sets.Ipv6Address {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}
