package daemon

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parse(t *testing.T, args []string, env map[string]string) (*Options, *flag.FlagSet, error) {
	t.Helper()
	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o Options
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	err := o.ApplyEnv(fs, func(k string) string { return env[k] })
	return &o, fs, err
}

// The defaults are upstream flanneld's (compat.md); a drop-in must not change any of them.
func TestDefaultsMatchUpstream(t *testing.T) {
	o, fs, err := parse(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"etcd-endpoints":               "http://127.0.0.1:4001,http://127.0.0.1:2379",
		"etcd-prefix":                  "/coreos.com/network",
		"etcd-keyfile":                 "",
		"etcd-certfile":                "",
		"etcd-cafile":                  "",
		"etcd-username":                "",
		"etcd-password":                "",
		"iface":                        "",
		"iface-regex":                  "",
		"iface-can-reach":              "",
		"public-ip":                    "",
		"public-ipv6":                  "",
		"subnet-file":                  "/run/flannel/subnet.env",
		"subnet-lease-renew-margin":    "60",
		"net-config-path":              "/etc/kube-flannel/net-conf.json",
		"ip-masq":                      "false",
		"ip-masq-fully-random-disable": "false",
		"iptables-resync":              "5",
		"iptables-forward-rules":       "true",
		"ip-blackhole-route":           "false",
		"kube-subnet-mgr":              "false",
		"kube-api-url":                 "",
		"kubeconfig-file":              "",
		"kube-annotation-prefix":       "flannel.alpha.coreos.com",
		"set-node-network-unavailable": "true",
		"healthz-ip":                   "0.0.0.0",
		"healthz-port":                 "0",
		"version":                      "false",
	}
	// weft's own flags, beside upstream's (upstream flanneld refuses them: the manifests leave them at their
	// defaults, so a node can go back to flanneld with the same command line).
	weftOnly := map[string]string{"network-policy": "true"}
	got := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := weftOnly[f.Name]; ok {
			if f.Value.String() != v {
				t.Errorf("weft's --%s default = %q, want %q", f.Name, f.Value.String(), v)
			}
			return
		}
		got[f.Name] = f.Value.String()
	})
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("flag --%s missing", k)
			continue
		}
		if g != v {
			t.Errorf("--%s default = %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("flag --%s is not an upstream flag", k)
		}
	}
	if err := o.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if o.EventQueueDepth != 5000 {
		t.Errorf("EVENT_QUEUE_DEPTH default = %d, want 5000", o.EventQueueDepth)
	}
}

