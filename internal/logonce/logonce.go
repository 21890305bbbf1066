// Package logonce remembers what has been logged about a thing (a peer, a stored key), so a bad input is
// reported once when it appears or changes, not on every reconcile or re-list.
package logonce

import "sync"

// Set remembers, per key, the last reason logged. The zero value is ready; it is safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	said map[string]string
}

// First reports whether reason is new for key, and records it. Forget drops keys no longer present.
func (w *Set) First(key, reason string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.said == nil {
		w.said = map[string]string{}
	}
	if w.said[key] == reason {
		return false
	}
	w.said[key] = reason
	return true
}

// Keep forgets every key for which keep returns false (peers that went away), so their reason is said again if
// they come back bad.
func (w *Set) Keep(keep func(key string) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.said {
		if !keep(k) {
			delete(w.said, k)
		}
	}
}
