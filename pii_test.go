package smp

import (
	"strings"
	"testing"
)

// TestColumnListsWellFormed: no column listed twice or in both classes,
// no table without columns. (tests/schema holds the lists to the real,
// migrated schemas.)
func TestColumnListsWellFormed(t *testing.T) {
	t.Parallel()
	for table, tc := range columnLists {
		seen := map[string]bool{}
		for _, c := range append(strings.Fields(tc.pii), strings.Fields(tc.notPII)...) {
			if seen[c] {
				t.Errorf("%s.%s listed twice", table, c)
			}
			seen[c] = true
		}
		if len(seen) == 0 {
			t.Errorf("%s: no columns", table)
		}
	}
}

func TestColumnClass(t *testing.T) {
	t.Parallel()
	got := buildClasses(map[string]tableClass{"t": {pii: "a", notPII: "a b"}})
	if got["t"]["a"] != PII || got["t"]["b"] != NotPII || len(got["t"]) != 2 {
		t.Errorf("a column in both lists must be PII: %v", got)
	}
	if _, ok := ColumnClass("orders", "no_such_column"); ok {
		t.Error("an unknown column must not be classified")
	}
	if c, _ := ColumnClass("customers", "phone"); c != PII {
		t.Errorf("customers.phone = %q, want pii", c)
	}
	if c, _ := ColumnClass("orders", "stage"); c != NotPII {
		t.Errorf("orders.stage = %q, want not_pii", c)
	}
	all := ClassifiedColumns()
	all["customers"]["phone"] = NotPII
	if c, _ := ColumnClass("customers", "phone"); c != PII {
		t.Error("ClassifiedColumns must return a copy")
	}
}
