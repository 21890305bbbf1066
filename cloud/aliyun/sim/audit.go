package sim

import "time"

// The write audit: every applied write with the credentials that made it, so drills can tell which node wrote
// to the table when (a leader handover must never have two writers in the same window). It lives in memory,
// not in the state file, and keeps the most recent maxWrites records.

// Write is one applied write.
type Write struct {
	At          time.Time `json:"at"`
	Action      string    `json:"action"`
	AccessKeyID string    `json:"accessKeyId"`
	// Instance is the instance the key was issued to by the metadata server's RAM role (an STS key); "" for a
	// long-term key.
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId"`
	// Lost is the code of the after-fault that lost the reply ("InternalError", "reset", ...), "" when the client
	// got the answer.
	Lost string `json:"lost,omitempty"`
}

const maxWrites = 20000

// record appends a write to the audit; mu must be held.
func (w *World) record(rec Write) {
	if len(w.writes) >= maxWrites {
		n := copy(w.writes, w.writes[len(w.writes)-maxWrites/2:])
		w.dropped += len(w.writes) - n
		w.writes = w.writes[:n]
	}
	w.writes = append(w.writes, rec)
}

// Writes returns the audit of applied writes, oldest first, and how many older records were dropped.
func (w *World) Writes() ([]Write, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Write(nil), w.writes...), w.dropped
}
