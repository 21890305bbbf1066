package daemon

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/flagutil"
	"github.com/weftnet/weft/internal/readfile"
	"github.com/weftnet/weft/internal/redact"
	"github.com/weftnet/weft/subnet"
)

// Options are weftd's settings. Every field is a flanneld flag of the same name and default (but NetworkPolicy,
// weft's own), and each flag can also be set by the environment variable FLANNELD_<FLAG> (upper case, dashes as
// underscores); the command line wins over the environment, as upstream.
type Options struct {
	EtcdEndpoints   string
	EtcdPrefix      string
	EtcdKeyfile     string
	EtcdCertfile    string
	EtcdCAFile      string
	EtcdUsername    string
	EtcdPassword    string
	Iface           []string
	IfaceRegex      []string
	IfaceCanReach   string
	PublicIP        string
	PublicIPv6      string
	SubnetFile      string
	RenewMargin     int // minutes
	NetConfigPath   string
	IPMasq          bool
	IPMasqRandomOff bool
	IPTablesResync  int // seconds
	IPTablesForward bool
	BlackholeRoute  bool
	KubeSubnetMgr   bool
	KubeAPIURL      string
	KubeConfigFile  string
	KubeAnnotPrefix string
	SetNodeNetUnav  bool
	HealthzIP       string
	HealthzPort     int
	Version         bool
	NetworkPolicy   bool // weft's --network-policy (FLANNELD_NETWORK_POLICY, which upstream ignores)

	// Not flags: read from the environment as upstream does.
	NodeName        string // NODE_NAME
	PodName         string // POD_NAME
	PodNamespace    string // POD_NAMESPACE
	EventQueueDepth int    // EVENT_QUEUE_DEPTH: validated as upstream, then ignored (README, Running weftd)
	ContWhenCacheNR bool   // CONT_WHEN_CACHE_NOT_READY: kube.Options.ContinueWhenCacheNotReady
}

// AddFlags registers upstream flanneld's flags with upstream's defaults.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.EtcdEndpoints, "etcd-endpoints", "http://127.0.0.1:4001,http://127.0.0.1:2379", "a comma-delimited list of etcd endpoints")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", "/coreos.com/network", "etcd prefix")
	fs.StringVar(&o.EtcdKeyfile, "etcd-keyfile", "", "SSL key file used to secure etcd communication")
	fs.StringVar(&o.EtcdCertfile, "etcd-certfile", "", "SSL certification file used to secure etcd communication")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", "", "SSL Certificate Authority file used to secure etcd communication")
	fs.StringVar(&o.EtcdUsername, "etcd-username", "", "username for BasicAuth to etcd")
	fs.StringVar(&o.EtcdPassword, "etcd-password", "", "password for BasicAuth to etcd")
	fs.Var(flagutil.Repeated(&o.Iface), "iface", "interface to use (IP or name) for inter-host communication; may be repeated")
	fs.Var(flagutil.Repeated(&o.IfaceRegex), "iface-regex", "regex expression to match the first interface to use (IP or name); may be repeated")
	fs.StringVar(&o.IfaceCanReach, "iface-can-reach", "", "detect the interface to use by the route towards this IP address")
	fs.StringVar(&o.PublicIP, "public-ip", "", "IP accessible by other nodes for inter-host communication")
	fs.StringVar(&o.PublicIPv6, "public-ipv6", "", "IPv6 accessible by other nodes for inter-host communication")
	fs.StringVar(&o.SubnetFile, "subnet-file", "/run/flannel/subnet.env", "filename where env variables (subnet, MTU, ...) will be written to")
	fs.IntVar(&o.RenewMargin, "subnet-lease-renew-margin", 60, "subnet lease renewal margin, in minutes, ranging from 1 to 1439")
	fs.StringVar(&o.NetConfigPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "path to the network configuration file (Kubernetes mode)")
	fs.BoolVar(&o.IPMasq, "ip-masq", false, "setup IP masquerade rule for traffic destined outside of overlay network")
	fs.BoolVar(&o.IPMasqRandomOff, "ip-masq-fully-random-disable", false, "disable --random-fully on the masquerade rules")
	fs.IntVar(&o.IPTablesResync, "iptables-resync", 5, "resync period for iptables rules, in seconds")
	fs.BoolVar(&o.IPTablesForward, "iptables-forward-rules", true, "add default accept rules to FORWARD chain in iptables")
	fs.BoolVar(&o.BlackholeRoute, "ip-blackhole-route", false, "add a blackhole route for this node's subnet")
	fs.BoolVar(&o.KubeSubnetMgr, "kube-subnet-mgr", false, "contact the Kubernetes API for subnet assignment instead of etcd")
	fs.StringVar(&o.KubeAPIURL, "kube-api-url", "", "Kubernetes API server URL; the in-cluster default when empty")
	fs.StringVar(&o.KubeConfigFile, "kubeconfig-file", "", "kubeconfig file location; the in-cluster config when empty")
	fs.StringVar(&o.KubeAnnotPrefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", "Kubernetes annotation prefix")
	fs.BoolVar(&o.SetNodeNetUnav, "set-node-network-unavailable", true, "set the node's NetworkUnavailable condition to False once the network is up")
	fs.StringVar(&o.HealthzIP, "healthz-ip", "0.0.0.0", "the IP address for the healthz server to listen on")
	fs.IntVar(&o.HealthzPort, "healthz-port", 0, "the port for the healthz server to listen on (0 to disable)")
	fs.BoolVar(&o.Version, "version", false, "print version and exit")
	fs.BoolVar(&o.NetworkPolicy, "network-policy", true, "weft: enforce Kubernetes NetworkPolicy (Kubernetes mode; net-conf.json's EnableNetworkPolicy false turns it off too)")
}

