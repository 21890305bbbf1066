package etcd

import (
	"encoding/json"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// FuzzParseKV: any key and value under <prefix>/subnets/ (another writer's, a corrupted one) is skipped or
// read into a lease named by its key; a readable value writes back in upstream's form. It never panics.
func FuzzParseKV(f *testing.F) {
	for _, c := range []struct{ name, value string }{
		{"10.5.69.0-24", `{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}}`},
		{"10.5.69.0-24&fd00:5:0:45::-64", `{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"host-gw"}`},
		{"0.0.0.0-0&fd00::-64", `{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::1"}`},
		{"10.5.69.0-24", `{"PublicIP":"10.0.0.1.1"}`},
		{"10.5.69.0-24", `not json`},
		{"10.5.69.1-24", `{}`},
		{"lock", `x`},
		{"10.5.69.0-24", ""},
	} {
		f.Add(c.name, []byte(c.value), false)
	}
	f.Add("10.5.69.0-24", []byte(nil), true)
	m := &Manager{prefix: "/coreos.com/network"}
	f.Fuzz(func(t *testing.T, name string, value []byte, deleted bool) {
		kv := &mvccpb.KeyValue{Key: []byte(m.subnetsDir() + name), Value: value, ModRevision: 7, CreateRevision: 3, Lease: 42}
		if deleted {
			kv.Value = nil
		}
		e, ok := m.parseKV(kv)
		if !ok {
			return
		}
		if e.lease.Key() != name || e.key != string(kv.Key) {
			t.Fatalf("%q read as lease %s under %s", name, e.lease.Key(), e.key)
		}
		if !e.lease.EnableIPv4 && !e.lease.EnableIPv6 {
			t.Fatalf("%q: a lease of no family", name)
		}
		if e.invalid || kv.Value == nil {
			return
		}
		if _, err := json.Marshal(e.lease.Attrs); err != nil {
			t.Fatalf("%q=%q read but does not write back: %v", name, value, err)
		}
	})
}
