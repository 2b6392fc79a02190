package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"smp/internal/wait"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
	"smp/app"
	"smp/internal/envtest"
	"smp/redisstore"
	"smp/sim"
)

// redisAddr is the test Redis (SMP_TEST_REDIS_ADDR, or 127.0.0.1:6379),
// skipping tb, visibly, when there is none.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(tb, "Redis", why)
	}
	return addr
}

func randomPrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b) + ":"
}

// runLoad connects the seeded technicians and places n orders, waiting
// until every acknowledged order is completed.
func runLoad(t *testing.T, a *testApp, n int, rate float64) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	startTechnicians(t, ctx, &wg, a)
	cust := &sim.Customers{BaseURL: a.url, Customers: a.ds.Customers, Cities: a.ds.Cities, Services: a.ds.Services, Rate: rate, Max: n, Seed: 5}
	wg.Add(1)
	go func() { defer wg.Done(); cust.Run(ctx) }()
	wait.Until(t, 30*time.Second, fmt.Sprintf("%d orders placed", n), func() bool { return len(cust.Created()) >= n })
	ids := cust.Created()
	deadline := time.Now().Add(60 * time.Second)
	for !allIn(t, a, ids, smp.StageCompleted) {
		if time.Now().After(deadline) {
			for _, id := range ids {
				o, _ := a.Store.FindOrderByID(context.Background(), id)
				if o.Stage != smp.StageCompleted {
					tr, _ := a.Store.FindDispatchTrace(context.Background(), id)
					t.Errorf("order %s is %s (technician %q); trace %+v", id, o.Stage, o.TechnicianID, tr)
				}
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	return ids
}

// startTechnicians connects every seeded technician (accepting every
// offer, quick jobs) until ctx ends, and waits until they are online.
func startTechnicians(t *testing.T, ctx context.Context, wg *sync.WaitGroup, a *testApp) {
	t.Helper()
	for i, tech := range a.ds.Technicians {
		st := sim.NewTechnician(a.url, tech, sim.Behavior{AcceptRate: 1, ThinkMin: 5 * time.Millisecond, // no declines: a declined order may rightly wait for ops
			ThinkMax: 50 * time.Millisecond, StartAfter: 50 * time.Millisecond, WorkFor: 100 * time.Millisecond}, uint64(i+1), nil)
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(ctx) }()
	}
	wait.Until(t, 15*time.Second, "technicians online", func() bool { return a.Hub.Connections() == len(a.ds.Technicians) })
}

// placeOrders places n orders in HCMC through the API and fails the test
// (saying when) if one is refused.
func placeOrders(t *testing.T, a *testApp, n int, when string) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		r := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, fmt.Sprintf(`{"city":"HCMC","service":"plumbing","lat":10.78,"lng":%f,"price_vnd":250000}`, 106.70+float64(i)*0.001))
		if r.Status != 201 {
			t.Fatalf("order refused %s: %d %s", when, r.Status, r.Raw)
		}
		ids = append(ids, r.Body["id"].(string))
	}
	return ids
}

func allIn(t *testing.T, a *testApp, ids []string, stage smp.Stage) bool {
	for _, id := range ids {
		o, err := a.Store.FindOrderByID(context.Background(), id)
		must(t, err)
		if o.Stage != stage {
			return false
		}
	}
	return true
}

// TestRedisKeysExpire: after real load on Redis, every key belongs to a
// declared class, and only persistent classes have no TTL; invitations are
// gone for assigned orders.
func TestRedisKeysExpire(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := randomPrefix()
	a := startApp(t, func(c *Config) { c.RedisAddr, c.RedisPrefix = addr, prefix })
	ids := runLoad(t, a, 40, 20)

	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	t.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
	})
	seen := map[string]int{}
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator() // SCAN, never KEYS
	for iter.Next(ctx) {
		key := strings.TrimPrefix(iter.Val(), prefix)
		class, ok := redisstore.ClassOf(key)
		if !ok {
			t.Errorf("key %s belongs to no declared class", key)
			continue
		}
		seen[class.Prefix]++
		ttl, err := rdb.TTL(ctx, iter.Val()).Result()
		must(t, err)
		if ttl < 0 && !class.Persistent {
			t.Errorf("key %s has no TTL but class %s is not persistent", key, class.Prefix)
		}
	}
	must(t, iter.Err())
	for _, id := range ids {
		if n, _ := rdb.Exists(ctx, prefix+smp.InvitationsKey(id)).Result(); n != 0 {
			t.Errorf("%s still exists after the order was assigned", smp.InvitationsKey(id))
		}
	}
	if seen[redisstore.PrefixTech] == 0 || seen[redisstore.PrefixGeo] == 0 || seen[redisstore.PrefixSession] != len(a.ds.Technicians) {
		t.Fatalf("technician state, geo index or one session per connected technician missing: %v", seen)
	}
	t.Logf("keys by class after %d orders: %v", len(ids), seen)
}

