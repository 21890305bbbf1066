package bandwidth

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestFromAnnotations(t *testing.T) {
	for _, c := range []struct {
		ann  map[string]string
		want *Limits
	}{
		{nil, nil},
		{map[string]string{"other": "1M"}, nil},
		{map[string]string{IngressAnnotation: "40M"}, &Limits{IngressRate: 40e6, IngressBurst: math.MaxUint32}},
		{map[string]string{EgressAnnotation: "1Mi"}, &Limits{EgressRate: 1 << 20, EgressBurst: math.MaxUint32}},
		{map[string]string{IngressAnnotation: "10M", EgressAnnotation: "2G"},
			&Limits{IngressRate: 10e6, IngressBurst: math.MaxUint32, EgressRate: 2e9, EgressBurst: math.MaxUint32}},
		// The range's ends, and Kubernetes' rounding up to a whole bit per second.
		{map[string]string{IngressAnnotation: "1k"}, &Limits{IngressRate: 1000, IngressBurst: math.MaxUint32}},
		{map[string]string{IngressAnnotation: "999.9"}, &Limits{IngressRate: 1000, IngressBurst: math.MaxUint32}},
		{map[string]string{IngressAnnotation: "1P"}, &Limits{IngressRate: 1e15, IngressBurst: math.MaxUint32}},
		{map[string]string{IngressAnnotation: "1000000000000000"}, &Limits{IngressRate: 1e15, IngressBurst: math.MaxUint32}},
	} {
		got, err := FromAnnotations(c.ann)
		if err != nil {
			t.Errorf("%v: %v", c.ann, err)
			continue
		}
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%v: %+v, want %+v", c.ann, got, c.want)
		}
		if got != nil {
			if err := got.Validate(); err != nil {
				t.Errorf("%v: the runtime's own limits %+v do not validate: %v", c.ann, got, err)
			}
		}
	}
}

func TestFromAnnotationsHostile(t *testing.T) {
	for _, c := range []struct {
		key, v, want string
	}{
		{IngressAnnotation, "", "not a quantity"},
		{IngressAnnotation, "fast", "not a quantity"},
		{IngressAnnotation, "10 M", "not a quantity"},
		{IngressAnnotation, "10Mbps", "not a quantity"},
		{IngressAnnotation, "0", "below 1k"},
		{IngressAnnotation, "-40M", "below 1k"},
		{IngressAnnotation, "999", "below 1k"},
		{IngressAnnotation, "0.5k", "below 1k"},
		{IngressAnnotation, "1n", "below 1k"},
		{EgressAnnotation, "1.0000001P", "above 1P"},
		{EgressAnnotation, "1Pi", "above 1P"},
		{EgressAnnotation, "1e30", "above 1P"},                 // Value() would be 0
		{EgressAnnotation, "18446744073749551616", "above 1P"}, // 2^64 + 40M: Value() would wrap to about 40M
		{EgressAnnotation, "99999999999999999999", "above 1P"},
		{EgressAnnotation, strings.Repeat("9", 5000), "bytes long"},
	} {
		ann := map[string]string{c.key: c.v, IngressAnnotation + "x": "ignored"}
		if c.key == EgressAnnotation {
			ann[IngressAnnotation] = "10M" // a good ingress does not rescue a bad egress
		}
		got, err := FromAnnotations(ann)
		if err == nil {
			t.Errorf("%s=%q: %+v, want an error", c.key, c.v, got)
			continue
		}
		if got != nil {
			t.Errorf("%s=%q: limits %+v returned with the error", c.key, c.v, got)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.key) || !strings.Contains(msg, c.want) || !strings.Contains(msg, "1k to 1P") {
			t.Errorf("%s=%q: %q, want the annotation, %q and the range", c.key, c.v, msg, c.want)
		}
		if len(msg) > 300 {
			t.Errorf("%s=%q: error of %d bytes: the value is not clipped", c.key, c.v[:10], len(msg))
		}
	}
}

