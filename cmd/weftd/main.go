// Command weftd is weft's node daemon, a drop-in replacement for flanneld: same flags, FLANNELD_* environment,
// net-conf.json, etcd keys, node annotations, subnet.env and vxlan wire format.
package main

import (
	"context"
	"errors"
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
	// Unusable input exits 1, as the README says (flag.ExitOnError would exit 2 on a bad flag); -h exits 0.
	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	var o daemon.Options
	o.AddFlags(fs)
	klog.InitFlags(fs) // -v, --vmodule and klog's other flags, as upstream
	_ = fs.Set("logtostderr", "true")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(1) // the flag package has printed the error and the usage
	}
	if err := o.ApplyEnv(fs, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "weftd:", err)
		os.Exit(1)
	}
	if o.Version {
		fmt.Println(version.Version)
		return
	}
	if err := errors.Join(o.Validate(), o.CheckNetConf()); err != nil {
		fmt.Fprintln(os.Stderr, "weftd:", err)
		os.Exit(1)
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
