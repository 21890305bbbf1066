package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/instancetype"
	"github.com/weftnet/weft/internal/flagutil"
	"github.com/weftnet/weft/internal/plan"
	"github.com/weftnet/weft/internal/readfile"
	"github.com/weftnet/weft/subnet"
)

// prefixList is a repeatable CIDR flag that also takes comma-separated values.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	var s []string
	for _, p := range *l {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.244.0.0/16", s)
		}
		*l = append(*l, p)
	}
	return nil
}

// planCmd: weft plan [flags]. Exit 0 when a backend is recommended and every one named fits, 1 when one named
// does not fit but another does, 2 when none fits, 3 for bad input or figures that cannot be had.
func planCmd(ctx context.Context, args []string) error {
	err := planRun(ctx, args, os.Stdout, os.Stderr)
	if _, ok := asExit(err); ok || err == nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "weft plan:", err)
	return exitError{3}
}

func planRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var in plan.Input
	var backends, types []string
	var pods, svcs, sws, podSws prefixList
	fs.Var(flagutil.CommaList(&backends), "backend", "backend to evaluate: "+strings.Join(plan.AllBackends, ", ")+"; repeatable or comma-separated (default: those the other flags make applicable)")
	fs.Var(&pods, "pod-cidr", "cluster pod CIDR (net-conf.json Network / IPv6Network, or --cluster-cidr); one IPv4 and one IPv6 for dual stack")
	fs.IntVar(&in.SubnetLen, "node-subnet-len", 0, "IPv4 node subnet length (SubnetLen / --node-cidr-mask-size-ipv4; default 24, or flannel's rule in etcd mode)")
	fs.IntVar(&in.IPv6SubnetLen, "ipv6-node-subnet-len", 0, "IPv6 node subnet length (default 64)")
	fs.StringVar(&in.SubnetManager, "subnet-manager", plan.SubnetManagerKube, "who cuts the pod CIDR: kube (kube-controller-manager) or etcd (flannel's allocator, which skips the first subnet)")
	netConf := fs.String("net-conf", "", "read the pod CIDRs, subnet lengths and backend from this net-conf.json")
	fs.Var(&svcs, "service-cidr", "service CIDR (--service-cluster-ip-range); repeatable")
	vpc := fs.String("vpc-cidr", "", "the Alibaba Cloud VPC's CIDR, when the cluster runs in one")
	fs.Var(&sws, "vswitch-cidr", "the nodes' vSwitch CIDRs; repeatable")
	fs.Var(&podSws, "pod-vswitch-cidr", "vSwitch CIDRs reserved for ENI pods; repeatable (default: pods share the nodes' vSwitches)")
	fs.Var(flagutil.CommaList(&types), "instance-type", "ECS instance type of the nodes, e.g. ecs.c7.4xlarge; repeatable")
	typeSource := fs.String("instance-type-source", "builtin", "where ENI figures come from: builtin (a table in weft) or api (DescribeInstanceTypes, with the usual credential chain)")
	region := fs.String("region", "", "region for --instance-type-source api (default: $ALIBABA_CLOUD_REGION_ID, else the metadata region-id)")
	fs.IntVar(&in.Quota, "route-table-quota", plan.DefaultQuota, "custom entries allowed per VPC route table (200 unless raised, at most 1000)")
	fs.IntVar(&in.EntriesUsed, "route-entries-used", 0, "custom entries already in the route table that are not this cluster's")
	fs.IntVar(&in.Nodes, "nodes", 0, "expected node count (0: not checked)")
	fs.IntVar(&in.MaxPods, "max-pods", 0, "kubelet --max-pods, when it is set (0: not limited here)")
	fs.BoolVar(&in.L2Adjacent, "l2-adjacent", false, "every node is on one L2 segment (host-gw needs it)")
	out := fs.String("o", "text", "output: text or json")
	timeout := fs.Duration("timeout", defaultTimeout, "give up (exit 3) when the whole command has not finished within this time (only --instance-type-source api waits on anything)")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{3}
	}
	ctx, cancel, err := withTimeout(ctx, *timeout)
	if err != nil {
		return err
	}
	defer cancel()
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out != "text" && *out != "json" {
		return fmt.Errorf("-o %q: expected text or json", *out)
	}
	in.Backends, in.PodCIDRs, in.ServiceCIDRs, in.VSwitchCIDRs, in.PodVSwitchCIDRs = backends, pods, svcs, sws, podSws
	if *netConf != "" {
		if err := fromNetConf(*netConf, &in, fs); err != nil {
			return err
		}
	}
	if *vpc != "" {
		p, err := netip.ParsePrefix(*vpc)
		if err != nil {
			return fmt.Errorf("--vpc-cidr: %q is not a CIDR such as 192.168.0.0/16", *vpc)
		}
		in.VPCCIDR = p
	}
	if len(types) > 0 {
		var err error
		if in.InstanceTypes, in.TypeSource, err = instanceTypes(ctx, types, *typeSource, *region); err != nil {
			return err
		}
	}
	p, err := plan.Make(in)
	if err != nil {
		return err
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			return err
		}
	} else if err := p.WriteText(stdout); err != nil {
		return err
	}
	if c := p.ExitCode(); c != 0 {
		return exitError{c}
	}
	return nil
}

