package quota

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/routetable"
)

type fakeAPI map[string][]routetable.Entry // by table

func (f fakeAPI) RouteTables(_ context.Context, vpc string) ([]routetable.Table, error) {
	var out []routetable.Table
	for id := range f {
		out = append(out, routetable.Table{ID: id, VPCID: vpc})
	}
	return out, nil
}

func (f fakeAPI) RouteEntries(_ context.Context, id string) ([]routetable.Entry, error) {
	return f[id], nil
}

type fakeQuota struct {
	q   int
	err error
}

func (f fakeQuota) RouteEntryQuota(context.Context) (int, error) { return f.q, f.err }

func entries(descs ...string) []routetable.Entry {
	out := []routetable.Entry{{Type: routetable.EntrySystem, Description: "weft:c1"}} // never counted
	for _, d := range descs {
		out = append(out, routetable.Entry{Type: routetable.EntryCustom, Description: d})
	}
	return out
}

func TestEvaluate(t *testing.T) {
	ten := entries("weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:other", "weft:other", "vpn", "")
	for _, c := range []struct {
		name       string
		quotas     QuotaReader
		fallback   int
		owner      string
		wantQuota  int
		wantSource string
		wantLevel  Level
		wantErr    bool
	}{
		{"the quotas API's figure wins over the flag", fakeQuota{q: 12}, 200, "weft:c1", 12, SourceAPI, Warning, false},
		{"a raised quota reads as room", fakeQuota{q: 1000}, 11, "weft:c1", 1000, SourceAPI, OK, false},
		{"refused: the flag, with the reason", fakeQuota{err: errors.New("GetProductQuota: Forbidden.RAM (HTTP 403)")}, 10, "weft:c1", 10, "--quota", Critical, true},
		{"no reader: the flag", nil, 50, "", 50, "--quota", OK, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Evaluate(context.Background(), fakeAPI{"vtb-1": ten}, "", []string{"vtb-1"},
				Options{Quotas: c.quotas, Quota: c.fallback, Owner: c.owner})
			if err != nil {
				t.Fatal(err)
			}
			tb := r.Tables[0]
			if tb.Quota != c.wantQuota || tb.QuotaSource != c.wantSource || (tb.QuotaSourceError != "") != c.wantErr || r.Level != c.wantLevel {
				t.Fatalf("table %+v level %s; want quota %d from %s, level %s", tb, r.Level, c.wantQuota, c.wantSource, c.wantLevel)
			}
			wantOwn, wantOther := 6, 2
			if c.owner == "" {
				wantOwn, wantOther = 0, 8
			}
			if tb.Used != 10 || tb.Owned != wantOwn || tb.OtherWeft != wantOther || tb.Foreign != 2 || tb.Free != max(c.wantQuota-10, 0) {
				t.Fatalf("counts %+v", tb)
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			line := "vtb-1: quota " + itoa(c.wantQuota) + " (source: " + c.wantSource
			if !strings.Contains(text.String(), line) || !strings.Contains(text.String(), "OTHER WEFT") {
				t.Fatalf("text lacks %q:\n%s", line, text.String())
			}
			b, _ := json.Marshal(r)
			for _, k := range []string{`"quotaSource":"` + c.wantSource + `"`, `"otherWeftClusters":`, `"weftOwned":`} {
				if !strings.Contains(string(b), k) {
					t.Errorf("JSON lacks %s: %s", k, b)
				}
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestEvaluateRefusesBadInput(t *testing.T) {
	if _, err := Evaluate(context.Background(), fakeAPI{}, "", nil, Options{}); err == nil {
		t.Error("no VPC and no table accepted")
	}
	if _, err := Evaluate(context.Background(), fakeAPI{}, "vpc", nil, Options{Warning: 90, Critical: 80}); err == nil {
		t.Error("warning above critical accepted")
	}
}

// Thresholds outside 0 < warning < critical <= 100 (or not numbers) are refused, naming the flag.
func TestThresholds(t *testing.T) {
	for _, c := range []struct {
		w, c float64
		flag string
	}{
		{-5, 95, "--warning"}, {math.NaN(), 95, "--warning"}, {80, math.NaN(), "--critical"}, {80, math.Inf(1), "--critical"},
		{0, 0.5, "--warning"}, {90, 90, "--warning"}, {96, 95, "--warning"}, {80, 101, "--critical"},
	} {
		_, err := Evaluate(context.Background(), fakeAPI{"vtb-1": entries()}, "vpc-1", nil, Options{Warning: c.w, Critical: c.c})
		if err == nil || !strings.HasPrefix(err.Error(), c.flag) {
			t.Errorf("warning %v critical %v: %v, want an error naming %s", c.w, c.c, err, c.flag)
		}
	}
	if err := CheckThresholds(80, 100); err != nil {
		t.Errorf("80/100: %v", err)
	}
}

// A VPC always has a system route table, so none is a VPC that is not there: an error, never "ok".
func TestUnknownVPC(t *testing.T) {
	_, err := Evaluate(context.Background(), fakeAPI{}, "vpc-nope", nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "vpc-nope") {
		t.Fatalf("no tables: %v, want an error naming the VPC", err)
	}
}