func TestEnvAndCommandLinePrecedence(t *testing.T) {
	env := map[string]string{
		"FLANNELD_ETCD_PREFIX":      "/from/env",
		"FLANNELD_IP_MASQ":          "true",
		"FLANNELD_IFACE":            "eth9",
		"FLANNELD_SUBNET_FILE":      "/env/subnet.env",
		"FLANNELD_IPTABLES_RESYNC":  "11",
		"FLANNELD_KUBE_SUBNET_MGR":  "true",
		"NODE_NAME":                 "n1",
		"EVENT_QUEUE_DEPTH":         "42",
		"CONT_WHEN_CACHE_NOT_READY": "true",
	}
	o, _, err := parse(t, []string{"--etcd-prefix=/from/flag", "--iface", "eth0", "--iface", "10.0.0.1"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.EtcdPrefix != "/from/flag" {
		t.Errorf("command line must win: EtcdPrefix = %q", o.EtcdPrefix)
	}
	if got := strings.Join(o.Iface, ","); got != "eth0,10.0.0.1" {
		t.Errorf("--iface repeated = %q; env must not add to a flag given on the command line", got)
	}
	if !o.IPMasq || o.SubnetFile != "/env/subnet.env" || o.IPTablesResync != 11 || !o.KubeSubnetMgr {
		t.Errorf("env not applied: %+v", o)
	}
	if o.NodeName != "n1" || o.EventQueueDepth != 42 || !o.ContWhenCacheNR {
		t.Errorf("other env knobs not read: %+v", o)
	}
}

func TestBadEnvNamesTheVariable(t *testing.T) {
	_, _, err := parse(t, nil, map[string]string{"FLANNELD_IPTABLES_RESYNC": "often", "EVENT_QUEUE_DEPTH": "deep"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"FLANNELD_IPTABLES_RESYNC", "EVENT_QUEUE_DEPTH"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

// TestEventQueueDepthAsUpstream: upstream takes zero or less as its default rather than failing, so a manifest
// written for flanneld starts weftd too.
func TestEventQueueDepthAsUpstream(t *testing.T) {
	for _, v := range []string{"0", "-1"} {
		o, _, err := parse(t, nil, map[string]string{"EVENT_QUEUE_DEPTH": v})
		if err != nil {
			t.Errorf("EVENT_QUEUE_DEPTH=%s: %v, want upstream's default", v, err)
		} else if o.EventQueueDepth != 5000 {
			t.Errorf("EVENT_QUEUE_DEPTH=%s gives %d, want upstream's default 5000", v, o.EventQueueDepth)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		args []string
		want string // substring of the error; "" for valid
	}{
		{[]string{"--subnet-lease-renew-margin=0"}, "--subnet-lease-renew-margin"},
		{[]string{"--subnet-lease-renew-margin=1440"}, "--subnet-lease-renew-margin"},
		{[]string{"--subnet-lease-renew-margin=1439"}, ""},
		{[]string{"--iptables-resync=0"}, "--iptables-resync"},
		{[]string{"--healthz-port=70000"}, "--healthz-port"},
		{[]string{"--etcd-endpoints=127.0.0.1:2379"}, "--etcd-endpoints"},
		{[]string{"--etcd-endpoints=http://"}, "--etcd-endpoints"},
		{[]string{"--iface-regex=(["}, "--iface-regex"},
		{[]string{"--iface-regex=eth.*", "--iface-regex=(["}, "--iface-regex"},
		{[]string{"--public-ip=1.2.3"}, "--public-ip"},
		{[]string{"--public-ip=fd00::1"}, "--public-ip"},
		{[]string{"--public-ipv6=10.0.0.1"}, "--public-ipv6"},
		{[]string{"--public-ipv6=::ffff:10.0.0.1"}, "--public-ipv6"},
		{[]string{"--iface-can-reach=example.com"}, "--iface-can-reach"},
		{[]string{"--healthz-ip=localhost"}, "--healthz-ip"},
		{[]string{"--public-ip=10.0.0.1", "--public-ipv6=fd00::1", "--iface-regex=^eth[0-9]$", "--iface-can-reach=8.8.8.8"}, ""},
		{[]string{"--kube-subnet-mgr", "--etcd-endpoints=bogus"}, ""},
	}
	for _, c := range cases {
		o, _, err := parse(t, c.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// In Kubernetes mode the net-conf.json is checked before the API server is contacted: it must read, parse and
// name a backend weftd has. In etcd mode the file is not used.
func TestCheckNetConf(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`)}, ""},
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}`)}, `Backend.Type "udp"`},
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16",`)}, "--net-config-path"},
		{[]string{"--kube-subnet-mgr", "--net-config-path=/dev/zero"}, "--net-config-path"},
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + filepath.Join(t.TempDir(), "none")}, "--net-config-path"},
		{[]string{"--net-config-path=/dev/zero"}, ""},
		// The backend's own fields are checked at start too, naming the field.
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":-1}}`)}, "Backend.VNI"},
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":99999}}`)}, "Backend.Port"},
		{[]string{"--kube-subnet-mgr", "--net-config-path=" + netConf(t, `{"Network":"10.244.0.0/16","Backend":{"Type":"ali-vpc","RouteTableIDs":["rtb-1"]}}`)}, "Backend.RouteTableIDs"},
	} {
		o, _, err := parse(t, c.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = o.CheckNetConf()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// netConf is a net-conf.json with the given content.
func netConf(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRedactedHidesSecrets(t *testing.T) {
	o, fs, err := parse(t, []string{"--etcd-password=hunter2", "--etcd-username=bob",
		"--etcd-endpoints=http://bob:urlsecret@10.0.0.1:2379,https://10.0.0.2:2379"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := o.Redacted(fs)
	if strings.Contains(s, "hunter2") || strings.Contains(s, "urlsecret") {
		t.Fatalf("secret leaked: %s", s)
	}
	if !strings.Contains(s, "--etcd-endpoints=http://<redacted>@10.0.0.1:2379,https://10.0.0.2:2379") {
		t.Errorf("endpoints not shown redacted: %s", s)
	}
	// A malformed endpoint with credentials is named redacted in the validation error too.
	o.EtcdEndpoints = "ftp://bob:urlsecret@h"
	if err := o.Validate(); err == nil || strings.Contains(err.Error(), "urlsecret") {
		t.Errorf("validation error %v", err)
	}
	if !strings.Contains(s, "--etcd-password=<redacted>") || !strings.Contains(s, "--etcd-username=bob") {
		t.Errorf("effective config incomplete: %s", s)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("subnet-lease-renew-margin"); got != "FLANNELD_SUBNET_LEASE_RENEW_MARGIN" {
		t.Errorf("EnvName = %q", got)
	}
}
