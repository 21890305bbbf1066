package sim

import (
	"strings"
	"testing"
)

// One signed DescribeVpcs with an absurd page number used to panic inside the handler with the world lock held,
// after which the API, the admin API and the metadata server hung for ever.
func TestHugePageNumberIsRefusedAndTheWorldStaysUsable(t *testing.T) {
	r := newRig(t)
	code, body := r.call("DescribeVpcs", map[string]string{"PageNumber": "9223372036854775807"})
	if code != 400 || body["Code"] != "InvalidParameter" || !strings.Contains(body["Message"].(string), "PageNumber") {
		t.Fatalf("DescribeVpcs PageNumber=MaxInt64: %d %v", code, body)
	}
	r.adminGet("/admin/state")
	if code, body := r.call("DescribeVpcs", nil); code != 200 {
		t.Fatalf("next call: %d %v", code, body)
	}
}