// ApplyEnv sets every flag not given on the command line from FLANNELD_<FLAG>, and reads the other
// environment knobs upstream reads. getenv is os.Getenv in production (cmd/weftd); it is the daemon's only reader
// of the environment besides aliyun.EnvConfig, which reads the cloud client's variables.
func (o *Options) ApplyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		key := EnvName(f.Name)
		v := getenv(key)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
	})
	o.NodeName = getenv("NODE_NAME")
	o.PodName = getenv("POD_NAME")
	o.PodNamespace = getenv("POD_NAMESPACE")
	o.EventQueueDepth = 5000
	if v := getenv("EVENT_QUEUE_DEPTH"); v != "" {
		// As upstream: not an integer is an error, zero or less means the default.
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("EVENT_QUEUE_DEPTH=%q: expected an integer", v))
		} else if n > 0 {
			o.EventQueueDepth = n
		}
	}
	if v := getenv("CONT_WHEN_CACHE_NOT_READY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("CONT_WHEN_CACHE_NOT_READY=%q: expected true or false", v))
		}
		o.ContWhenCacheNR = b
	}
	return errors.Join(errs...)
}

// EnvName is the environment variable that sets flag name: FLANNELD_ + upper case, dashes as underscores.
func EnvName(flagName string) string {
	return "FLANNELD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate checks option values, naming the flag and what was expected.
func (o *Options) Validate() error {
	var errs []error
	if o.RenewMargin < 1 || o.RenewMargin > 1439 {
		errs = append(errs, fmt.Errorf("--subnet-lease-renew-margin=%d: expected minutes from 1 to 1439", o.RenewMargin))
	}
	if o.IPTablesResync < 1 {
		errs = append(errs, fmt.Errorf("--iptables-resync=%d: expected a positive number of seconds", o.IPTablesResync))
	}
	if o.HealthzPort < 0 || o.HealthzPort > 65535 {
		errs = append(errs, fmt.Errorf("--healthz-port=%d: expected 0 (off) or a port from 1 to 65535", o.HealthzPort))
	}
	if a, err := netip.ParseAddr(o.HealthzIP); err != nil || a.Zone() != "" {
		errs = append(errs, fmt.Errorf("--healthz-ip=%q: expected an IP address", o.HealthzIP))
	}
	for _, e := range o.IfaceRegex {
		if _, err := regexp.Compile(e); err != nil {
			errs = append(errs, fmt.Errorf("--iface-regex=%q: %w", e, err))
		}
	}
	if o.IfaceCanReach != "" {
		if _, err := netip.ParseAddr(o.IfaceCanReach); err != nil {
			errs = append(errs, fmt.Errorf("--iface-can-reach=%q: expected an IP address", o.IfaceCanReach))
		}
	}
	if o.PublicIP != "" {
		if a, err := netip.ParseAddr(o.PublicIP); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("--public-ip=%q: expected an IPv4 address", o.PublicIP))
		}
	}
	if o.PublicIPv6 != "" {
		if a, err := netip.ParseAddr(o.PublicIPv6); err != nil || !a.Is6() || a.Is4In6() {
			errs = append(errs, fmt.Errorf("--public-ipv6=%q: expected an IPv6 address", o.PublicIPv6))
		}
	}
	if !o.KubeSubnetMgr {
		for _, ep := range strings.Split(o.EtcdEndpoints, ",") {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("--etcd-endpoints: %q is not an http:// or https:// URL", redact.URL(ep)))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckNetConf checks, in Kubernetes mode, what the daemon would otherwise only find after reaching the API
// server: that --net-config-path reads and parses and names a backend weftd has. It reads the file, so it is
// apart from Validate (a pure check of the values); cmd/weftd runs both before starting. In etcd mode the
// configuration lives in etcd and is checked when read. (Each backend checks its own Backend settings, VNI, Port
// and the like, when it registers the network.)
func (o *Options) CheckNetConf() error {
	if !o.KubeSubnetMgr {
		return nil
	}
	path := o.NetConfigPath
	b, err := readfile.Limited(path, readfile.DefaultMax)
	if err != nil {
		return fmt.Errorf("--net-config-path: %w", err)
	}
	c, err := subnet.ParseConfig(b)
	if err != nil {
		return fmt.Errorf("--net-config-path %s: %w", path, err)
	}
	if names := backend.Names(); !slices.Contains(names, c.BackendType) {
		return fmt.Errorf("--net-config-path %s: Backend.Type %q: unknown backend, expected one of %s", path, c.BackendType, strings.Join(names, ", "))
	}
	if err := backend.CheckConfig(c.BackendType, c.Backend); err != nil {
		return fmt.Errorf("--net-config-path %s: %w", path, err)
	}
	return nil
}

// RenewMarginDuration is --subnet-lease-renew-margin as a duration.
func (o *Options) RenewMarginDuration() time.Duration {
	return time.Duration(o.RenewMargin) * time.Minute
}

// Redacted renders the effective configuration for the start-up log, with secrets replaced: the secret flags'
// values and the userinfo of any URL (--etcd-endpoints=http://user:secret@host:2379).
func (o *Options) Redacted(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		v := redact.Text(f.Value.String())
		if isSecretFlag(f.Name) && v != "" {
			v = redact.Marker
		}
		fmt.Fprintf(&b, " --%s=%s", f.Name, v)
	})
	if o.NodeName != "" {
		fmt.Fprintf(&b, " NODE_NAME=%s", o.NodeName)
	}
	return strings.TrimSpace(b.String())
}

func isSecretFlag(name string) bool {
	return strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.Contains(name, "token")
}
