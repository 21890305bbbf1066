package lab

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// EtcdKV writes the lab's etcd through its JSON gateway (/v3/kv/...), from this process, at a rate a drill
// needs (tens of changes per second) where starting etcdctl for each would load the machine.
type EtcdKV struct {
	url string
	cl  *http.Client
}

// KV returns a writer for the lab's etcd (StartEtcd first).
func (l *Lab) KV() *EtcdKV {
	return &EtcdKV{url: l.EtcdURL, cl: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: DialerIn(l.Underlay)}}}
}

// Put stores value at key.
func (kv *EtcdKV) Put(key, value string) error {
	return kv.call("put", key, map[string]string{"key": b64(key), "value": b64(value)})
}

// Delete removes key.
func (kv *EtcdKV) Delete(key string) error {
	return kv.call("deleterange", key, map[string]string{"key": b64(key)})
}

// Close drops the idle connections.
func (kv *EtcdKV) Close() { kv.cl.CloseIdleConnections() }

func (kv *EtcdKV) call(op, key string, body map[string]string) error {
	b, _ := json.Marshal(body)
	resp, err := kv.cl.Post(kv.url+"/v3/kv/"+op, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("etcd %s %s: %w", op, key, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s %s: %d %s", op, key, resp.StatusCode, bytes.TrimSpace(out))
	}
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
