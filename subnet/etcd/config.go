package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weftnet/weft/subnet"
)

// ErrConfigNotFound is upstream's text for a missing <prefix>/config.
var ErrConfigNotFound = errors.New("flannel config not found in etcd store. Did you create your config using etcdv3 API?")

// GetNetworkConfig reads and validates <prefix>/config.
func (m *Manager) GetNetworkConfig(ctx context.Context) (*subnet.Config, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cli.Get(cctx, m.configKey())
	if err != nil {
		return nil, fmt.Errorf("read %s from etcd %v: %w", m.configKey(), m.opts.Endpoints, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrConfigNotFound
	}
	cfg, err := subnet.ParseConfig(resp.Kvs[0].Value)
	if err == nil {
		err = cfg.ValidateEtcd()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.configKey(), err)
	}
	m.mu.Lock()
	m.cfg = cfg
	m.mu.Unlock()
	return cfg, nil
}

func (m *Manager) config(ctx context.Context) (*subnet.Config, error) {
	m.mu.Lock()
	c := m.cfg
	m.mu.Unlock()
	if c != nil {
		return c, nil
	}
	return m.GetNetworkConfig(ctx)
}
