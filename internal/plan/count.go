package plan

import (
	"fmt"
	"math/big"
)

// MaxCount is where counts saturate: 2^53-1, the largest integer a JSON number carries exactly (an IPv6 node
// subnet holds far more addresses than any cluster has pods).
const MaxCount = 1<<53 - 1

// pow2 is 2^n, saturated.
func pow2(n int) int64 {
	if n >= 53 {
		return MaxCount
	}
	return 1 << n
}

// saturate narrows a big count to int64, saturated.
func saturate(x *big.Int) int64 {
	if x.Cmp(big.NewInt(MaxCount)) > 0 {
		return MaxCount
	}
	return x.Int64()
}

// sub is a - b, where a saturated count stays saturated.
func sub(a, b int64) int64 {
	if a == MaxCount {
		return a
	}
	return a - b
}

// mul is a * b, saturated.
func mul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > MaxCount/b {
		return MaxCount
	}
	return a * b
}

// count prints a saturated count readably.
func count(n int64) string {
	if n >= MaxCount {
		return "more than 2^53"
	}
	return fmt.Sprint(n)
}
