package subnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weftnet/weft/internal/readfile"
)

// Env is the content of subnet.env, the file the flannel CNI plugin reads.
type Env struct {
	EnableIPv4  bool
	EnableIPv6  bool
	Network     netip.Prefix
	Subnet      netip.Prefix // this node's subnet (written as its first usable address)
	IPv6Network netip.Prefix
	IPv6Subnet  netip.Prefix
	MTU         int
	IPMasq      bool
}

// Render produces the file's bytes in upstream's line order.
func (e Env) Render() []byte {
	var b bytes.Buffer
	if e.EnableIPv4 && e.Network.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_NETWORK=%s\n", e.Network)
	}
	if e.EnableIPv4 && e.Subnet.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_SUBNET=%s\n", firstUsable(e.Subnet))
	}
	if e.EnableIPv6 && e.IPv6Network.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_IPV6_NETWORK=%s\n", e.IPv6Network)
	}
	if e.EnableIPv6 && e.IPv6Subnet.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_IPV6_SUBNET=%s\n", firstUsable(e.IPv6Subnet))
	}
	fmt.Fprintf(&b, "FLANNEL_MTU=%d\n", e.MTU)
	fmt.Fprintf(&b, "FLANNEL_IPMASQ=%v\n", e.IPMasq)
	return b.Bytes()
}

func firstUsable(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Masked().Addr().Next(), p.Bits())
}

// WriteEnvFile writes subnet.env atomically: a temporary file in the same directory, renamed over the target,
// so a reader never sees a partial file. The directory is created 0755 and the file is 0644.
func WriteEnvFile(path string, e Env) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("subnet file %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("subnet file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err = f.Write(e.Render()); err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("subnet file %s: %w", path, err)
	}
	return nil
}

// ReadEnvFile parses a subnet.env written by weftd or upstream flanneld; a file larger than readfile.DefaultMax
// (a device such as /dev/zero) is an error, not an endless read.
func ReadEnvFile(path string) (Env, error) {
	data, err := readfile.Limited(path, readfile.DefaultMax)
	if err != nil {
		return Env{}, fmt.Errorf("subnet file: %w", err)
	}
	return ParseEnv(data, path)
}

// ParseEnv parses subnet.env content; name is used in errors.
func ParseEnv(data []byte, name string) (Env, error) {
	var e Env
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return e, fmt.Errorf("%s:%d: expected KEY=VALUE", name, n)
		}
		seen[k] = true
		var err error
		switch k {
		case "FLANNEL_NETWORK":
			e.Network, err = netip.ParsePrefix(v)
			e.EnableIPv4 = true
		case "FLANNEL_SUBNET":
			e.Subnet, err = netip.ParsePrefix(v)
			e.EnableIPv4 = true
		case "FLANNEL_IPV6_NETWORK":
			e.IPv6Network, err = netip.ParsePrefix(v)
			e.EnableIPv6 = true
		case "FLANNEL_IPV6_SUBNET":
			e.IPv6Subnet, err = netip.ParsePrefix(v)
			e.EnableIPv6 = true
		case "FLANNEL_MTU":
			e.MTU, err = strconv.Atoi(v)
		case "FLANNEL_IPMASQ":
			e.IPMasq, err = strconv.ParseBool(v)
		}
		if err != nil {
			return e, fmt.Errorf("%s:%d: %s=%q: %v", name, n, k, v, err)
		}
	}
	if err := sc.Err(); err != nil {
		return e, fmt.Errorf("%s: %w", name, err)
	}
	if e.EnableIPv4 && (!seen["FLANNEL_NETWORK"] || !seen["FLANNEL_SUBNET"]) {
		return e, fmt.Errorf("%s: FLANNEL_NETWORK and FLANNEL_SUBNET must both be set", name)
	}
	if e.EnableIPv6 && (!seen["FLANNEL_IPV6_NETWORK"] || !seen["FLANNEL_IPV6_SUBNET"]) {
		return e, fmt.Errorf("%s: FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET must both be set", name)
	}
	if !e.EnableIPv4 && !e.EnableIPv6 {
		return e, fmt.Errorf("%s: no FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET", name)
	}
	if !seen["FLANNEL_MTU"] {
		return e, fmt.Errorf("%s: FLANNEL_MTU is missing", name)
	}
	if e.MTU < MinEnvMTU || e.MTU > MaxEnvMTU {
		return e, fmt.Errorf("%s: FLANNEL_MTU=%d: expected %d to %d", name, e.MTU, MinEnvMTU, MaxEnvMTU)
	}
	if e.EnableIPv4 {
		if err := checkEnvSubnet(e.Network, e.Subnet, true, 30); err != nil {
			return e, fmt.Errorf("%s: FLANNEL_NETWORK=%s, FLANNEL_SUBNET=%s: %v", name, e.Network, e.Subnet, err)
		}
	}
	if e.EnableIPv6 {
		if err := checkEnvSubnet(e.IPv6Network, e.IPv6Subnet, false, 126); err != nil {
			return e, fmt.Errorf("%s: FLANNEL_IPV6_NETWORK=%s, FLANNEL_IPV6_SUBNET=%s: %v", name, e.IPv6Network, e.IPv6Subnet, err)
		}
	}
	return e, nil
}

// The MTU range subnet.env may carry: IPv4's minimum to the largest an interface takes.
const (
	MinEnvMTU = 68
	MaxEnvMTU = 65535
)

// checkEnvSubnet refuses a node subnet of the wrong family, outside its network, or too small to hold a pod
// (the CNI plugin hands it to host-local as is).
func checkEnvSubnet(network, sn netip.Prefix, v4 bool, maxBits int) error {
	family := "IPv6"
	if v4 {
		family = "IPv4"
	}
	switch {
	case network.Addr().Is4() != v4 || sn.Addr().Is4() != v4 || network.Addr().Is4In6() || sn.Addr().Is4In6():
		return fmt.Errorf("expected %s prefixes", family)
	case network.Addr().Zone() != "" || sn.Addr().Zone() != "":
		return errors.New("expected prefixes without a zone")
	case sn.Bits() < network.Bits() || !network.Contains(sn.Addr()):
		return errors.New("the subnet is not inside the network")
	case sn.Bits() > maxBits:
		return fmt.Errorf("a /%d subnet holds no pod address", sn.Bits())
	}
	return nil
}
