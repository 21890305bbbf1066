package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
)

// APIError is a refusal from the service (or alisim): code, HTTP status and message. Match codes with Code or
// errors.As; never compare Error() strings.
type APIError struct {
	Action    string
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Action, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s (HTTP %d): %s [request %s]", e.Action, e.Code, e.Status, e.Message, e.RequestID)
}

// Code returns the service error code of err, or "".
func Code(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IsVSwitchExhausted tells whether err says the vSwitch has no free address left (InvalidVSwitchId.IpNotEnough,
// QuotaExceeded.PrivateIpAddress): take the vSwitch out of selection until addresses come back.
func IsVSwitchExhausted(err error) bool {
	c := Code(err)
	return c == "InvalidVSwitchId.IpNotEnough" || c == "QuotaExceeded.PrivateIpAddress"
}

// IsENILimit tells whether err says the instance holds as many ENIs as its type allows
// (EniPerInstanceLimitExceeded).
func IsENILimit(err error) bool { return Code(err) == "EniPerInstanceLimitExceeded" }

// IsThrottled tells whether err is the service's flow control (Throttling, Throttling.User, Throttling.Api, ...).
func IsThrottled(err error) bool { return strings.HasPrefix(Code(err), "Throttling") }

// retryable are the codes a careful client retries after a short wait (alibaba-api.md).
var retryable = map[string]bool{
	"Throttling": true, "Throttling.User": true, "Throttling.Api": true, "ServiceUnavailable": true, "InternalError": true,
	"TaskConflict": true, "OperationConflict": true, "IncorrectRouteEntryStatus": true, "SystemBusy": true,
	"LastTokenProcessing": true, "OperationFailed.DistibuteLock": true, "IncorrectVpcStatus": true,
	"IncorrectInstanceStatus": true, "Operation.Conflict": true,
}

// Retryable tells whether err is worth retrying (throttling, busy tables, transient server and network errors).
func Retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return retryable[ae.Code] || ae.Status >= 500
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotAPIAnswer)
}

// outcome is the bounded metrics label of a call's result.
func outcome(err error) string {
	var ae *APIError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae) && strings.HasPrefix(ae.Code, "Throttling"):
		return "throttled"
	case errors.As(err, &ae) && ae.Status >= 500:
		return "server_error"
	case errors.As(err, &ae):
		return "refused"
	default:
		return "network_error"
	}
}

// translate turns SDK errors into APIError, and other errors into messages without request URLs (which carry
// the access key id and signature).
func translate(action string, err error) error {
	if err == nil {
		return nil
	}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		if se.ErrorCode() == "" {
			// Not the API's error body (a proxy's or load balancer's page, garbage): say so, briefly.
			return &APIError{Action: action, Status: se.HttpStatus(), Code: "", RequestID: se.RequestId(),
				Message: "the answer is not the API's error JSON " + describeBody("", []byte(se.Message()))}
		}
		return &APIError{Action: action, Status: se.HttpStatus(), Code: se.ErrorCode(), Message: serviceMessage(se.ErrorCode(), se.Message()),
			RequestID: se.RequestId()}
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) && ce.ErrorCode() == sdkerrors.JsonUnmarshalErrorCode {
		detail := "?"
		if o := ce.OriginError(); o != nil {
			detail = excerpt(o.Error(), 200)
		}
		return fmt.Errorf("%s: %w: its JSON does not have the shape of a %s answer (%s)", action, ErrNotAPIAnswer, action, detail)
	}
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: client error %s: %s", action, ce.ErrorCode(), redactURL(ce.Message()))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		// "Post \"http://host/?<signed query>\": dial tcp ...": the host is worth naming, the query is a secret.
		host := "the endpoint"
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Errorf("%s: %s %s: %s", action, strings.ToUpper(ue.Op), host, redactURL(ue.Err.Error()))
	}
	return fmt.Errorf("%s: %s", action, redactURL(err.Error()))
}

// quotesSecrets are the codes whose message on the real service quotes the request's string to sign, which
// holds the STS security token and every parameter: such a message never leaves this package.
var quotesSecrets = map[string]string{
	"SignatureDoesNotMatch": "the request signature does not match: check the AccessKey secret (the service's message, which quotes the string to sign, is dropped)",
	"IncompleteSignature":   "the request signature is incomplete (the service's message, which quotes the string to sign, is dropped)",
}

// serviceMessage is what an error keeps of the service's message: a fixed text for the codes that quote
// secrets, else the message with any URL's query dropped.
func serviceMessage(code, msg string) string {
	if m, ok := quotesSecrets[code]; ok {
		return m
	}
	return redactURL(msg)
}

// redactURL drops the query string of every URL in s (it ends at a space or a quote): request URLs carry the
// access key id, the signature and the request's parameters.
func redactURL(s string) string {
	const mark = "?<redacted>"
	var b strings.Builder
	for {
		i := strings.Index(s, "?")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(mark)
		j := strings.IndexAny(s[i:], " \"'")
		if j < 0 {
			return b.String()
		}
		s = s[i+j:]
	}
}