// startOOMRedis starts a Redis with 2 MB and no eviction (runbook INC-004).
func startOOMRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: install the redis-server package (.ci/run does)")
	}
	port := freeAddr(t)
	_, p, _ := strings.Cut(port, ":")
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", p, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction",
		"--save", "", "--appendonly", "no")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	rdb := redis.NewClient(&redis.Options{Addr: port})
	defer rdb.Close()
	wait.Until(t, 10*time.Second, "redis-server up", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return port
}

// fillUntilOOM writes small keys until Redis refuses with OOM.
func fillUntilOOM(t *testing.T, addr string) int {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	val := strings.Repeat("x", 512)
	for i := 0; i < 100000; i++ {
		err := rdb.Set(ctx, fmt.Sprintf("filler:%d", i), val, 0).Err()
		if redisstore.IsOOM(err) {
			// Client buffers make used memory wobble around the limit, so
			// a later write could slip in: hold the limit below usage.
			must(t, rdb.ConfigSet(ctx, "maxmemory", "1mb").Err())
			return i
		}
		must(t, err)
	}
	t.Fatal("Redis never ran out of memory")
	return 0
}

func freeFiller(t *testing.T, addr string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "filler:*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	must(t, iter.Err())
	must(t, rdb.ConfigSet(ctx, "maxmemory", "2mb").Err())
}

// TestRedisOutOfMemoryLosesNothing: with Redis refusing writes, orders
// are still accepted, /health says degraded, and after Redis recovers
// every order is dispatched and completed.
func TestRedisOutOfMemoryLosesNothing(t *testing.T) {
	redisAddr(t) // CI gate
	t.Parallel()
	addr := startOOMRedis(t)
	// A small pool: with 2 MB, connection buffers alone would fill Redis.
	a := startApp(t, func(c *Config) { c.RedisAddr, c.RedisPoolSize = addr, 4 })
	runLoad(t, a, 5, 20) // warm: technicians are in Redis

	keys := fillUntilOOM(t, addr)
	health := a.do("GET", "/health", "", nil)
	checks, _ := health.Body["checks"].(map[string]any)
	rc, _ := checks["redis"].(map[string]any)
	if health.Status != 200 || health.Body["status"] != "degraded" || rc["status"] != "fail" {
		t.Fatalf("health with Redis out of memory: %d %s", health.Status, health.Raw)
	}
	ids := placeOrders(t, a, 10, "while Redis is out of memory")
	wait.Until(t, 15*time.Second, "orders in 02 with their queue push refused", func() bool {
		return allIn(t, a, ids, smp.StageDispatching) && metricValue(t, a, "smp_dispatch_queue_push_failures_total") >= 1
	})

	freeFiller(t, addr)
	wait.Until(t, 60*time.Second, "every order completed after Redis recovered", func() bool { return allIn(t, a, ids, smp.StageCompleted) })
	if h := a.do("GET", "/health", "", nil); h.Body["status"] != "ok" {
		t.Fatalf("health after recovery: %s", h.Raw)
	}
	t.Logf("Redis refused writes after %d filler keys; %d orders accepted meanwhile, all completed after recovery", keys, len(ids))
}

func metricValue(t *testing.T, a *testApp, name string) float64 {
	mfs, _ := a.Registry.Gather() // as /metrics: what could be gathered (Kafka may be down)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return v
		}
	}
	return 0
}

