package sim

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

type handler func(*World, params) (any, *APIError)

// vpcActions are the VPC 2016-04-28 actions alisim serves.
var vpcActions = map[string]handler{
	"DescribeVpcs":           (*World).describeVpcs,
	"DescribeVSwitches":      (*World).describeVSwitches,
	"DescribeRouteTableList": (*World).describeRouteTableList,
	"DescribeRouteTables":    (*World).describeRouteTables,
	"DescribeRouteEntryList": (*World).describeRouteEntryList,
	"CreateRouteEntry":       (*World).createRouteEntry,
	"DeleteRouteEntry":       (*World).deleteRouteEntry,
	"CreateRouteEntries":     (*World).createRouteEntries,
	"DeleteRouteEntries":     (*World).deleteRouteEntries,
}

// ecsActions are the ECS 2014-05-26 actions alisim serves.
var ecsActions = map[string]handler{
	"DescribeInstances":          (*World).describeInstances,
	"DescribeInstanceTypes":      (*World).describeInstanceTypes,
	"CreateNetworkInterface":     (*World).createNetworkInterface,
	"AttachNetworkInterface":     (*World).attachNetworkInterface,
	"DetachNetworkInterface":     (*World).detachNetworkInterface,
	"DeleteNetworkInterface":     (*World).deleteNetworkInterface,
	"DescribeNetworkInterfaces":  (*World).describeNetworkInterfaces,
	"AssignPrivateIpAddresses":   (*World).assignPrivateIpAddresses,
	"UnassignPrivateIpAddresses": (*World).unassignPrivateIpAddresses,
	"AssignIpv6Addresses":        (*World).assignIpv6Addresses,
	"UnassignIpv6Addresses":      (*World).unassignIpv6Addresses,
}

// writeActions change state (and the state file).
var writeActions = map[string]bool{"CreateRouteEntry": true, "DeleteRouteEntry": true, "CreateRouteEntries": true,
	"DeleteRouteEntries": true, "CreateNetworkInterface": true, "AttachNetworkInterface": true, "DetachNetworkInterface": true,
	"DeleteNetworkInterface": true, "AssignPrivateIpAddresses": true, "UnassignPrivateIpAddresses": true,
	"AssignIpv6Addresses": true, "UnassignIpv6Addresses": true}

// Limit is a token bucket: Rate calls per second, Burst at most.
type Limit struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Server is alisim's OpenAPI front.
type Server struct {
	w *World

	// mu guards the fields below. It may be taken while World.mu is held, never the other way round.
	mu       sync.Mutex
	faults   map[string]Fault // by action; "*" applies to all
	limits   map[string]Limit // by action; "*" applies to all
	buckets  map[string]*bucket
	reqs     uint64
	calls    map[string]int          // authenticated calls by action
	injected map[string]*FaultCounts // injected faults by action
}

// NewServer serves w.
func NewServer(w *World) *Server {
	return &Server{w: w, faults: map[string]Fault{}, limits: map[string]Limit{}, buckets: map[string]*bucket{}, calls: map[string]int{},
		injected: map[string]*FaultCounts{}}
}

// SetLimit sets (or, with Rate 0, clears) the throttling of an action ("*" for all).
func (s *Server) SetLimit(action string, l Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.buckets, action)
	if l.Rate <= 0 {
		delete(s.limits, action)
		return
	}
	if l.Burst < 1 {
		l.Burst = 1
	}
	s.limits[action] = l
}

func (s *Server) requestID() string {
	s.mu.Lock()
	s.reqs++
	n := s.reqs
	s.mu.Unlock()
	return fmt.Sprintf("ALISIM-%08X-%04X", n, rand.IntN(1<<16))
}

