package recon

import (
	"math/big"
	"regexp"
)

// Exact arithmetic for the comparison: no float touches money or its
// percentages.

var decimalRE = regexp.MustCompile(`^[0-9]{1,20}(\.[0-9]{1,12})?$`)

func validDecimal(s string) bool { return decimalRE.MatchString(s) }

// convert returns amount (a decimal string) × rate (a decimal string) in
// whole VND, rounded half away from zero. ok is false for a value that
// is not a decimal.
func convert(amount, rate string) (vnd int64, ok bool) {
	a, ok1 := new(big.Rat).SetString(amount)
	r, ok2 := new(big.Rat).SetString(rate)
	if !ok1 || !ok2 || !validDecimal(amount) {
		return 0, false
	}
	p := new(big.Rat).Mul(a, r)
	// round half up (p ≥ 0): floor(p + 1/2)
	p.Add(p, big.NewRat(1, 2))
	q := new(big.Int).Quo(p.Num(), p.Denom())
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// pctOf returns |diff| / |base| in percent as a decimal string with 4
// places (rounded half up); "100.0000" when base is 0 and diff is not.
func pctOf(diff, base int64) string {
	if diff == 0 {
		return "0.0000"
	}
	if base == 0 {
		return "100.0000"
	}
	// units of 0.0001 % : |diff| × 10^6 / |base|, rounded half up
	n := new(big.Int).Mul(big.NewInt(abs64(diff)), big.NewInt(1_000_000))
	d := big.NewInt(abs64(base))
	n.Mul(n, big.NewInt(2)).Add(n, d)
	d2 := new(big.Int).Mul(d, big.NewInt(2))
	u := new(big.Int).Quo(n, d2)
	s := u.String()
	for len(s) < 5 {
		s = "0" + s
	}
	return s[:len(s)-4] + "." + s[len(s)-4:]
}

// overThreshold reports whether diff is a mismatch against base: above
// 0.01 % of |base| (exactly: |diff| × 10,000 > |base|) or above
// ReconMaxDiffVND in absolute value.
func overThreshold(diff, base int64, maxVND int64) bool {
	if abs64(diff) > maxVND {
		return true
	}
	if diff == 0 {
		return false
	}
	l := new(big.Int).Mul(big.NewInt(abs64(diff)), big.NewInt(10_000))
	return l.Cmp(big.NewInt(abs64(base))) > 0
}

// cmpPct compares two percentages written by pctOf.
func cmpPct(a, b string) int {
	ra, ok1 := new(big.Rat).SetString(a)
	rb, ok2 := new(big.Rat).SetString(b)
	if !ok1 || !ok2 {
		return 0
	}
	return ra.Cmp(rb)
}

// pctFloat is a percentage for a metric (a gauge is a float; the stored
// figure stays the exact string).
func pctFloat(p string) float64 {
	r, ok := new(big.Rat).SetString(p)
	if !ok {
		return 0
	}
	f, _ := r.Float64()
	return f
}
