package smp

import (
	"encoding/json"
	"testing"
)

func TestParsePhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+84901234567":     "+84901234567",
		"0901234567":       "+84901234567",
		"84 90 123 4567":   "+84901234567",
		"090.123.4567":     "+84901234567",
		"+84 28 3822 1234": "+842838221234",
		"":                 "",
		"+1 415 555 0100":  "",
		"+8490123456":      "", // one digit short
		"+849012345678":    "", // one digit too many
		"+84101234567":     "", // no such prefix
		"090123456a":       "",
	} {
		got, err := ParsePhone(in)
		if want == "" {
			if ErrorCode(err) != EINVALID {
				t.Errorf("ParsePhone(%q) = %q, %v; want EINVALID", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParsePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestBasisPoints(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]BasisPoints{`15`: 1500, `12.5`: 1250, `"12.50"`: 1250, `0.01`: 1, `0`: 0, `100`: 10000} {
		var b BasisPoints
		if err := json.Unmarshal([]byte(in), &b); err != nil || b != want {
			t.Errorf("unmarshal %s = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{`12.345`, `1e2`, `"abc"`, `true`} {
		var b BasisPoints
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("unmarshal %s = %d, want an error", in, b)
		}
	}
	for b, want := range map[BasisPoints]string{1500: "15", 1250: "12.5", 1: "0.01", 0: "0", 1005: "10.05"} {
		if got, _ := json.Marshal(b); string(got) != want {
			t.Errorf("marshal %d = %s, want %s", b, got, want)
		}
	}
	if got := BasisPoints(1250).Of(350_000); got != 43_750 {
		t.Errorf("12.5%% of 350000 = %d", got)
	}
}
