package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Fault injection. A fault has two points where it can strike a call:
//   - before the handler runs (Errors): the call is refused and nothing changes, as a throttled or overloaded
//     service refuses it;
//   - after the handler ran and changed the state (After): the reply is lost, so the client sees an error or a
//     dropped connection although the write took effect. This is the case that makes clients create twice or give
//     up on a change that happened; ClientToken and re-reading the state are the defences it exercises.
//
// At either point a code answers with that error code and its documented status; the code Reset instead closes
// the TCP connection with no response at all (an RST where the platform allows). After-faults strike only calls
// that succeeded, so each one counted is a change the client did not hear about.

// Reset is the fault code that drops the connection without an answer.
const Reset = "reset"

// The two points a fault strikes, as the counters name them.
const (
	Before = "before"
	After  = "after"
)

// Fault is the injected behaviour of one action.
type Fault struct {
	// Errors refuse the call before it runs: code -> probability 0..1.
	Errors map[string]float64 `json:"errors,omitempty"`
	// After lets the call run, then loses its reply: code -> probability 0..1.
	After map[string]float64 `json:"after,omitempty"`
	// Latency is added before the call runs.
	Latency time.Duration `json:"latency,omitempty"`
	// Count, when positive, clears the fault after it has struck that many times (deterministic tests).
	Count int `json:"count,omitempty"`
}

func (f Fault) zero() bool { return len(f.Errors) == 0 && len(f.After) == 0 && f.Latency == 0 }

// Validate names the first thing wrong with a fault: an empty code, a rate outside 0..1 (NaN included), a
// negative latency or count.
func (f Fault) Validate() error {
	var errs []error
	for field, rates := range map[string]map[string]float64{"errors": f.Errors, "after": f.After} {
		for _, c := range sortedCodes(rates) {
			r := rates[c]
			switch {
			case strings.TrimSpace(c) == "":
				errs = append(errs, fmt.Errorf("%s: an empty code (want an error code such as InternalError, or %q)", field, Reset))
			case strings.ContainsAny(c, " \t\r\n\"'<>&"):
				errs = append(errs, fmt.Errorf("%s.%s: a code is letters, digits, dots and dashes", field, c))
			case !(r >= 0 && r <= 1):
				errs = append(errs, fmt.Errorf("%s.%s: rate %v is not within 0..1", field, c, r))
			}
		}
	}
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency: %s is negative", f.Latency))
	}
	if f.Count < 0 {
		errs = append(errs, fmt.Errorf("count: %d is negative", f.Count))
	}
	return errors.Join(errs...)
}

func sortedCodes(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// FaultCounts are the faults injected into one action, by code, at each point.
type FaultCounts struct {
	Before map[string]int `json:"before,omitempty"`
	After  map[string]int `json:"after,omitempty"`
}

// Total is the number of faults counted at both points.
func (c FaultCounts) Total() int {
	n := 0
	for _, m := range []map[string]int{c.Before, c.After} {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// SetFault sets (or, with a zero Fault, clears) the fault of an action ("*" for all); an invalid fault is refused.
func (s *Server) SetFault(action string, f Fault) error {
	if action == "" {
		return errors.New("fault: an empty action (want an action name or \"*\")")
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("fault of %s: %w", action, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.zero() {
		delete(s.faults, action)
		return nil
	}
	s.faults[action] = f
	return nil
}

// Injected returns the faults injected so far, by action (the action called, also for faults set on "*").
func (s *Server) Injected() map[string]FaultCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]FaultCounts{}
	for a, c := range s.injected {
		cp := FaultCounts{Before: map[string]int{}, After: map[string]int{}}
		for k, v := range c.Before {
			cp.Before[k] = v
		}
		for k, v := range c.After {
			cp.After[k] = v
		}
		out[a] = cp
	}
	return out
}

// latency is the delay the faults of an action add.
func (s *Server) latency(action string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, k := range []string{action, "*"} {
		d += s.faults[k].Latency
	}
	return d
}

// draw decides whether a fault strikes a call of action at point when, counts it and returns its code ("" for
// none). The action's own fault is drawn first, then the one set on "*".
func (s *Server) draw(action, when string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{action, "*"} {
		f, ok := s.faults[k]
		if !ok {
			continue
		}
		rates := f.Errors
		if when == After {
			rates = f.After
		}
		for _, c := range sortedCodes(rates) {
			if rand.Float64() >= rates[c] {
				continue
			}
			s.count(action, when, c)
			if f.Count > 0 {
				if f.Count--; f.Count == 0 {
					delete(s.faults, k)
				} else {
					s.faults[k] = f
				}
			}
			return c
		}
	}
	return ""
}

// count records one injected fault; s.mu must be held.
func (s *Server) count(action, when, code string) {
	c := s.injected[action]
	if c == nil {
		c = &FaultCounts{Before: map[string]int{}, After: map[string]int{}}
		s.injected[action] = c
	}
	if when == After {
		c.After[code]++
	} else {
		c.Before[code]++
	}
}

// strike answers a call with the injected fault code: its error, or for Reset no answer at all.
func strike(rw http.ResponseWriter, rid, code string) {
	if code == Reset {
		resetConn(rw)
		return
	}
	writeErr(rw, rid, apiErr(statusFor(code), code, "Injected by alisim."))
}

// resetConn closes the client's connection without a response: hijacked and closed with SO_LINGER 0, so the
// client sees a reset rather than an orderly end. Where the connection cannot be hijacked (HTTP/2), the handler
// is aborted, which also closes it unanswered.
func resetConn(rw http.ResponseWriter) {
	conn, _, err := http.NewResponseController(rw).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
