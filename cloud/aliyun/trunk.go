package aliyun

import (
	"context"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// Trunk and member ENIs: a trunk ENI (NewENI.Trunk, CreateNetworkInterface InstanceType=Trunk) is attached to its
// instance as any ENI (AttachENI); a member ENI is an ordinary Secondary ENI attached to the trunk with
// AttachMemberENI, after which DescribeNetworkInterfaces reports it with Type Member, its trunk's id and its VLAN
// id (Attachment.TrunkNetworkInterfaceId and Attachment.DeviceIndex, as Terway reads them).

// AttachMemberENI attaches the ENI as a member of the trunk ENI trunkID, which must be InUse on instanceID
// (asynchronous: poll ENIs until InUse; the VLAN id is then in ENI.VLAN).
func (c *Client) AttachMemberENI(ctx context.Context, instanceID, trunkID, eniID string) error {
	return c.callECS(ctx, "AttachNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateAttachNetworkInterfaceRequest()
		c.prepareECS(req)
		req.InstanceId, req.NetworkInterfaceId, req.TrunkNetworkInstanceId = instanceID, eniID, trunkID
		_, err := cl.AttachNetworkInterface(req)
		return err
	})
}

// DetachMemberENI detaches a member ENI from its trunk; an ENI that no longer exists counts as detached.
func (c *Client) DetachMemberENI(ctx context.Context, instanceID, trunkID, eniID string) error {
	err := c.callECS(ctx, "DetachNetworkInterface", func(cl *ecs.Client) error {
		req := ecs.CreateDetachNetworkInterfaceRequest()
		c.prepareECS(req)
		req.InstanceId, req.NetworkInterfaceId, req.TrunkNetworkInstanceId = instanceID, eniID, trunkID
		_, err := cl.DetachNetworkInterface(req)
		return err
	})
	if Code(err) == "InvalidEniId.NotFound" {
		return nil
	}
	return err
}

// trunkFields fills a member's trunk id and VLAN id from its Attachment.
func trunkFields(e *ENI, att ecs.Attachment) {
	if e.Type == "Member" {
		e.TrunkID, e.VLAN = att.TrunkNetworkInterfaceId, att.DeviceIndex
	}
}
