package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
)

// admin serves the unsigned operator API (bind alisim to loopback: the state holds every secret):
//
//	GET  /admin/state   the whole state as JSON (entry life cycles settled), plus "injectedFaults" (by action:
//	                    {"before":{code:n},"after":{code:n}}) and "writes" (the write audit, audit.go)
//	GET  /admin/writes  the write audit alone: {"writes":[...],"dropped":n}
//	POST /admin/fault   {"action":"CreateRouteEntries","errors":{"Throttling":0.2},"after":{"InternalError":0.2,"reset":0.1},
//	                     "latency":"50ms","count":0}
//	POST /admin/limit   {"action":"*","rate":10,"burst":20}
//	POST /admin/quota   {"routeTableId":"vtb-...","quota":3}
//	POST /admin/eni/detach        {"networkInterfaceId":"eni-..."}: detach behind the node's back (ConsoleDetach)
//	POST /admin/eni/unassign      {"networkInterfaceId":"eni-...","addresses":["192.168.0.5"]} (ConsoleUnassign)
//	POST /admin/vswitch/fill      {"vSwitchId":"vsw-...","leave":0}: take free addresses until leave remain
//	POST /admin/vswitch/release   {"vSwitchId":"vsw-...","count":-1}: give reserved addresses back (-1: all)
//
// Bodies with unknown fields are refused, so a misspelt "after" does not silently set nothing.
func (s *Server) admin(rw http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(v)
	}
	bad := func(err error) { reply(400, map[string]string{"error": err.Error()}) }
	decode := func(v any) error {
		d := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	switch {
	case r.URL.Path == "/admin/state" && r.Method == http.MethodGet:
		b, err := s.dump()
		if err != nil {
			bad(err)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(b)
	case r.URL.Path == "/admin/writes" && r.Method == http.MethodGet:
		writes, dropped := s.w.Writes()
		reply(200, map[string]any{"writes": nonNil(writes), "dropped": dropped})
	case r.URL.Path == "/admin/fault" && r.Method == http.MethodPost:
		var req struct {
			Action  string             `json:"action"`
			Errors  map[string]float64 `json:"errors"`
			After   map[string]float64 `json:"after"`
			Latency duration           `json:"latency"`
			Count   int                `json:"count"`
		}
		if err := decode(&req); err != nil || req.Action == "" {
			bad(fmt.Errorf("body: want {\"action\":...,\"errors\":{code:rate},\"after\":{code:rate},\"latency\":\"50ms\",\"count\":n}: %v", err))
			return
		}
		if err := s.SetFault(req.Action, Fault{Errors: req.Errors, After: req.After, Latency: req.Latency.D(), Count: req.Count}); err != nil {
			bad(err)
			return
		}
		reply(200, map[string]string{"ok": req.Action})
	case r.URL.Path == "/admin/limit" && r.Method == http.MethodPost:
		var req struct {
			Action string  `json:"action"`
			Rate   float64 `json:"rate"`
			Burst  int     `json:"burst"`
		}
		if err := decode(&req); err != nil || req.Action == "" || !(req.Rate >= 0) || req.Burst < 0 {
			bad(fmt.Errorf("body: want {\"action\":...,\"rate\":N,\"burst\":N}: %v", err))
			return
		}
		s.SetLimit(req.Action, Limit{Rate: req.Rate, Burst: req.Burst})
		reply(200, map[string]string{"ok": req.Action})
	case r.URL.Path == "/admin/quota" && r.Method == http.MethodPost:
		var req struct {
			RouteTableID string `json:"routeTableId"`
			Quota        int    `json:"quota"`
		}
		if err := decode(&req); err != nil || req.Quota < 0 || req.Quota > 1000 {
			bad(fmt.Errorf("body: want {\"routeTableId\":...,\"quota\":0..1000}: %v", err))
			return
		}
		if err := s.w.SetQuota(req.RouteTableID, req.Quota); err != nil {
			reply(404, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]any{"routeTableId": req.RouteTableID, "quota": req.Quota})
	case r.URL.Path == "/admin/eni/detach" && r.Method == http.MethodPost:
		var req struct {
			ID string `json:"networkInterfaceId"`
		}
		if err := decode(&req); err != nil || req.ID == "" {
			bad(fmt.Errorf("body: want {\"networkInterfaceId\":\"eni-...\"}: %v", err))
			return
		}
		if err := s.w.ConsoleDetach(req.ID); err != nil {
			reply(409, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]string{"ok": req.ID})
	case r.URL.Path == "/admin/eni/unassign" && r.Method == http.MethodPost:
		var req struct {
			ID    string       `json:"networkInterfaceId"`
			Addrs []netip.Addr `json:"addresses"`
		}
		if err := decode(&req); err != nil || req.ID == "" || len(req.Addrs) == 0 {
			bad(fmt.Errorf("body: want {\"networkInterfaceId\":\"eni-...\",\"addresses\":[\"a.b.c.d\"]}: %v", err))
			return
		}
		if err := s.w.ConsoleUnassign(req.ID, req.Addrs...); err != nil {
			reply(409, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]string{"ok": req.ID})
	case r.URL.Path == "/admin/vswitch/fill" && r.Method == http.MethodPost:
		var req struct {
			ID    string `json:"vSwitchId"`
			Leave int    `json:"leave"`
		}
		if err := decode(&req); err != nil || req.ID == "" || req.Leave < 0 {
			bad(fmt.Errorf("body: want {\"vSwitchId\":\"vsw-...\",\"leave\":N>=0}: %v", err))
			return
		}
		n, err := s.w.FillVSwitch(req.ID, req.Leave)
		if err != nil {
			reply(404, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]any{"vSwitchId": req.ID, "reserved": n})
	case r.URL.Path == "/admin/vswitch/release" && r.Method == http.MethodPost:
		var req struct {
			ID    string `json:"vSwitchId"`
			Count int    `json:"count"`
		}
		if err := decode(&req); err != nil || req.ID == "" {
			bad(fmt.Errorf("body: want {\"vSwitchId\":\"vsw-...\",\"count\":N (-1: all)}: %v", err))
			return
		}
		n, err := s.w.ReleaseReserved(req.ID, req.Count)
		if err != nil {
			reply(404, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]any{"vSwitchId": req.ID, "released": n})
	default:
		reply(404, map[string]string{"error": "unknown admin path " + r.Method + " " + r.URL.Path})
	}
}

// dump is /admin/state: the state, the injected fault counters and the write audit.
func (s *Server) dump() ([]byte, error) {
	faults := s.Injected() // Server.mu before World.mu is never held together: taken and released first
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	return json.MarshalIndent(struct {
		*State
		InjectedFaults map[string]FaultCounts `json:"injectedFaults"`
		Writes         []Write                `json:"writes"`
		WritesDropped  int                    `json:"writesDropped"`
	}{w.st, faults, nonNil(w.writes), w.dropped}, "", " ")
}

// SetQuota changes a route table's quota of custom entries.
func (w *World) SetQuota(table string, quota int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.table(table)
	if t == nil {
		return fmt.Errorf("route table %q does not exist", table)
	}
	t.Quota = quota
	return w.save()
}

// duration decodes "50ms" or a number of nanoseconds.
type duration struct{ d int64 }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		x, err := parseDuration(s)
		d.d = x
		return err
	}
	return json.Unmarshal(b, &d.d)
}
