package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// demoState is what `weft demo up` leaves for `status` and `down`.
type demoState struct {
	Prefix   string
	Dir      string
	Underlay string
	Nodes    []demoNode
	PIDs     []int
}

type demoNode struct {
	Name, Addr, Pod, PodIP, SubnetEnv string
	HealthPort                        int
}

const demoPrefix = "weftdemo"

func demoStatePath(dir string) string { return filepath.Join(dir, "state.json") }

func demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "/run/weft-demo", "working directory of the demo")
	tools := fs.String("tools-bin", os.Getenv("WEFT_TOOLS_BIN"), "directory with etcd, etcdctl, cnitool and the CNI reference plugins")
	backend := fs.String("backend", "vxlan", "backend: vxlan or host-gw")
	if len(args) == 0 {
		return errors.New("usage: weft demo up|status|down [flags]")
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch verb {
	case "up":
		return demoUp(*dir, *tools, *backend)
	case "status":
		return demoStatus(*dir)
	case "down":
		return demoDown(*dir)
	}
	return fmt.Errorf("unknown demo command %q: want up, status or down", verb)
}

func demoUp(dir, tools, backend string) error {
	if tools == "" {
		return errors.New("--tools-bin (or WEFT_TOOLS_BIN) must name the directory with etcd and the CNI plugins; `make demo` sets it")
	}
	if _, err := os.Stat(demoStatePath(dir)); err == nil {
		return fmt.Errorf("a demo is already up (state in %s): run `weft demo down` first", dir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin := filepath.Dir(self)
	l, err := lab.New(lab.Options{Nodes: 3, Dir: dir, ToolsBin: tools, WeftBin: bin, Prefix: demoPrefix, Detach: true})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			fmt.Println("demo failed; cleaning up")
			_ = demoDown(dir)
		}
	}()
	st := demoState{Prefix: demoPrefix, Dir: dir, Underlay: l.Underlay}
	save := func() error {
		b, _ := json.MarshalIndent(st, "", "  ")
		return os.WriteFile(demoStatePath(dir), b, 0o644)
	}
	fmt.Printf("underlay namespace %s with bridge br0 %s; starting etcd\n", l.Underlay, lab.UnderlayIP)
	if err := l.StartEtcd(); err != nil {
		return err
	}
	if err := l.PutNetConfig(fmt.Sprintf(`{"Network":"10.244.0.0/16","Backend":{"Type":%q}}`, backend)); err != nil {
		return err
	}
	for i, n := range l.Nodes {
		port := 9901 + i
		if _, err := n.StartDaemon(lab.DaemonOptions{Binary: filepath.Join(bin, "weftd"), HealthPort: port}); err != nil {
			return err
		}
		if _, err := n.WaitSubnetEnv(30 * time.Second); err != nil {
			return err
		}
		fmt.Printf("node %s (%s): weftd up, %s\n", n.Name, n.Addr, n.EnvValue("FLANNEL_SUBNET"))
		st.Nodes = append(st.Nodes, demoNode{Name: n.Name, Addr: n.Addr, HealthPort: port, SubnetEnv: n.SubnetFile()})
	}
	for i, n := range l.Nodes {
		p, err := n.AddPod("pod", lab.CNIOptions{Plugin: filepath.Join(bin, "flannel")})
		if err != nil {
			return err
		}
		st.Nodes[i].Pod, st.Nodes[i].PodIP = p.Name, p.IP4
		fmt.Printf("pod %s on %s: %s (CNI chain flannel -> bridge + host-local)\n", p.Name, n.Name, p.IP4)
	}
	st.PIDs = procsOf(l)
	if err := save(); err != nil {
		return err
	}
	ok = true
	fmt.Println()
	if err := demoStatus(dir); err != nil {
		return err
	}
	fmt.Printf("\nTry: ip netns exec %s ping %s\nTear down with: make demo-down (or bin/weft demo down)\n", st.Nodes[0].Pod, st.Nodes[2].PodIP)
	return nil
}

func procsOf(l *lab.Lab) []int {
	var pids []int
	for _, n := range l.Nodes {
		if n.Daemon != nil {
			pids = append(pids, n.Daemon.Cmd.Process.Pid)
		}
	}
	pids = append(pids, l.EtcdPID())
	return pids
}

func loadState(dir string) (*demoState, error) {
	b, err := os.ReadFile(demoStatePath(dir))
	if err != nil {
		return nil, fmt.Errorf("no demo is up (%w)", err)
	}
	var st demoState
	return &st, json.Unmarshal(b, &st)
}

func demoStatus(dir string) error {
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSUBNET\tMTU\tREADY\tPOD\tPOD IP\tREACHES")
	for _, n := range st.Nodes {
		env := readEnv(n.SubnetEnv)
		code, _, _ := lab.HTTPGet(n.Name, fmt.Sprintf("http://127.0.0.1:%d/readyz", n.HealthPort))
		ready := "no"
		if code == 200 {
			ready = "yes"
		}
		var reach []string
		for _, m := range st.Nodes {
			if m.Name == n.Name {
				continue
			}
			mark := "x"
			if _, err := lab.NSRun(n.Pod, "ping", "-c", "1", "-W", "1", m.PodIP); err == nil {
				mark = "ok"
			}
			reach = append(reach, m.PodIP+":"+mark)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Addr, env["FLANNEL_SUBNET"], env["FLANNEL_MTU"], ready,
			n.Pod, n.PodIP, strings.Join(reach, " "))
	}
	return tw.Flush()
}

func readEnv(path string) map[string]string {
	out := map[string]string{}
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func demoDown(dir string) error {
	st, err := loadState(dir)
	if err == nil {
		for _, pid := range st.PIDs {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		time.Sleep(500 * time.Millisecond)
		for _, pid := range st.PIDs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	out, _ := lab.Run("ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], demoPrefix+"-") {
			_, _ = lab.Run("ip", "netns", "del", f[0])
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Println("demo removed")
	return nil
}