// fromNetConf takes what flags did not set from a net-conf.json, as weftd would read it.
func fromNetConf(path string, in *plan.Input, fs *flag.FlagSet) error {
	b, err := readfile.Limited(path, readfile.DefaultMax)
	if err != nil {
		return fmt.Errorf("--net-conf: %w", err)
	}
	c, err := subnet.ParseConfig(b)
	if err != nil {
		return fmt.Errorf("--net-conf %s: %w", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["pod-cidr"] {
		if c.EnableIPv4 && c.Network.IsValid() {
			in.PodCIDRs = append(in.PodCIDRs, c.Network)
		}
		if c.EnableIPv6 && c.IPv6Network.IsValid() {
			in.PodCIDRs = append(in.PodCIDRs, c.IPv6Network)
		}
	}
	if !set["node-subnet-len"] && c.SubnetLen != 0 {
		in.SubnetLen = c.SubnetLen
	}
	if !set["ipv6-node-subnet-len"] && c.IPv6SubnetLen != 0 {
		in.IPv6SubnetLen = c.IPv6SubnetLen
	}
	if !set["backend"] && !c.BackendDefaulted {
		in.Backends = []string{c.BackendType}
	}
	return nil
}

// instanceTypes looks up the ENI figures of the named types.
func instanceTypes(ctx context.Context, ids []string, source, region string) ([]instancetype.Type, string, error) {
	var known []instancetype.Type
	var from string
	switch source {
	case "builtin":
		known, from = instancetype.Builtin(), instancetype.BuiltinSource
	case "api":
		api, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Region: region, Getenv: os.Getenv})
		if err != nil {
			return nil, "", err
		}
		region = id.Region
		if known, err = api.InstanceTypes(ctx, ids...); err != nil {
			return nil, "", fmt.Errorf("--instance-type-source api: %w", err)
		}
		from = "DescribeInstanceTypes in " + region
	default:
		return nil, "", fmt.Errorf("--instance-type-source %q: expected builtin or api", source)
	}
	var out []instancetype.Type
	for _, id := range ids {
		i := slices.IndexFunc(known, func(t instancetype.Type) bool { return t.ID == id })
		if i < 0 {
			if source == "builtin" {
				var names []string
				for _, t := range known {
					names = append(names, t.ID)
				}
				return nil, "", fmt.Errorf("--instance-type %s: not in the built-in table (%s); use --instance-type-source api", id, strings.Join(names, ", "))
			}
			return nil, "", fmt.Errorf("--instance-type %s: DescribeInstanceTypes in %s does not know it", id, region)
		}
		out = append(out, known[i])
	}
	return out, from, nil
}
