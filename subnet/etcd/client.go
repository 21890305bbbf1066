package etcd

import clientv3 "go.etcd.io/etcd/client/v3"

// Client is the manager's etcd client, shared with the coordination package (leader election, route status) so
// that a node holds one connection to the store.
func (m *Manager) Client() *clientv3.Client { return m.cli }

// Prefix is the key prefix (--etcd-prefix), under which coordination keeps its keys too.
func (m *Manager) Prefix() string { return m.prefix }
