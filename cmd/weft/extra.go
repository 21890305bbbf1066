package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/internal/readfile"
)

func extraCommands() []command {
	return []command{
		{"install-cni", "copy CNI plugins into the CNI bin dir and write the conflist", installCNI},
		{"demo", "a 3-node weft cluster in network namespaces: demo up|status|down", demo},
		{"plan", "which backend, and how far a cluster plan scales; exit 0 ok, 1 partial, 2 no backend fits, 3 bad input", planCmd},
		{"quota", "VPC route-table usage against the quota; exit 0 ok, 1 warning, 2 critical", quotaCmd},
		{"policy", "policy explain: why NetworkPolicy allows or denies a connection; exit 0 allowed, 1 denied", policyCmd},
	}
}

func installCNI(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("install-cni", flag.ContinueOnError)
	backend := fs.String("backend", "flannel", "whose pods: flannel (every overlay and route backend) or eni (weft's eni backend)")
	plugins := fs.String("plugins", "", "comma-separated plugin binaries to copy (default: /opt/bin/flannel; eni: /opt/bin/weft-eni)")
	binDir := fs.String("cni-bin-dir", "/opt/cni/bin", "CNI plugin directory on the host")
	confDir := fs.String("cni-conf-dir", "/etc/cni/net.d", "CNI configuration directory on the host")
	confName := fs.String("conf-name", "", "name of the conflist file (default: 10-flannel.conflist; eni: 10-weft-eni.conflist)")
	conf := fs.String("conflist", "", "conflist to install (default: upstream's 10-flannel.conflist with the bandwidth plugin after portmap; eni: weft's 10-weft-eni.conflist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := install.ForBackend(*backend)
	if err != nil {
		return err
	}
	o := install.Options{BinDir: *binDir, ConfDir: *confDir, ConfName: b.ConfName, Conflist: b.Conflist}
	if *confName != "" {
		o.ConfName = *confName
	}
	for _, p := range strings.Split(*plugins, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Plugins = append(o.Plugins, p)
		}
	}
	if !flagSet(fs, "plugins") {
		o.Plugins = b.Plugins
	}
	if *conf != "" {
		b, err := readfile.Limited(*conf, readfile.DefaultMax)
		if err != nil {
			return fmt.Errorf("--conflist: %w", err)
		}
		o.Conflist = b
	}
	if err := install.Run(o); err != nil {
		return err
	}
	// The runtime takes the first configuration by name: say so when another one wins over ours.
	if first, err := install.Shadowing(o.ConfDir, o.ConfName); err == nil && len(first) > 0 {
		fmt.Fprintf(os.Stderr, "weft install-cni: warning: %s in %s sort before %s, and the container runtime uses the first: remove them for the %s backend's pods to get their network from %s\n",
			strings.Join(first, ", "), o.ConfDir, o.ConfName, b.Name, o.ConfName)
	}
	return nil
}

// flagSet says whether the command line set the flag (an explicit --plugins= copies none).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// installConf is upstream's install-conf: copy the CNI conflist into place atomically; exit 1 on any error.
func installConf(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: install-conf <src> <dest>\n")
		return 1
	}
	if err := install.CopyFile(args[0], args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "install-conf: %v\n", err)
		return 1
	}
	return 0
}
