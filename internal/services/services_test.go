package services

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// exitedLauncher "starts" a program that has already ended, leaving a line in its log, and records the call.
type exitedLauncher struct {
	prog string
	args []string
}

type exited struct{}

func (exited) Exited() bool { return true }

func (l *exitedLauncher) Launch(logPath, prog string, args ...string) (Proc, error) {
	l.prog, l.args = prog, args
	return exited{}, os.WriteFile(logPath, []byte("fatal: address already in use\n"), 0o644)
}

func TestOptionsNameTheMissingField(t *testing.T) {
	l := &exitedLauncher{}
	_, err := StartEtcd(context.Background(), l, EtcdOptions{Bin: "etcd", Log: "x", ClientPort: 2379, PeerPort: 2379})
	for _, want := range []string{"DataDir is empty", "Host is empty", "two different ports"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("StartEtcd error %v, want it to say %q", err, want)
		}
	}
	_, err = StartAPIServer(context.Background(), l, APIServerOptions{Bin: "kube-apiserver", Dir: t.TempDir(), Log: "x", Host: "127.0.0.1"})
	for _, want := range []string{"EtcdURL is empty", "Port 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("StartAPIServer error %v, want it to say %q", err, want)
		}
	}
	if l.prog != "" {
		t.Errorf("invalid options still launched %s", l.prog)
	}
}

// A service that exits before it is ready is reported at once, with its log, instead of after the timeout.
func TestExitBeforeReadyIsReportedWithTheLog(t *testing.T) {
	dir := t.TempDir()
	l := &exitedLauncher{}
	_, err := StartEtcd(context.Background(), l, EtcdOptions{Bin: "/x/etcd", DataDir: filepath.Join(dir, "data"),
		Log: filepath.Join(dir, "etcd.log"), Host: "127.0.0.1", ClientPort: 1, PeerPort: 2, Timeout: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v, want the exit and the log", err)
	}
	if l.prog != "/x/etcd" || !strings.Contains(strings.Join(l.args, " "), "--listen-client-urls http://127.0.0.1:1") ||
		!strings.Contains(strings.Join(l.args, " "), "--initial-cluster weft=http://127.0.0.1:2") {
		t.Errorf("launched %s %v", l.prog, l.args)
	}

	_, err = StartAPIServer(context.Background(), l, APIServerOptions{Bin: "/x/kube-apiserver", Dir: filepath.Join(dir, "kube"),
		Log: filepath.Join(dir, "kube.log"), EtcdURL: "http://127.0.0.1:1", Host: "127.0.0.1", Port: 6443, Timeout: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("error %v, want the exit", err)
	}
	args := strings.Join(l.args, " ")
	// A loopback advertise address needs the endpoint reconciler off; the credentials the flags name exist.
	if !strings.Contains(args, "--endpoint-reconciler-type=none") {
		t.Errorf("loopback API server launched without --endpoint-reconciler-type=none: %s", args)
	}
	for _, f := range []string{"sa.key", "sa.pub", "tokens.csv", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(dir, "kube", f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestKubeconfigCarriesURLAndToken(t *testing.T) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(Kubeconfig("https://10.250.0.1:6443", "tok-1")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://10.250.0.1:6443" || cfg.BearerToken != "tok-1" || !cfg.Insecure {
		t.Errorf("kubeconfig gives host %q token %q insecure %v", cfg.Host, cfg.BearerToken, cfg.Insecure)
	}
}
