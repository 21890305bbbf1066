package reconcile

// Findings: how a disagreement of the truths is reported (a Finding) and recorded (a Quarantined record with its
// Reason), and the one-line messages that name the address, ENI and pod.

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// quarantine reports a record and returns it Quarantined; detail ends with the record as the subject.
func (r *reconciler) quarantine(a netip.Addr, c checkpoint.Record, kind, detail string) checkpoint.Record {
	r.findOnly(a, c, kind, detail+" is quarantined.")
	c.State, c.Reason = checkpoint.Quarantined, reason(kind, detail+" is quarantined")
	return c
}

// reason is a Quarantined record's Reason: the kind, then the disagreement.
func reason(kind, detail string) string { return kind + ": " + sanitize(detail) }

// invalid turns a record Validate refuses into a Quarantined one that Validate accepts: the pod's fields are kept
// only if they are themselves valid, so the pool can always save what Reconcile hands it.
func (r *reconciler) invalid(rec checkpoint.Record, err error) checkpoint.Record {
	q := rec
	q.State = checkpoint.Quarantined
	q.Reason = ""
	if q.Validate() != nil {
		q = checkpoint.Record{IP: rec.IP, State: checkpoint.Quarantined, ENI: rec.ENI}
		if q.Validate() != nil {
			q.ENI = ""
		}
	}
	detail := fmt.Sprintf("Checkpoint record of address %s on ENI %s for %s is invalid (%s)", rec.IP, orNone(rec.ENI), pod(rec), sanitize(err.Error()))
	r.find(rec.IP, q, KindInvalid, detail, "quarantined")
	q.Reason = reason(KindInvalid, detail)
	return q
}

// find reports a finding whose message is detail and what was done (if detail does not say it).
func (r *reconciler) find(a netip.Addr, rec checkpoint.Record, kind, detail, done string) {
	if done != "" {
		detail += "; " + done
	}
	r.findOnly(a, rec, kind, detail+".")
}

func others(n int) string {
	if n == 1 {
		return "another pod"
	}
	return fmt.Sprintf("%d other pods", n)
}

func (r *reconciler) findOnly(a netip.Addr, rec checkpoint.Record, kind, msg string) {
	r.findings = append(r.findings, Finding{IP: a, ContainerID: rec.ContainerID, ENI: rec.ENI, Kind: kind, Message: sanitize(msg)})
}

// pod names a record's pod for a message: "pod default/web-0 (container 0123456789ab, eth0)".
func pod(r checkpoint.Record) string {
	id := r.ContainerID
	if len(id) > 12 {
		id = id[:12]
	}
	var s string
	switch {
	case r.PodName != "" && id != "":
		s = fmt.Sprintf("pod %s/%s (container %s, %s)", r.PodNamespace, r.PodName, id, orNone(r.IfName))
	case r.PodName != "":
		s = fmt.Sprintf("pod %s/%s", r.PodNamespace, r.PodName)
	case id != "":
		s = fmt.Sprintf("container %s (%s)", id, orNone(r.IfName))
	default:
		s = "no known pod"
	}
	return sanitize(s)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return sanitize(s)
}

// sanitize keeps a message on one line whatever a record held.
func sanitize(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, s)
}
