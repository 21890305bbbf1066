package alivpc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(json.RawMessage(`{"Type":"ali-vpc","AccessKeyID":"LTAI","AccessKeySecret":"s","RouteTableIDs":["vtb-1"],
		"NonMasqueradeCIDRs":["10.0.0.0/8"],"RouteTableQuota":500,"Resync":"30s"}`))
	if err != nil || c.RouteTableIDs[0] != "vtb-1" || c.RouteTableQuota != 500 || c.NonMasqueradeCIDRs[0] != "10.0.0.0/8" {
		t.Fatalf("%+v %v", c, err)
	}
	for conf, want := range map[string]string{
		`{"AccessKeyID":"LTAI"}`:            "AccessKeySecret",
		`{"RouteTableIDs":["rt-1"]}`:        "Backend.RouteTableIDs",
		`{"Resync":"1ms"}`:                  "Backend.Resync",
		`{"QuotaRetry":"soon"}`:             "Backend.QuotaRetry",
		`{"RouteTableQuota":1001}`:          "Backend.RouteTableQuota",
		`{"NonMasqueradeCIDRs":["10.0.0"]}`: "Backend.NonMasqueradeCIDRs",
		`{"RouteTableIDs":"vtb-1"}`:         "Backend (ali-vpc)",
	} {
		_, err := parseConfig(json.RawMessage(conf))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", conf, err, want)
		}
		if err != nil && strings.Contains(err.Error(), `"s"`) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}
