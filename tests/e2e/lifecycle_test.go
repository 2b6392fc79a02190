package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"smp"
)

// lifecycleStore is what the lifecycle checks read.
type lifecycleStore interface {
	smp.OrderStore
	smp.CatalogStore
	smp.DispatchTraceStore
}

// waitAllCompleted polls until every acknowledged order is 05_completed;
// a missing order fails at once (it was lost), a stuck one after d.
func waitAllCompleted(t *testing.T, store lifecycleStore, acked []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var stuck []string
		for _, id := range acked {
			o, err := store.FindOrderByID(context.Background(), id)
			if err != nil {
				t.Fatalf("acknowledged order %s lost: %v", id, err)
			}
			if o.Stage != smp.StageCompleted {
				stuck = append(stuck, fmt.Sprintf("%s:%s:%s", o.ID, o.Stage, o.TechnicianID))
			}
		}
		if len(stuck) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, id := range acked {
				if o, _ := store.FindOrderByID(context.Background(), id); o.Stage != smp.StageCompleted {
					tr, _ := store.FindDispatchTrace(context.Background(), id)
					t.Logf("%s trace: %+v", id, tr)
				}
			}
			t.Fatalf("orders not completed after %s: %v", d, stuck)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// checkLifecycles: each order was assigned exactly once, and no
// technician's jobs overlap (assignment to completion). It returns how
// many technicians worked.
func checkLifecycles(t *testing.T, store lifecycleStore, acked []string) int {
	t.Helper()
	type job struct {
		order       string
		from, until time.Time
	}
	ctx := context.Background()
	jobs := map[string][]job{}
	for _, id := range acked {
		o, err := store.FindOrderByID(ctx, id)
		must(t, err)
		ts, err := store.FindTransitions(ctx, id)
		must(t, err)
		n := 0
		var from, until time.Time
		for _, tr := range ts {
			switch tr.To {
			case smp.StageAssigned:
				n++
				from = tr.At
			case smp.StageCompleted, smp.StageCancelled:
				until = tr.At
			}
		}
		if n != 1 {
			t.Fatalf("order %s was assigned %d times", id, n)
		}
		jobs[o.TechnicianID] = append(jobs[o.TechnicianID], job{id, from, until})
	}
	for tech, js := range jobs {
		sort.Slice(js, func(i, j int) bool { return js[i].from.Before(js[j].from) })
		for i := 1; i < len(js); i++ {
			if js[i].from.Before(js[i-1].until) {
				t.Fatalf("technician %s was double-booked: %s assigned at %s before %s finished at %s", tech, js[i].order, js[i].from, js[i-1].order, js[i-1].until)
			}
		}
		if tt, _ := store.FindTechnicianByID(ctx, tech); tt.ActiveOrderID != "" {
			t.Fatalf("technician %s still holds %s after every order completed", tech, tt.ActiveOrderID)
		}
	}
	return len(jobs)
}
