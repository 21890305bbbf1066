// Command weftd is weft's node daemon, a drop-in replacement for flanneld: same flags, FLANNELD_* environment,
// net-conf.json, etcd keys, node annotations, subnet.env and vxlan wire format.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/internal/version"
)

func main() {
	fs := flag.NewFlagSet("weftd", flag.ExitOnError)
	var o daemon.Options
	o.AddFlags(fs)
	klog.InitFlags(fs) // -v, --vmodule and klog's other flags, as upstream
	_ = fs.Set("logtostderr", "true")
	_ = fs.Parse(os.Args[1:])
	if err := o.ApplyEnv(fs, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "weftd:", err)
		os.Exit(2)
	}
	if o.Version {
		fmt.Println(version.Version)
		return
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "weftd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, &o, fs); err != nil {
		klog.Errorf("weftd: %v", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
