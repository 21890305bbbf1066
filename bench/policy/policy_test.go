package main

import (
	"testing"
	"time"

	"github.com/weftnet/weft/internal/policy"
)

// The generated objects are valid policies, the same on every run, and the probe namespace's idle pods are
// selected by none of them (so a label probe's ingress4 element is the flip policy's alone).
func TestObjects(t *testing.T) {
	const namespaces, perNS = 20, 50
	pols := scalePolicies(500, namespaces)
	again := scalePolicies(500, namespaces)
	var compiled []*policy.Policy
	for i, np := range pols {
		if np.Name != again[i].Name || np.Spec.String() != again[i].Spec.String() {
			t.Fatalf("policy %d differs between two generations", i)
		}
		p, err := policy.Compile(np)
		if err != nil {
			t.Fatalf("%s/%s: %v", np.Namespace, np.Name, err)
		}
		compiled = append(compiled, p)
	}
	for k := 0; k < 100; k++ {
		if _, err := policy.Compile(datapathPolicy(k)); err != nil {
			t.Fatal(err)
		}
	}
	idle := 0
	for j := 0; j < perNS; j++ {
		pod := policy.PodOf(scalePod(probeNS, "n", j, perNS))
		if pod.Labels["app"] != "idle" {
			continue
		}
		idle++
		for _, p := range compiled {
			if p.Ingress && p.Selects(pod) {
				t.Errorf("idle pod %s is selected by %s", pod.Ref(), p.Ref())
			}
		}
	}
	if idle != perNS-idleFrom(perNS) || idle == 0 {
		t.Errorf("%d idle pods in %s, expected %d", idle, probeNS, perNS-idleFrom(perNS))
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		if seen[podIP(i)] {
			t.Fatalf("podIP(%d) = %s twice", i, podIP(i))
		}
		seen[podIP(i)] = true
	}
}

func TestMatchers(t *testing.T) {
	for _, c := range []struct {
		match func(string) bool
		line  string
		want  bool
	}{
		{ruleWithPort(30001), "add rule inet weft-policy ing-0123 ip saddr @peer4-ab tcp dport 30001 accept comment \"x\"", true},
		{ruleWithPort(30001), "add rule inet weft-policy ing-0123 ip saddr @peer4-ab tcp dport 300012 accept", false},
		{ruleWithPort(30001), "delete rule inet weft-policy ing-0123 handle 7", false},
		{ingressElement("add", "10.245.1.4"), "add element inet weft-policy ingress4 { 10.245.1.4 : goto ing-1 }", true},
		{ingressElement("add", "10.245.1.4"), "add element inet weft-policy ingress4 { 10.245.1.44 : goto ing-1 }", false},
		{ingressElement("add", "10.245.1.4"), "add element inet weft-policy egress4 { 10.245.1.4 : jump egr-1 }", false},
		{ingressElement("delete", "10.245.1.4"), "delete element inet weft-policy ingress4 { 10.245.1.3 : goto a, 10.245.1.4 : goto b }", true},
		{counterGone("cnt-1"), "delete counter inet weft-policy cnt-1", true},
		{counterGone("cnt-1"), "delete counter inet weft-policy cnt-12", false},
	} {
		if got := c.match(c.line); got != c.want {
			t.Errorf("%q: %v, expected %v", c.line, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	d, err := parseStatCPU("1234 (weft d) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20")
	if err != nil || d != 3*time.Second {
		t.Errorf("parseStatCPU: %v %v, expected 3s", d, err)
	}
	if _, err := parseStatCPU("1234 weftd S"); err == nil {
		t.Error("parseStatCPU took a line without (comm)")
	}
	ts, err := parseTable([]byte(`{"nftables":[{"metainfo":{}},{"table":{}},{"chain":{"name":"forward"}},{"chain":{"name":"ing-1"}},` +
		`{"rule":{}},{"rule":{}},{"set":{"name":"peer4-a","elem":["10.0.0.1","10.0.0.2"]}},{"set":{"name":"peer4-b"}},` +
		`{"map":{"name":"ingress4","elem":[["10.0.0.1",{"goto":{"target":"ing-1"}}]]}},{"counter":{"name":"c"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ts.bytes = 0
	if want := (tableSize{chains: 2, rules: 2, sets: 2, setElems: 2, maps: 1, mapElems: 1, counters: 1}); ts != want {
		t.Errorf("parseTable: %+v, expected %+v", ts, want)
	}
	if p := percentile([]time.Duration{5, 1, 3, 2, 4}, 0.5); p != 3 {
		t.Errorf("p50 %v, expected 3", p)
	}
}

// The renderer's expectation at full scale is not empty and every pod of the probe namespace but the idle ones
// has a chain in some direction (the mix isolates much of the cluster).
func TestExpectedTable(t *testing.T) {
	want, err := expectedTable(options{pods: 1000, namespaces: 20, policies: 500}, "n")
	if err != nil {
		t.Fatal(err)
	}
	if want.chains < 500 || want.sets < 10 || want.mapElems < 500 || want.counters < 500 {
		t.Errorf("expected table %+v: fewer chains, sets, map elements or counters than the mix makes", want)
	}
	t.Logf("%+v", want)
}
