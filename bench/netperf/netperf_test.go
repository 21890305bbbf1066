package netperf

import (
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	g, err := ParseIperf3(`{"end":{"sum_received":{"bits_per_second":9876543210.0}}}`)
	if err != nil || math.Abs(g-9.87654321) > 1e-9 {
		t.Errorf("iperf3: %v %v", g, err)
	}
	if _, err := ParseIperf3("iperf3: error - unable to connect"); err == nil {
		t.Error("iperf3 garbage accepted")
	}
	rr, err := ParseSockperf("sockperf: [Valid Duration] RunTime=4.950 sec; SentMessages=49500; ReceivedMessages=49500\n")
	if err != nil || math.Abs(rr-10000) > 1e-6 {
		t.Errorf("sockperf: %v %v", rr, err)
	}
	for _, bad := range []string{"", "[Valid Duration] RunTime=0 sec; SentMessages=1; ReceivedMessages=1"} {
		if _, err := ParseSockperf(bad); err == nil {
			t.Errorf("sockperf %q accepted", bad)
		}
	}
}
