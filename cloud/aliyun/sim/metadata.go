package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metadata serves the instance metadata of one instance (http://100.100.100.200/latest/meta-data/ on a real
// instance): plain-text answers, the token flow (PUT /latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds,
// then X-aliyun-ecs-metadata-token), and RAM-role credentials: short-lived STS keys the API accepts until they
// expire.
type Metadata struct {
	w          *World
	instanceID string
	// CredentialTTL is the lifetime of issued STS credentials (default 1 h, as the service).
	CredentialTTL time.Duration
	// RequireToken refuses requests without a valid token (hardened mode).
	RequireToken bool
	// Lag is how long metadata trails the API for attached ENIs and newly assigned addresses (default 1 s; a
	// real instance shows them a moment after the API call completes).
	Lag time.Duration

	mu     sync.Mutex
	tokens map[string]time.Time
}

// NewMetadata serves instance id's metadata from w.
func NewMetadata(w *World, instanceID string) *Metadata {
	return &Metadata{w: w, instanceID: instanceID, CredentialTTL: time.Hour, Lag: time.Second, tokens: map[string]time.Time{}}
}

func (m *Metadata) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Printf("alisim: metadata: panic serving %s: %v\n%s", r.URL.Path, v, debug.Stack())
			http.Error(rw, "internal error", http.StatusInternalServerError)
		}
	}()
	now := m.w.clock.Now()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get("X-aliyun-ecs-metadata-token-ttl-seconds"))
		if err != nil || ttl < 1 || ttl > 21600 {
			http.Error(rw, "X-aliyun-ecs-metadata-token-ttl-seconds must be 1..21600", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		tok := hex.EncodeToString(b)
		m.mu.Lock()
		m.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
		m.mu.Unlock()
		_, _ = fmt.Fprint(rw, tok)
		return
	}
	if tok := r.Header.Get("X-aliyun-ecs-metadata-token"); tok != "" || m.RequireToken {
		m.mu.Lock()
		exp, ok := m.tokens[tok]
		m.mu.Unlock()
		if !ok || !now.Before(exp) {
			http.Error(rw, "invalid or expired metadata token", http.StatusUnauthorized)
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")
	if path == r.URL.Path {
		http.NotFound(rw, r)
		return
	}
	val, ok := m.lookup(strings.TrimSuffix(path, "/"), now)
	if !ok {
		http.NotFound(rw, r)
		return
	}
	_, _ = fmt.Fprint(rw, val)
}

func (m *Metadata) lookup(path string, now time.Time) (string, bool) {
	w := m.w
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.instance(m.instanceID)
	if in == nil {
		return "", false
	}
	sw := w.vswitch(in.VSwitchID)
	vpc := w.vpc(sw.VPCID)
	simple := map[string]string{
		"instance-id": in.ID, "instance/instance-type": in.Type, "region-id": w.st.RegionID, "zone-id": in.Zone,
		"vpc-id": vpc.ID, "vpc-cidr-block": vpc.CIDR, "vswitch-id": sw.ID, "vswitch-cidr-block": sw.CIDR,
		"private-ipv4": in.PrimaryIP, "mac": in.MAC, "hostname": in.Hostname, "owner-account-id": "1000000000000000",
		"network/interfaces/macs":                                     in.MAC + "/",
		"network/interfaces/macs/" + in.MAC + "/network-interface-id": "eni-" + strings.TrimPrefix(in.ID, "i-"),
		"network/interfaces/macs/" + in.MAC + "/primary-ip-address":   in.PrimaryIP,
		"network/interfaces/macs/" + in.MAC + "/vswitch-id":           sw.ID,
		"network/interfaces/macs/" + in.MAC + "/vswitch-cidr-block":   sw.CIDR,
		"network/interfaces/macs/" + in.MAC + "/gateway":              gateway(sw.CIDR),
		"network/interfaces/macs/" + in.MAC + "/private-ipv4s":        fmt.Sprintf("[%q]", in.PrimaryIP),
	}
	// Secondary ENIs, once attached for Lag, with the addresses assigned at least Lag ago.
	w.settleENIs()
	for _, e := range w.st.ENIs {
		if e.InstanceID != in.ID || e.status() != "InUse" || !e.visible("attached", now, m.Lag) {
			continue
		}
		esw := w.vswitch(e.VSwitchID)
		simple["network/interfaces/macs"] += "\n" + e.MAC + "/"
		base := "network/interfaces/macs/" + e.MAC + "/"
		v4 := []string{e.PrimaryIP}
		for _, a := range e.Secondary {
			if e.visible(a, now, m.Lag) {
				v4 = append(v4, a)
			}
		}
		b, _ := json.Marshal(v4)
		simple[base+"network-interface-id"], simple[base+"primary-ip-address"] = e.ID, e.PrimaryIP
		simple[base+"vswitch-id"], simple[base+"vswitch-cidr-block"], simple[base+"gateway"] = esw.ID, esw.CIDR, gateway(esw.CIDR)
		simple[base+"private-ipv4s"] = string(b)
		var v6 []string
		for _, a := range e.IPv6 {
			if e.visible(a, now, m.Lag) {
				v6 = append(v6, a)
			}
		}
		if len(v6) > 0 {
			simple[base+"ipv6s"] = "[" + strings.Join(v6, ",") + "]" // the service's form: not JSON
		}
		if esw.IPv6CIDR != "" {
			simple[base+"vswitch-ipv6-cidr-block"] = esw.IPv6CIDR
		}
	}
	if v, ok := simple[path]; ok {
		return v, true
	}
	if in.RAMRole == "" {
		return "", false
	}
	switch path {
	case "ram/security-credentials":
		return in.RAMRole, true
	case "ram/security-credentials/" + in.RAMRole:
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		key := AccessKey{ID: "STS.alisim" + hex.EncodeToString(b[:6]), Secret: hex.EncodeToString(b),
			SecurityToken: "alisim-sts-" + hex.EncodeToString(b[6:]), Expires: now.Add(m.CredentialTTL), Instance: in.ID}
		// Expired STS keys are dropped as new ones are issued.
		kept := w.st.AccessKeys[:0]
		for _, k := range w.st.AccessKeys {
			if k.SecurityToken == "" || now.Before(k.Expires) {
				kept = append(kept, k)
			}
		}
		w.st.AccessKeys = append(kept, key)
		out, _ := json.Marshal(map[string]string{"AccessKeyId": key.ID, "AccessKeySecret": key.Secret,
			"Expiration": key.Expires.UTC().Format(gmt), "SecurityToken": key.SecurityToken,
			"LastUpdated": now.UTC().Format(gmt), "Code": "Success"})
		return string(out), true
	}
	return "", false
}

// gateway is the vSwitch gateway as the service assigns it in a /24: x.y.z.253.
func gateway(cidr string) string {
	parts := strings.Split(strings.Split(cidr, "/")[0], ".")
	if len(parts) != 4 {
		return ""
	}
	return strings.Join(parts[:3], ".") + ".253"
}
