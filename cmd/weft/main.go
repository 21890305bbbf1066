// Command weft is weft's operator CLI.
//
//	weft install-cni [flags]   copy the CNI plugin and write the conflist (the DaemonSet's init step)
//	weft demo up|status|down   a 3-node weft cluster in network namespaces on this machine
//	weft plan [flags]          which backend, and how far a cluster plan scales (for provisioning scripts)
//	weft quota [flags]         VPC route-table usage against the quota
//	weft policy explain [flags] why NetworkPolicy allows or denies a connection
//	weft version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftnet/weft/internal/version"
)

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string) error
}

var commands []command

func usage() {
	fmt.Fprintln(os.Stderr, "usage: weft <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.usage)
	}
}

func main() {
	// Upstream's image has /opt/bin/install-conf <src> <dest>, which kube-flannel.yml (v0.28.6 on) runs as its
	// install-cni init container; weft's image links that name to this binary.
	if filepath.Base(os.Args[0]) == "install-conf" {
		os.Exit(installConf(os.Args[1:]))
	}
	commands = append(commands, command{"version", "print the version", func(context.Context, []string) error {
		fmt.Println(version.Version)
		return nil
	}})
	commands = append(commands, extraCommands()...)
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	for _, c := range commands {
		if c.name == os.Args[1] {
			if err := c.run(ctx, os.Args[2:]); err != nil {
				if code, ok := asExit(err); ok {
					os.Exit(code)
				}
				fmt.Fprintf(os.Stderr, "weft %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "weft: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}
