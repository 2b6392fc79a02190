package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCtlOrdersTriage (15.9): smp ctl orders list finds the orders whose
// payment is pending (INC-002 option B), filters by stage age, takes
// --limit, and says when more match (with the cursor of the next page)
// instead of stopping silently. Not parallel: the token comes from
// SMP_ADMIN_TOKEN.
func TestCtlOrdersTriage(t *testing.T) {
	a := startApp(t, func(c *Config) {
		c.RetryAfter = 1e9 // nobody dispatches them: the orders stay where they are
	})
	t.Setenv("SMP_ADMIN_TOKEN", a.admin)
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(append([]string{"ctl"}, args...), "--server", a.url), &out, &errb)
		return out.String() + errb.String(), err
	}
	var ids []string
	for range 3 {
		r := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":250000}`)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		ids = append(ids, r.Body["id"].(string))
	}
	if r := a.do("POST", "/admin/orders/"+ids[0]+"/mark-paid", a.admin, map[string]any{"reason": "INC-002 reconciled with inside"}); r.Status != 200 {
		t.Fatalf("mark-paid: %d %s", r.Status, r.Raw)
	}

	out, err := ctl("orders", "list", "--payment", "pending", "--output", "csv")
	if err != nil || strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) || !strings.Contains(out, ids[2]) {
		t.Fatalf("--payment pending: %v\n%s", err, out)
	}
	// One per page: the first page says more match and how to get them.
	out, err = ctl("orders", "list", "--payment", "pending", "--limit", "1")
	m := regexp.MustCompile(`more match: add --after (\S+) for the next page`).FindStringSubmatch(out)
	if err != nil || m == nil || !strings.Contains(out, ids[2]) {
		t.Fatalf("--limit 1: %v\n%s", err, out)
	}
	out, err = ctl("orders", "list", "--payment", "pending", "--limit", "1", "--after", m[1])
	if err != nil || !strings.Contains(out, ids[1]) || !strings.Contains(out, "1 orders\n") {
		t.Fatalf("second page: %v\n%s", err, out)
	}
	// Stage age: none of them has been in its stage for an hour.
	if out, err = ctl("orders", "list", "--older-than", "1h"); err != nil || !strings.Contains(out, "0 orders") {
		t.Fatalf("--older-than 1h: %v\n%s", err, out)
	}
	if _, err = ctl("orders", "list", "--payment", "maybe"); exitCode(err) != 1 || !strings.Contains(err.Error(), "unknown payment status") {
		t.Fatalf("--payment maybe: %v", err)
	}
	if _, err = ctl("orders", "list", "--limit", "0"); exitCode(err) != 2 {
		t.Fatalf("--limit 0: %v", err)
	}
}

// TestCtlFlagsShowsWhoAndWhen (15.9): smp ctl flags get shows when and by
// whom each flag was last set (they were blank).
func TestCtlFlagsShowsWhoAndWhen(t *testing.T) {
	a := startApp(t, nil)
	t.Setenv("SMP_ADMIN_TOKEN", a.admin)
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", a.admin, map[string]any{"value": false, "reason": "INC-001 option D"}); r.Status != 200 {
		t.Fatalf("set: %d %s", r.Status, r.Raw)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"ctl", "flags", "get", "--output", "csv", "--server", a.url}, &out, &errb)
	recs, cerr := csv.NewReader(&out).ReadAll()
	if err != nil || cerr != nil || len(recs) < 2 {
		t.Fatalf("flags get: %v %v %s", err, cerr, errb.String())
	}
	for _, rec := range recs[1:] {
		if rec[0] != "ENABLE_AUTO_DISPATCH" {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, rec[2]); rec[1] != "false" || err != nil || time.Since(at) > time.Minute || rec[3] == "" {
			t.Fatalf("ENABLE_AUTO_DISPATCH row %q: want false, updated now, by someone", rec)
		}
		return
	}
	t.Fatalf("no ENABLE_AUTO_DISPATCH in %q", recs)
}
