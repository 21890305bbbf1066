package sim

import "fmt"

// APIError is an error answer: an HTTP status and the body {"RequestId","HostId","Code","Message","Recommend"}.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The documented refusals.
var (
	errThrottlingUser = func() *APIError {
		return apiErr(400, "Throttling.User", "Request was denied due to user flow control.")
	}
	errQuota = func() *APIError {
		return apiErr(400, "QuotaExceeded", "Route entry quota exceeded in this route table.")
	}
	errTaskConflict = func() *APIError {
		return apiErr(400, "TaskConflict", "The operation is too frequent, please wait a moment and try again.")
	}
	errIncorrectStatus = func() *APIError {
		return apiErr(400, "IncorrectRouteEntryStatus", "The route table contains routes in the Pending or Modifying state.")
	}
)

// knownStatus maps fault-injected codes to their HTTP statuses.
var knownStatus = map[string]int{
	"Throttling": 400, "Throttling.User": 400, "Throttling.Api": 400, "ServiceUnavailable": 503, "InternalError": 500,
	"QuotaExceeded": 400, "TaskConflict": 400, "IncorrectRouteEntryStatus": 400, "OperationConflict": 400,
	"SystemBusy": 400, "InvalidRouteTableId.NotFound": 404, "InvalidNextHopId.NotFound": 404,
	"OperationFailed.DistibuteLock": 400, "IncorrectVpcStatus": 400,
}

func statusFor(code string) int {
	if s, ok := knownStatus[code]; ok {
		return s
	}
	return 400
}
