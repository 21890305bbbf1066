package lab

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// WaitSubnetEnvRewritten waits until a daemon started after since has written subnet.env again. A restarted or
// swapped daemon finds the previous one's file in place, so the file's presence (WaitSubnetEnv) proves nothing;
// both weftd and upstream flanneld replace it by rename when they are set up, which gives it a new modification
// time and a new inode.
func (n *Node) WaitSubnetEnvRewritten(before os.FileInfo, since time.Time, timeout time.Duration) (string, error) {
	var content string
	err := WaitFor(timeout, n.Name+" subnet.env rewritten", func() (bool, error) {
		if n.Daemon != nil && n.Daemon.Exited() {
			return false, fmt.Errorf("daemon exited:\n%s", tail(n.Daemon.Logs()))
		}
		fi, err := os.Stat(n.SubnetFile())
		if err != nil {
			return false, err
		}
		if (before != nil && os.SameFile(before, fi)) || !fi.ModTime().After(since) {
			return false, fmt.Errorf("still the file of %s", fi.ModTime().Format(time.RFC3339Nano))
		}
		b, err := os.ReadFile(n.SubnetFile())
		content = string(b)
		return err == nil && strings.Contains(content, "FLANNEL_MTU"), err
	})
	return content, err
}
