package payments_test

import (
	"strconv"
	"strings"
	"time"
)

func timeOf(header string) time.Time {
	for _, p := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "t="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return time.Unix(n, 0)
		}
	}
	return time.Time{}
}

func containsV1(header, signed string) bool {
	_, want, _ := strings.Cut(signed, ",v1=")
	for _, p := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "v1="); ok && strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}
