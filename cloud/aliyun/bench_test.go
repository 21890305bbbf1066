package aliyun_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// alisim's own capacity on loopback through the real SDK, so scale benchmarks know the emulator is not their
// bottleneck:   go test -run X -bench Alisim -benchtime 5s ./cloud/aliyun   (make bench-alisim)

// BenchmarkAlisimDescribeRouteEntryList1000 lists a table of 1000 entries (10 pages of 100) per iteration and
// reports requests per second.
func BenchmarkAlisimDescribeRouteEntryList1000(b *testing.B) {
	f := benchFixture(b)
	cl := f.client(nil)
	var list []aliyun.NewRouteEntry
	for i := 0; i < 997; i++ { // + 3 system entries = 1000
		list = append(list, aliyun.NewRouteEntry{TableID: table, Dst: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 100+i/250, i%250)), NextHopID: "i-alisim0001"})
	}
	if _, err := cl.CreateRouteEntries(context.Background(), list); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		es, err := cl.RouteEntries(context.Background(), table)
		if err != nil || len(es) != 1000 {
			b.Fatalf("%d entries, %v", len(es), err)
		}
	}
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkAlisimCreateRouteEntries creates a batch of 50 entries per request (timing off, quota 1000000).
func BenchmarkAlisimCreateRouteEntries(b *testing.B) {
	f := benchFixture(b)
	cl := f.client(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := make([]aliyun.NewRouteEntry, 0, 50)
		for j := 0; j < 50; j++ {
			n := i*50 + j
			batch = append(batch, aliyun.NewRouteEntry{TableID: table, NextHopID: "i-alisim0001",
				Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + n>>24&0x3f), byte(n >> 16), byte(n >> 8), byte(n)}), 32)})
		}
		res, err := cl.CreateRouteEntries(context.Background(), batch)
		if err != nil || res.Succeeded != 50 {
			b.Fatalf("%+v %v", res.Failed, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(b.N*50)/b.Elapsed().Seconds(), "entries/s")
}

type benchFix struct {
	*fixture
	b *testing.B
}

func (f benchFix) client(mod func(*aliyun.Config)) *aliyun.Client {
	c, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: f.http.URL[len("http://"):], Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}, RatePerSecond: 1e6})
	if err != nil {
		f.b.Fatal(err)
	}
	return c
}

func benchFixture(b *testing.B) benchFix {
	st := sim.DefaultState()
	st.RouteTables[0].Quota = 1000000
	w := sim.NewWorld(st, nil, "")
	w.SetTiming(sim.Timing{})
	fx := &fixture{world: w, srv: sim.NewServer(w)}
	fx.http = newHTTPServer(fx.srv)
	b.Cleanup(fx.http.Close)
	return benchFix{fixture: fx, b: b}
}

func newHTTPServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
