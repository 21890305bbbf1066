package services

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// EtcdOptions describe a single-member etcd.
type EtcdOptions struct {
	Bin        string // the etcd binary
	Name       string // member name (default "weft")
	DataDir    string // its data directory, created by etcd
	Log        string // file receiving its output
	Host       string // address it listens on, in the namespace the Launcher runs it in
	ClientPort int
	PeerPort   int
	Dial       DialFunc      // how this process reaches Host (nil: directly)
	Timeout    time.Duration // how long to wait for /health (default 30 s)
}

// Etcd is a started etcd.
type Etcd struct {
	URL  string // client URL, http://Host:ClientPort
	Proc Proc
}

// StartEtcd launches etcd and waits until its /health answers 200.
func StartEtcd(ctx context.Context, l Launcher, o EtcdOptions) (*Etcd, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "weft"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	curl := "http://" + net.JoinHostPort(o.Host, strconv.Itoa(o.ClientPort))
	purl := "http://" + net.JoinHostPort(o.Host, strconv.Itoa(o.PeerPort))
	p, err := l.Launch(o.Log, o.Bin, "--name", o.Name, "--data-dir", o.DataDir,
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", o.Name+"="+purl, "--log-level", "warn")
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	cl := httpClient(o.Dial)
	err = poll(ctx, "etcd at "+curl, o.Timeout, p, o.Log, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, curl+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("/health answered %d", resp.StatusCode)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &Etcd{URL: curl, Proc: p}, nil
}

func (o EtcdOptions) check() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"Bin", o.Bin}, {"DataDir", o.DataDir}, {"Log", o.Log}, {"Host", o.Host}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("etcd: %s is empty", f.name))
		}
	}
	if o.ClientPort <= 0 || o.PeerPort <= 0 || o.ClientPort == o.PeerPort {
		errs = append(errs, fmt.Errorf("etcd: ClientPort %d and PeerPort %d must be two different ports", o.ClientPort, o.PeerPort))
	}
	return errors.Join(errs...)
}
