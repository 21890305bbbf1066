package aliyun

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// Instance is what weft needs of an ECS instance.
type Instance struct {
	ID, Type, Zone, VSwitchID, VPCID string
}

// Instance describes one instance (DescribeInstances). The API, not the metadata server, is the truth about an
// instance's type: the ENI limits follow from it.
func (c *Client) Instance(ctx context.Context, id string) (Instance, error) {
	ids, _ := json.Marshal([]string{id})
	var resp *ecs.DescribeInstancesResponse
	err := c.callECS(ctx, "DescribeInstances", func(cl *ecs.Client) (err error) {
		req := ecs.CreateDescribeInstancesRequest()
		c.prepareECS(req)
		req.InstanceIds = string(ids)
		resp, err = cl.DescribeInstances(req)
		return err
	})
	if err != nil {
		return Instance{}, err
	}
	for _, in := range resp.Instances.Instance {
		if in.InstanceId == id {
			return Instance{ID: in.InstanceId, Type: in.InstanceType, Zone: in.ZoneId, VSwitchID: in.VpcAttributes.VSwitchId,
				VPCID: in.VpcAttributes.VpcId}, nil
		}
	}
	return Instance{}, fmt.Errorf("DescribeInstances: instance %s not found", id)
}
