package sim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// params are an RPC call's merged query and form parameters. Everything read from them is checked here: numbers
// against their documented ranges, and lists (Name.1, Name.2, ...) for gaps, since the service's parameter
// layer refuses what the SDK would never send rather than guessing.
type params map[string]string

func (p params) get(k string) string { return p[k] }

// maxInt32 bounds the API's Integer parameters (32-bit on the service).
const maxInt32 = math.MaxInt32

// errParam is the refusal of a parameter value, naming the parameter and what was expected.
func errParam(name, value, want string) *APIError {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return apiErr(400, "InvalidParameter", "The specified parameter %s %q is not valid: expected %s.", name, value, want)
}

// intIn reads an integer parameter that must lie within lo..hi; def when absent or empty.
func (p params) intIn(name string, def, lo, hi int) (int, *APIError) {
	v := p.get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < int64(lo) || n > int64(hi) {
		return 0, errParam(name, v, fmt.Sprintf("an integer within %d..%d", lo, hi))
	}
	return int(n), nil
}

// count returns how many elements a list parameter holds: the N of every key name.N and name.N.<field>, which
// must run 1..count without gaps (the SDK numbers them so; a request with entries 1 and 3 is refused, naming the
// missing 2, instead of silently dropping 3).
func (p params) count(name string) (int, *APIError) {
	prefix := name + "."
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 || strconv.Itoa(n) != idx {
			return 0, errParam(k, p[k], fmt.Sprintf("%s.N with N an integer from 1", name))
		}
		seen[n] = true
	}
	for i := 1; i <= len(seen); i++ {
		if !seen[i] {
			var got []int
			for n := range seen {
				got = append(got, n)
			}
			sort.Ints(got)
			return 0, apiErr(400, "InvalidParameter", "The parameter %s.%d is missing: %s.N must be numbered 1..%d without gaps (given: %v).",
				name, i, name, len(seen), got)
		}
	}
	return len(seen), nil
}

// list reads the string list Name.1, Name.2, ... (see count).
func (p params) list(name string) ([]string, *APIError) {
	n, err := p.count(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, p.get(fmt.Sprintf("%s.%d", name, i)))
	}
	return out, nil
}

// pairs reads Name.N.Key / Name.N.Value lists (tags, quota dimensions) in order.
func (p params) pairs(name string) ([][2]string, *APIError) {
	n, err := p.count(name)
	if err != nil {
		return nil, err
	}
	out := make([][2]string, 0, n)
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("%s.%d.", name, i)
		out = append(out, [2]string{p.get(k + "Key"), p.get(k + "Value")})
	}
	return out, nil
}
