// Package common stands in for the tencentcloud SDK's common package, whose pinned version the Go module proxy
// does not serve. Only upstream flanneld's tencent-vpc backend uses it; weft's tests never select that backend.
package common

// StringPtr returns a pointer to s.
func StringPtr(s string) *string { return &s }

// StringPtrs returns pointers to each element of s.
func StringPtrs(s []string) []*string {
	p := make([]*string, 0, len(s))
	for i := range s {
		p = append(p, &s[i])
	}
	return p
}

// BoolPtr returns a pointer to b.
func BoolPtr(b bool) *bool { return &b }
