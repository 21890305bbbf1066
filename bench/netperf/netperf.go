// Package netperf runs the traffic measures the benchmarks share between two network namespaces: iperf3 TCP
// throughput and sockperf TCP ping-pong (round trips per second), the server pinned to CPU 0 and the client to
// CPU 1, so the two never compete for one core. How the server process is started (and so cleaned up after an
// interrupt) is the caller's: a Starter.
package netperf

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// Starter starts argv as a server inside the namespace ns and returns how to stop it.
type Starter func(ns string, argv ...string) (stop func(), err error)

// Exec is a Starter that runs the server with `ip netns exec` and kills it when stopped.
func Exec(ns string, argv ...string) (func(), error) {
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	if err := c.Start(); err != nil {
		return nil, err
	}
	return func() { _ = c.Process.Kill(); _ = c.Wait() }, nil
}

// Iperf3 measures TCP throughput from clientNS to an iperf3 server on ip in serverNS for secs; Gbit/s received.
func Iperf3(start Starter, serverNS, clientNS, ip string, secs int) (float64, error) {
	stop, err := start(serverNS, "taskset", "-c", "0", "iperf3", "-s", "-1", "-B", ip, "-p", "5299")
	if err != nil {
		return 0, err
	}
	defer stop()
	time.Sleep(300 * time.Millisecond)
	out, err := lab.NSRun(clientNS, "taskset", "-c", "1", "iperf3", "-c", ip, "-p", "5299", "-t", strconv.Itoa(secs), "-J")
	if err != nil {
		return 0, err
	}
	return ParseIperf3(out)
}

// ParseIperf3 reads the received throughput (Gbit/s) from iperf3's JSON report.
func ParseIperf3(out string) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// Sockperf runs a TCP ping-pong from clientNS to a sockperf server on ip in serverNS for secs; round trips per
// second.
func Sockperf(start Starter, serverNS, clientNS, ip string, secs int) (float64, error) {
	stop, err := start(serverNS, "taskset", "-c", "0", "sockperf", "server", "--tcp", "-i", ip, "-p", "5298")
	if err != nil {
		return 0, err
	}
	defer stop()
	time.Sleep(300 * time.Millisecond)
	out, err := lab.NSRun(clientNS, "taskset", "-c", "1", "sockperf", "ping-pong", "--tcp", "-i", ip, "-p", "5298", "-t", strconv.Itoa(secs))
	if err != nil {
		return 0, err
	}
	return ParseSockperf(out)
}

var validRE = regexp.MustCompile(`\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)`)

// ParseSockperf reads round trips per second from sockperf ping-pong's summary.
func ParseSockperf(out string) (float64, error) {
	m := validRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("sockperf output not understood: %s", out)
	}
	rt, err := strconv.ParseFloat(m[1], 64)
	if err != nil || rt <= 0 {
		return 0, fmt.Errorf("sockperf run time %q: expected a positive number of seconds", m[1])
	}
	n, _ := strconv.ParseFloat(m[2], 64)
	return n / rt, nil
}