// ServeHTTP answers RPC calls on "/" and the admin API under /admin/. A panic in a handler is answered with
// 500 InternalError (and logged with its stack); every lock is released by defer, so it cannot wedge the world.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rid := s.requestID()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Printf("alisim: panic serving %s %s (request %s): %v\n%s", r.Method, r.URL.Path, rid, v, debug.Stack())
			writeErr(rw, rid, apiErr(500, "InternalError", "The request processing has failed due to some unknown error."))
		}
	}()
	if strings.HasPrefix(r.URL.Path, "/admin/") {
		s.admin(rw, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeErr(rw, rid, apiErr(400, "InvalidParameter", "cannot parse the request: %v", err))
		return
	}
	p := params{}
	for k, v := range r.Form { // query and form, merged
		if len(v) > 0 {
			p[k] = v[0]
		}
	}
	action := p.get("Action")
	key, e := s.authenticate(r.Method, p)
	if e != nil {
		writeErr(rw, rid, e)
		return
	}
	h, version := vpcActions[action], "2016-04-28"
	if h == nil {
		h, version = ecsActions[action], "2014-05-26"
	}
	if h == nil {
		h, version = quotasActions[action], "2020-05-10"
	}
	if h == nil {
		writeErr(rw, rid, apiErr(404, "InvalidAction.NotFound", "Specified api %q is not found, please check your url and method.", action))
		return
	}
	if v := p.get("Version"); v != version {
		writeErr(rw, rid, apiErr(400, "InvalidVersion", "Specified parameter Version %q is not valid for action %s.", v, action))
		return
	}
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	if e := s.throttle(action); e != nil {
		writeErr(rw, rid, e)
		return
	}
	if d := s.latency(action); d > 0 {
		time.Sleep(d)
	}
	if code := s.draw(action, Before); code != "" {
		strike(rw, rid, code)
		return
	}
	out, lost, e := s.apply(action, h, p, key, rid)
	if e != nil {
		writeErr(rw, rid, e)
		return
	}
	if lost != "" {
		strike(rw, rid, lost)
		return
	}
	body := map[string]any{"RequestId": rid}
	if m, ok := out.(map[string]any); ok {
		for k, v := range m {
			body[k] = v
		}
	}
	rw.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(rw).Encode(body)
}

// apply runs a handler under the world lock. When it succeeds, the after-fault (if any strikes) is drawn, and a
// write is recorded in the audit and saved, all before the lock is released: the change has happened whatever
// the client hears.
func (s *Server) apply(action string, h handler, p params, key AccessKey, rid string) (out any, lost string, e *APIError) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	if out, e = h(w, p); e != nil {
		return nil, "", e
	}
	lost = s.draw(action, After)
	if writeActions[action] {
		w.record(Write{At: w.clock.Now(), Action: action, AccessKeyID: key.ID, Instance: key.Instance, RequestID: rid, Lost: lost})
		_ = w.save()
	}
	return out, lost, nil
}

func writeErr(rw http.ResponseWriter, rid string, e *APIError) {
	rw.Header().Set("Content-Type", "application/json;charset=utf-8")
	rw.WriteHeader(e.Status)
	_ = json.NewEncoder(rw).Encode(map[string]string{"RequestId": rid, "HostId": "alisim", "Code": e.Code,
		"Message": e.Message, "Recommend": "https://api.aliyun.com/troubleshoot?q=" + e.Code})
}

// authenticate verifies signature v1, the key, the timestamp window, nonce reuse and STS tokens, and returns
// the key that signed.
func (s *Server) authenticate(method string, p params) (AccessKey, *APIError) {
	for _, k := range []string{"AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "SignatureVersion"} {
		if p.get(k) == "" {
			return AccessKey{}, apiErr(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: %s is missing.", k)
		}
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	var key *AccessKey
	for i := range s.w.st.AccessKeys {
		if s.w.st.AccessKeys[i].ID == p.get("AccessKeyId") {
			key = &s.w.st.AccessKeys[i]
		}
	}
	if key == nil {
		return AccessKey{}, apiErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	want := Sign(method, p, key.Secret)
	if !hmac.Equal([]byte(want), []byte(p.get("Signature"))) {
		return AccessKey{}, apiErr(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
	}
	now := s.w.clock.Now()
	ts, err := time.Parse(gmt, p.get("Timestamp"))
	if err != nil {
		return AccessKey{}, apiErr(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := now.Sub(ts); d > 15*time.Minute || d < -15*time.Minute {
		return AccessKey{}, apiErr(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	if key.SecurityToken != "" {
		if p.get("SecurityToken") != key.SecurityToken {
			return AccessKey{}, apiErr(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken mismatch with the AccessKey.")
		}
		if !key.Expires.IsZero() && !now.Before(key.Expires) {
			return AccessKey{}, apiErr(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
		}
	}
	nonce := key.ID + "/" + p.get("SignatureNonce")
	for n, at := range s.w.nonces {
		if now.Sub(at) > 15*time.Minute {
			delete(s.w.nonces, n)
		}
	}
	if _, used := s.w.nonces[nonce]; used {
		return AccessKey{}, apiErr(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	s.w.nonces[nonce] = now
	return *key, nil
}

func (s *Server) throttle(action string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{action, "*"} {
		l, ok := s.limits[k]
		if !ok {
			continue
		}
		now := time.Now()
		b := s.buckets[k]
		if b == nil {
			b = &bucket{tokens: float64(l.Burst), last: now}
			s.buckets[k] = b
		}
		b.tokens = min(float64(l.Burst), b.tokens+now.Sub(b.last).Seconds()*l.Rate)
		b.last = now
		if b.tokens < 1 {
			return errThrottlingUser()
		}
		b.tokens--
	}
	return nil
}

// Calls returns how many authenticated calls of an action arrived (benchmarks and tests count API use).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}
