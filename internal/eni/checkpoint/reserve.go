package checkpoint

import "fmt"

// Fixed pod addresses (version 2). A pod that should keep its address across deletion and re-creation (a
// StatefulSet's pod, or one annotated k8s.aliyun.com/pod-ip-reservation: "true") holds an Assigned record with
// Reserve set, and StatefulSet naming its owner if it has one. Its release turns the record Reserved: the
// container and netns go (the pod key is the pod's namespace, name and interface), ReleasedAt is the release,
// ReservedUntil the end of the reservation. The next pod of that name gets the address again; no other pod does.

// reserveProblems lists what is wrong with a record's reservation fields, each starting with the field's JSON name:
// a Reserved record names its pod (podNamespace, podName) and interface, has releasedAt and a reservedUntil not
// before it, has Reserve set and no containerID or netns; reservedUntil belongs to Reserved records only; Reserve
// to Assigned and Reserved ones; statefulSet is a name (the pod's owner) only where Reserve is set.
func (r Record) reserveProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if r.State == Reserved {
		if r.PodName == "" || r.PodNamespace == "" {
			add("podName: empty, expected the namespace and name of the pod a Reserved address is kept for")
		}
		if r.IfName == "" {
			add("ifName: empty, expected the interface of the pod a Reserved address is kept for")
		}
		if r.ContainerID != "" || r.Netns != "" {
			add("containerID: %q (netns %q), expected none in a Reserved record (the pod's container is gone)", r.ContainerID, r.Netns)
		}
		if !r.Reserve {
			add("reserve: false, expected true in a Reserved record")
		}
		switch {
		case r.ReleasedAt.IsZero():
			add("releasedAt: missing, expected the time a Reserved address was released by its pod")
		case r.ReservedUntil.IsZero():
			add("reservedUntil: missing, expected the end of the reservation")
		case r.ReservedUntil.Before(r.ReleasedAt):
			add("reservedUntil: %s, expected not before releasedAt (%s)", r.ReservedUntil.Format("2006-01-02T15:04:05Z07:00"), r.ReleasedAt.Format("2006-01-02T15:04:05Z07:00"))
		}
	} else if !r.ReservedUntil.IsZero() {
		add("reservedUntil: set in a %s record, expected only in a Reserved one", r.State)
	}
	if r.Reserve && r.State != Assigned && r.State != Reserved {
		add("reserve: true in a %s record, expected only in an Assigned or Reserved one", r.State)
	}
	if r.StatefulSet != "" {
		if !r.Reserve {
			add("statefulSet: %q without reserve, expected only in a record whose address is kept for its pod", r.StatefulSet)
		}
		if err := checkName(r.StatefulSet); err != nil {
			add("statefulSet: %v", err)
		}
	}
	return p
}

// checkName: a Kubernetes object name (a DNS subdomain: at most 253 bytes of lower-case letters, digits, '-' and
// '.').
func checkName(s string) error {
	ok := len(s) <= 253
	for _, c := range s {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.')
	}
	if !ok {
		return fmt.Errorf("%q, expected an object name (at most 253 lower-case letters, digits, '-' and '.')", s)
	}
	return nil
}
