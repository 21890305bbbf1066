package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"sort"
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

// SetLag changes Lag while the server runs.
func (m *Metadata) SetLag(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Lag = d
}

func (m *Metadata) lookup(path string, now time.Time) (string, bool) {
	m.mu.Lock()
	lag := m.Lag
	m.mu.Unlock()
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
		"network/interfaces/macs": in.MAC + "/",
	}
	macKeys(simple, in.MAC, primaryENIID(in), in.PrimaryIP, []string{in.PrimaryIP}, sw, vpc)
	// Secondary ENIs: shown once attached for Lag (and while Detaching), with the addresses assigned at least
	// Lag ago plus those unassigned less than Lag ago; a detached ENI stays for Lag after its detach completed,
	// with the addresses it had then. Metadata trails the API both ways; the API is the truth.
	w.settleENIs()
	for _, e := range w.st.ENIs {
		if e.member() { // not a NIC of the instance: its frames come tagged on the trunk (trunk.go)
			continue
		}
		var v4 []string
		switch s := e.status(); {
		case e.InstanceID == in.ID && (s == "InUse" || s == "Detaching") && e.visible("attached", now, lag):
			v4 = []string{e.PrimaryIP}
			for _, a := range e.Secondary {
				if e.visible(a, now, lag) {
					v4 = append(v4, a)
				}
			}
			for _, a := range slices.Sorted(maps.Keys(e.Gone)) {
				if now.Before(e.Gone[a].Add(lag)) && !slices.Contains(v4, a) {
					v4 = append(v4, a)
				}
			}
		case e.InstanceID != in.ID && e.LeftInstance == in.ID && now.Before(e.Left.Add(lag)):
			v4 = e.LeftIPs
		default:
			continue
		}
		esw := w.vswitch(e.VSwitchID)
		simple["network/interfaces/macs"] += "\n" + e.MAC + "/"
		macKeys(simple, e.MAC, e.ID, e.PrimaryIP, v4, esw, w.vpc(esw.VPCID))
		base := "network/interfaces/macs/" + e.MAC + "/"
		var v6 []string
		for _, a := range e.IPv6 {
			if e.visible(a, now, lag) {
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

// macKeys adds the per-MAC entries of one interface (network/interfaces/macs/<mac>/...) and its directory
// listing.
func macKeys(m map[string]string, mac, eniID, primary string, v4 []string, sw *VSwitch, vpc *VPC) {
	base := "network/interfaces/macs/" + mac + "/"
	b, _ := json.Marshal(v4)
	keys := map[string]string{"network-interface-id": eniID, "primary-ip-address": primary, "private-ipv4s": string(b),
		"vswitch-id": sw.ID, "vswitch-cidr-block": sw.CIDR, "gateway": gateway(sw.CIDR), "netmask": netmask(sw.CIDR)}
	if vpc != nil {
		keys["vpc-id"], keys["vpc-cidr-block"] = vpc.ID, vpc.CIDR
	}
	var names []string
	for k, v := range keys {
		m[base+k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	m["network/interfaces/macs/"+mac] = strings.Join(names, "\n")
}

// gateway is the vSwitch gateway as the service assigns it: the third-last address of the block (x.y.z.253
// in a /24), one of the four the service reserves.
func gateway(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return ""
	}
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1 // broadcast
	v -= 2
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// netmask is the dotted mask of an IPv4 block (the metadata server's form: 255.255.255.0).
func netmask(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return ""
	}
	return net.IP(net.CIDRMask(p.Bits(), 32)).String()
}
