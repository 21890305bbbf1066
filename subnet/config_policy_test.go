package subnet

import (
	"strings"
	"testing"
)

func TestParseConfigNetworkPolicy(t *testing.T) {
	for _, c := range []struct {
		json string
		want bool
	}{{`{"Network":"10.244.0.0/16"}`, true}, {`{"Network":"10.244.0.0/16","EnableNetworkPolicy":true}`, true},
		{`{"Network":"10.244.0.0/16","EnableNetworkPolicy":false}`, false}, {`{"Network":"10.244.0.0/16","enablenetworkpolicy":false}`, false}} {
		cfg, err := ParseConfig([]byte(c.json))
		if err != nil || cfg.NetworkPolicy != c.want {
			t.Errorf("%s: NetworkPolicy %v (%v), want %v", c.json, cfg != nil && cfg.NetworkPolicy, err, c.want)
			continue
		}
		b, _ := cfg.MarshalJSON()
		again, err := ParseConfig(b)
		if err != nil || again.NetworkPolicy != c.want {
			t.Errorf("%s: round trip %s: %v %v", c.json, b, again, err)
		}
	}
	_, err := ParseConfig([]byte(`{"Network":"10.244.0.0/16","EnableNetworkPolicy":"no"}`))
	if err == nil || !strings.Contains(err.Error(), "EnableNetworkPolicy: expected a JSON bool") {
		t.Errorf("a string: %v", err)
	}
}