func TestCtlFlushCache(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := randomPrefix()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	for i := 0; i < 1200; i++ {
		must(t, rdb.Set(ctx, fmt.Sprintf("%scache:wms:stock:SKU-%d", prefix, i), "5", 30*time.Second).Err())
	}
	for _, k := range []string{"session:T1", "dispatch:lock:o1", "dispatch:queue:HCMC"} {
		must(t, rdb.Set(ctx, prefix+k, "v", time.Minute).Err())
	}
	t.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
	})
	var out, errb bytes.Buffer
	for _, bad := range []string{"*", "session:*", "dispatch:*"} {
		err := run(ctx, []string{"ctl", "redis", "flush-cache", "--redis-addr", addr, "--redis-prefix", prefix, "--pattern", bad}, &out, &errb)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("pattern %q: %v", bad, err)
		}
	}
	must(t, run(ctx, []string{"ctl", "redis", "flush-cache", "--redis-addr", addr, "--redis-prefix", prefix, "--pattern", "cache:wms:stock:*", "--dry-run"}, &out, &errb))
	if !strings.Contains(out.String(), "would delete 1200 keys") {
		t.Fatalf("dry run: %s", out.String())
	}
	out.Reset()
	// A flush is audited: without --server, in the database of --data-dir,
	// under the local principal; without a reason it is refused.
	dataDir := t.TempDir()
	flush := []string{"ctl", "redis", "flush-cache", "--redis-addr", addr, "--redis-prefix", prefix, "--pattern", "cache:wms:stock:*", "--data-dir", dataDir}
	if err := run(ctx, flush, &out, &errb); exitCode(err) != 2 || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("flush without a reason: %v", err)
	}
	// No platform database there: refused rather than audited in a new file.
	if err := run(ctx, append(flush, "--reason", "INC-004 stock keys without TTL"), &out, &errb); exitCode(err) != 2 || !strings.Contains(err.Error(), "no platform database") {
		t.Fatalf("flush audited into a new database: %v", err)
	}
	db, err := openStore(ctx, Config{Config: app.Config{DataDir: dataDir}}, nil, nil)
	must(t, err)
	defer db.Close()
	must(t, run(ctx, append(flush, "--reason", "INC-004 stock keys without TTL"), &out, &errb))
	if !strings.Contains(out.String(), "deleted 1200 keys") {
		t.Fatalf("flush: %s", out.String())
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Action: "redis.flush_cache"})
	must(t, err)
	if len(audit) != 2 || !strings.HasPrefix(audit[0].Actor, "cli:") || audit[0].Reason != "INC-004 stock keys without TTL" ||
		!strings.Contains(audit[0].After, `"deleted":1200`) || !strings.Contains(audit[1].After, `"phase":"intent"`) {
		t.Fatalf("the local flush's audit: %+v", audit)
	}
	left, _ := rdb.Keys(ctx, prefix+"*").Result() // KEYS is fine in a test on its own prefix
	if len(left) != 3 {
		t.Fatalf("left %v: only the 1200 cache keys should be gone", left)
	}
}

// TestCtlFlushCacheOverAPI: the same flush through the admin API, audited.
// Not parallel: the token comes from SMP_ADMIN_TOKEN.
func TestCtlFlushCacheOverAPI(t *testing.T) {
	addr := redisAddr(t)
	prefix := randomPrefix()
	a := startApp(t, func(c *Config) { c.RedisAddr, c.RedisPrefix = addr, prefix })
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		must(t, rdb.Set(ctx, fmt.Sprintf("%scache:wms:stock:SKU-%d", prefix, i), "5", 30*time.Second).Err())
	}
	must(t, rdb.Set(ctx, prefix+"session:T1", "v", time.Minute).Err())
	t.Setenv("SMP_ADMIN_TOKEN", a.admin)
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"ctl", "redis", "flush-cache", "--server", a.url}, args...), &out, &errb)
		return out.String(), err
	}
	if out, err := ctl("--pattern", "cache:wms:stock:*", "--dry-run"); err != nil || !strings.Contains(out, "would delete 50 keys") {
		t.Fatalf("dry run: %v %s", err, out)
	}
	if _, err := ctl("--pattern", "cache:wms:stock:*"); exitCode(err) != 2 {
		t.Fatalf("without a reason: %v", err)
	}
	if _, err := ctl("--pattern", "session:*", "--reason", "no"); exitCode(err) != 2 {
		t.Fatalf("unsafe pattern: %v", err)
	}
	if r := a.do("POST", "/admin/redis/flush-cache", a.admin, `{"pattern":"*","reason":"bypassing the CLI"}`); r.Status != 400 {
		t.Fatalf("unsafe pattern at the API: %d %s", r.Status, r.Raw)
	}
	if out, err := ctl("--pattern", "cache:wms:stock:*", "--reason", "INC-004 option A"); err != nil || !strings.Contains(out, "deleted 50 keys") {
		t.Fatalf("flush: %v %s", err, out)
	}
	if n, _ := rdb.Exists(ctx, prefix+"session:T1").Result(); n != 1 {
		t.Fatal("the session key went too")
	}
	if !strings.Contains(a.do("GET", "/admin/audit", a.admin, nil).Raw, "redis.flush_cache") {
		t.Fatal("the flush was not audited")
	}
}
