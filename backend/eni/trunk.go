package eni

import (
	"encoding/json"
	"fmt"

	"github.com/weftnet/weft/cloud/instancetype"
)

// Trunk member ENIs (Terway's enable_eni_trunking): exclusive pods beyond EniQuantity - 1 on member ENIs of one
// trunk ENI, EniTotalQuantity - EniQuantity of them where the instance type supports trunking. The cloud
// client (cloud/aliyun trunk.go) and alisim (cloud/aliyun/sim trunk.go, fabric_trunk.go) model trunk and member
// ENIs; the backend does not place pods on members yet, so the key is read and checked against the node's
// instance type, and true is refused on every node: on a type without trunking naming the type, otherwise saying
// that it is not built yet. false (the default) is Terway's default too.

// parseTrunkingKey reads enable_eni_trunking: a JSON boolean.
func parseTrunkingKey(c *Config, raw json.RawMessage) error {
	if string(raw) != "true" && string(raw) != "false" {
		return cfgKeyErr("enable_eni_trunking", raw, "true or false")
	}
	c.EnableENITrunking = string(raw) == "true"
	return nil
}

// TrunkCheck refuses enable_eni_trunking on a node of instance type t, naming the type and, where it supports
// trunking, its member ENI figure (what `weft plan` reports as trunk pods).
func TrunkCheck(enabled bool, t instancetype.Type) error {
	switch {
	case !enabled:
		return nil
	case !t.TrunkSupported:
		return fmt.Errorf("Backend.enable_eni_trunking: true, but instance type %s does not support ENI trunking "+
			"(DescribeInstanceTypes: EniTrunkSupported false, so no member ENIs): set it false for nodes of this type", t.ID)
	default:
		return fmt.Errorf("Backend.enable_eni_trunking: true: instance type %s supports %d trunk member ENIs, but weft's "+
			"eni backend does not place pods on them yet: set it false", t.ID, t.TrunkPods())
	}
}
