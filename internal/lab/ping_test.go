package lab

import "testing"

func TestParsePingSummary(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      PingStats
		ok        bool
	}{
		{"iputils", "64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.1 ms\n\n--- 10.244.2.2 ping statistics ---\n" +
			"93 packets transmitted, 90 received, 3.22581% packet loss, time 9310ms\nrtt min/avg/max/mdev = 0.05/0.1/0.3/0.02 ms\n",
			PingStats{Sent: 93, Received: 90}, true},
		{"iputils with errors", "--- fd00:244:0:2::2 ping statistics ---\n50 packets transmitted, 41 received, +6 errors, 18% packet loss, time 4900ms\n",
			PingStats{Sent: 50, Received: 41}, true},
		{"busybox", "--- 10.0.0.1 ping statistics ---\n5 packets transmitted, 5 packets received, 0% packet loss\n",
			PingStats{Sent: 5, Received: 5}, true},
		{"no summary (killed)", "64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.1 ms\n", PingStats{}, false},
		{"more received than sent", "3 packets transmitted, 4 received, 0% packet loss\n", PingStats{}, false},
	} {
		got, err := ParsePingSummary(c.out)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v, ok=%v", c.name, got, err, c.want, c.ok)
		}
	}
	if l := (PingStats{Sent: 93, Received: 90}).Lost(); l != 3 {
		t.Errorf("Lost() = %d, want 3", l)
	}
}