func TestValidate(t *testing.T) {
	for _, l := range []Limits{
		{},
		{IngressRate: MinRate, IngressBurst: 1},
		{EgressRate: MaxRate, EgressBurst: MaxBurst},
		{IngressRate: 40e6, IngressBurst: RuntimeBurst, EgressRate: 40e6, EgressBurst: RuntimeBurst},
	} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, c := range []struct {
		l    Limits
		want []string
	}{
		{Limits{IngressRate: 40e6}, []string{"ingressRate 40000000 without ingressBurst"}},
		{Limits{EgressBurst: 5}, []string{"egressBurst 5 without egressRate"}},
		{Limits{IngressRate: 999, IngressBurst: 1}, []string{"ingressRate 999", "1000 (1k)"}},
		{Limits{EgressRate: MaxRate + 1, EgressBurst: 1}, []string{"egressRate 1000000000000001"}},
		{Limits{EgressRate: math.MaxUint64, EgressBurst: math.MaxUint64}, []string{"egressRate", "egressBurst", "4 GiB"}},
		{Limits{IngressRate: 1e6, IngressBurst: MaxBurst + 1, EgressRate: 1}, []string{"ingressBurst", "egressRate 1 without egressBurst"}},
	} {
		err := c.l.Validate()
		if err == nil {
			t.Errorf("%+v accepted", c.l)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "runtimeConfig.bandwidth") {
				t.Errorf("%+v: %q, want %q", c.l, err, w)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Limits
	}{
		{``, Limits{}},
		{`null`, Limits{}},
		{`{}`, Limits{}},
		{`{"ingressRate":0,"ingressBurst":0,"egressRate":0,"egressBurst":0}`, Limits{}},
		{`{"ingressRate":40000000,"ingressBurst":4294967295}`, Limits{IngressRate: 40e6, IngressBurst: math.MaxUint32}},
		{` {"egressRate": 1000 , "egressBurst": 8} `, Limits{EgressRate: 1000, EgressBurst: 8}},
	} {
		got, err := Parse([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
	// What the runtime marshals is what the plugin parses.
	l, _ := FromAnnotations(map[string]string{IngressAnnotation: "40M", EgressAnnotation: "20M"})
	b, _ := json.Marshal(l)
	if got, err := Parse(b); err != nil || got != *l {
		t.Errorf("round trip %s: %+v %v", b, got, err)
	}
}

func TestParseHostile(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`[]`, "not a JSON object"},
		{`"40M"`, "not a JSON object"},
		{`{"ingressRate":`, "not a JSON object"},
		{`{"ingressRate":-1,"ingressBurst":1}`, "ingressRate -1: expected a whole number"},
		{`{"ingressRate":1e9,"ingressBurst":1}`, "ingressRate 1e9: expected a whole number"},
		{`{"ingressRate":40000000.5,"ingressBurst":1}`, "ingressRate 40000000.5"},
		{`{"ingressRate":"40M","ingressBurst":1}`, `ingressRate "40M"`},
		{`{"ingressRate":null,"ingressBurst":1}`, "ingressRate null"},
		{`{"egressRate":18446744073709551616,"egressBurst":1}`, "egressRate 18446744073709551616"},
		{`{"ingresRate":40000000,"ingressBurst":1}`, `"ingresRate": unknown field`},
		{`{"ingressRate":40000000}`, "without ingressBurst"},
		{`{"egressRate":1000000000000001,"egressBurst":1}`, "egressRate 1000000000000001"},
		{`{"egressRate":1000000,"egressBurst":34359738360}`, "egressBurst 34359738360"},
		{`{"` + strings.Repeat("k", 10000) + `":1}`, "unknown field"},
	} {
		got, err := Parse([]byte(c.in))
		if err == nil {
			t.Errorf("%.60s: %+v accepted", c.in, got)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "runtimeConfig.bandwidth") {
			t.Errorf("%.60s: %q, want %q", c.in, err, c.want)
		}
		if len(err.Error()) > 400 {
			t.Errorf("%.60s: an error of %d bytes", c.in, len(err.Error()))
		}
	}
}

func TestString(t *testing.T) {
	got := Limits{IngressRate: 40e6, IngressBurst: 8}.String()
	if got != "ingress 40000000 bit/s burst 8 bit, egress none" {
		t.Errorf("%q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"ingressRate":40000000,"ingressBurst":4294967295}`))
	f.Add([]byte(`{"egressRate":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err == nil {
			if verr := l.Validate(); verr != nil {
				t.Fatalf("Parse accepted %q as %+v, which Validate refuses: %v", b, l, verr)
			}
		} else if l != (Limits{}) {
			t.Fatalf("Parse returned %+v with its error", l)
		}
	})
}

func FuzzFromAnnotations(f *testing.F) {
	f.Add("40M")
	f.Add("1e30")
	f.Fuzz(func(t *testing.T, v string) {
		l, err := FromAnnotations(map[string]string{IngressAnnotation: v})
		if err != nil {
			return
		}
		if l == nil || l.IngressRate < MinRate || l.IngressRate > MaxRate || l.Validate() != nil {
			t.Fatalf("%q accepted as %+v", v, l)
		}
	})
}
