package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// admin serves the unsigned operator API (bind alisim to loopback):
//
//	GET  /admin/state                          the whole state as JSON (entry life cycles settled)
//	POST /admin/fault  {"action":"CreateRouteEntries","errors":{"Throttling":0.2},"latency":"50ms"}
//	POST /admin/limit  {"action":"*","rate":10,"burst":20}
//	POST /admin/quota  {"routeTableId":"vtb-...","quota":3}
func (s *Server) admin(rw http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(v)
	}
	bad := func(err error) { reply(400, map[string]string{"error": err.Error()}) }
	switch {
	case r.URL.Path == "/admin/state" && r.Method == http.MethodGet:
		b, err := s.w.Dump()
		if err != nil {
			bad(err)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(b)
	case r.URL.Path == "/admin/fault" && r.Method == http.MethodPost:
		var req struct {
			Action  string             `json:"action"`
			Errors  map[string]float64 `json:"errors"`
			Latency duration           `json:"latency"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Action == "" {
			bad(fmt.Errorf("body: want {\"action\":...,\"errors\":{code:rate},\"latency\":\"50ms\"}: %v", err))
			return
		}
		for c, p := range req.Errors {
			if p < 0 || p > 1 {
				bad(fmt.Errorf("errors.%s: rate %v is not within 0..1", c, p))
				return
			}
		}
		s.SetFault(req.Action, Fault{Errors: req.Errors, Latency: req.Latency.D()})
		reply(200, map[string]string{"ok": req.Action})
	case r.URL.Path == "/admin/limit" && r.Method == http.MethodPost:
		var req struct {
			Action string  `json:"action"`
			Rate   float64 `json:"rate"`
			Burst  int     `json:"burst"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Action == "" || req.Rate < 0 {
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
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Quota < 0 || req.Quota > 1000 {
			bad(fmt.Errorf("body: want {\"routeTableId\":...,\"quota\":0..1000}: %v", err))
			return
		}
		if err := s.w.SetQuota(req.RouteTableID, req.Quota); err != nil {
			reply(404, map[string]string{"error": err.Error()})
			return
		}
		reply(200, map[string]any{"routeTableId": req.RouteTableID, "quota": req.Quota})
	default:
		reply(404, map[string]string{"error": "unknown admin path " + r.Method + " " + r.URL.Path})
	}
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
