package backend

import (
	"encoding/json"
	"sync"
)

var (
	checkMu sync.Mutex
	checks  = map[string]func(json.RawMessage) error{}
)

// RegisterConfigCheck lets a backend validate its net-conf.json Backend object without setting anything up, so a
// static configuration (Kubernetes mode's file) is refused at start with the field named instead of failing every
// RegisterNetwork retry.
func RegisterConfigCheck(name string, check func(json.RawMessage) error) {
	checkMu.Lock()
	defer checkMu.Unlock()
	checks[name] = check
}

// CheckConfig validates the Backend object of the backend called name; nil when it has no check.
func CheckConfig(name string, raw json.RawMessage) error {
	checkMu.Lock()
	check := checks[name]
	checkMu.Unlock()
	if check == nil {
		return nil
	}
	return check(raw)
}
