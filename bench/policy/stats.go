package main

// What the kernel and /proc say: weftd's CPU time (utime+stime of /proc/<pid>/stat) and RSS (VmRSS of
// /proc/<pid>/status), and the size of the table inet weft-policy (`nft -j list table`).

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times (100 on every Linux this runs on).
const clockTick = 100

// cpuTime is a process's user+system CPU time so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime+stime (fields 14 and 15) from a /proc/<pid>/stat line; the command name in
// parentheses may hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: expected \"pid (comm) state ...\"", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command, expected at least 13", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat utime %q stime %q: expected integers", f[11], f[12])
	}
	return time.Duration(u+st) * time.Second / clockTick, nil
}

// rssKB is a process's VmRSS in kB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// usage is CPU used over a window, as a share of one CPU.
type usage struct {
	cpu, wall time.Duration
}

func (u usage) percent() float64 {
	if u.wall <= 0 {
		return 0
	}
	return 100 * u.cpu.Seconds() / u.wall.Seconds()
}

// idleUsage measures pid's CPU over d doing nothing.
func idleUsage(pid int, d time.Duration) (usage, error) {
	c0, err := cpuTime(pid)
	if err != nil {
		return usage{}, err
	}
	t0 := time.Now()
	time.Sleep(d)
	c1, err := cpuTime(pid)
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: c1 - c0, wall: time.Since(t0)}, nil
}

// tableSize counts what `nft -j list table inet weft-policy` holds.
type tableSize struct {
	chains, rules, sets, setElems, maps, mapElems, counters int
	bytes                                                   int // of the JSON listing
}

func listTable(ns string) (tableSize, error) {
	out, err := lab.NSRun(ns, "nft", "-j", "list", "table", "inet", "weft-policy")
	if err != nil {
		return tableSize{}, err
	}
	return parseTable([]byte(out))
}

func parseTable(b []byte) (tableSize, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return tableSize{}, fmt.Errorf("nft -j output: %w", err)
	}
	t := tableSize{bytes: len(b)}
	for _, o := range doc.Nftables {
		for kind, raw := range o {
			var el struct {
				Elem []json.RawMessage `json:"elem"`
			}
			switch kind {
			case "chain":
				t.chains++
			case "rule":
				t.rules++
			case "counter":
				t.counters++
			case "set":
				t.sets++
				_ = json.Unmarshal(raw, &el)
				t.setElems += len(el.Elem)
			case "map":
				t.maps++
				_ = json.Unmarshal(raw, &el)
				t.mapElems += len(el.Elem)
			}
		}
	}
	return t, nil
}

// counterByComment finds the named counter whose comment is c (a policy's "ns/name ingress denied").
func counterByComment(ns, c string) (string, error) {
	out, err := lab.NSRun(ns, "nft", "-j", "list", "counters", "table", "inet", "weft-policy")
	if err != nil {
		return "", err
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Comment string `json:"comment"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return "", fmt.Errorf("nft -j list counters: %w", err)
	}
	for _, o := range doc.Nftables {
		if o.Counter != nil && o.Counter.Comment == c {
			return o.Counter.Name, nil
		}
	}
	return "", fmt.Errorf("no counter with comment %q in table inet weft-policy", c)
}
