package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
	"smp/app"
	"smp/internal/wait"
)

// TestQueueGrowsWhileEngineDown (issue 15 item 3): each order is pushed
// onto dispatch:queue:{CITY} right after it commits in 02_dispatching
// (dispatch on commit; the order-svc intake is the fallback), and the
// engine drains it. With the engine stopped (INC-001) the
// runbook's `LLEN dispatch:queue:HCMC` grows; once it runs again the
// queue drains to 0 and every order is dispatched and completed.
func TestQueueGrowsWhileEngineDown(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := randomPrefix()
	a := startApp(t, func(c *Config) { c.RedisAddr, c.RedisPrefix = addr, prefix })
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	bg := context.Background()
	t.Cleanup(func() {
		iter := rdb.Scan(bg, 0, prefix+"*", 500).Iterator()
		for iter.Next(bg) {
			rdb.Unlink(bg, iter.Val())
		}
	})
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	startTechnicians(t, ctx, &wg, a)

	llen := func() int64 {
		n, err := rdb.LLen(bg, prefix+smp.QueueKey("HCMC")).Result()
		must(t, err)
		return n
	}
	must(t, a.StopModule(bg, app.ServiceDispatchEngine))
	const n = 8
	ids := placeOrders(t, a, n, "with the engine stopped")
	wait.Until(t, 15*time.Second, fmt.Sprintf("LLEN dispatch:queue:HCMC = %d with the engine stopped", n), func() bool {
		return llen() == n && allIn(t, a, ids, smp.StageDispatching)
	})

	must(t, a.StartModule(bg, app.ServiceDispatchEngine))
	wait.Until(t, 60*time.Second, "the queue drained and every order completed after the engine restarted", func() bool {
		return llen() == 0 && allIn(t, a, ids, smp.StageCompleted)
	})
	if err := a.StartModule(bg, app.ServiceDispatchEngine); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("starting the running engine again: %v, want ENOTFOUND", err)
	}
}
