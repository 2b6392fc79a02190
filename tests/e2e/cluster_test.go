package e2e

import (
	"context"
	"net/http"
	"smp/internal/wait"

	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/sim"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
)

// sharedBackends gives a test a fresh MySQL database and Redis prefix,
// seeded, or skips when the servers are not configured.
func sharedBackends(t *testing.T, techs int) (dsn, raddr, prefix string, ds *sim.Dataset, db *sqlstore.DB) {
	t.Helper()
	raddr = redisAddr(t)
	dsn = sqlstoretest.MySQLDSN(t)
	prefix = randomPrefix()
	ctx := context.Background()
	var err error
	db, err = sqlstore.Open(ctx, sqlstore.Config{MySQLDSN: dsn})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	ds, err = sim.Seed(ctx, db, sim.SeedConfig{Partners: 5, Technicians: techs, Customers: 10, Seed: 11}, auth.HashToken)
	must(t, err)
	return dsn, raddr, prefix, ds, db
}

// TestOfferCrossesProcesses: the dispatch engine runs in one process, the
// technicians' WebSockets and the customer API in another (--services):
// offers reach technicians through Redis and their answers take effect.
func TestOfferCrossesProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	dsn, raddr, prefix, ds, db := sharedBackends(t, 20)
	shared := []string{"--mysql-dsn", dsn, "--redis-addr", raddr, "--redis-prefix", prefix, "--mysql-max-conns", "8", "--redis-pool-size", "16"}
	apiAddr, engAddr := freeAddr(t), freeAddr(t)
	api := startServer(t, t.TempDir(), apiAddr, append(shared, "--services", "api")...)
	eng := startServer(t, t.TempDir(), engAddr, append(shared, "--services", "order-svc,dispatch-engine,outbox-relay")...)
	defer func() {
		for _, s := range []*server{api, eng} {
			s.cmd.Process.Signal(syscall.SIGTERM)
			<-s.done
		}
	}()
	// The engine process serves no public API; the api process does.
	if r, _ := httpGet("http://" + engAddr + "/v1/cities"); r != 404 {
		t.Fatalf("/v1 on the dispatch-engine process: %d", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // runs before the servers stop
	var sims []*sim.Technician
	for i, tech := range ds.Technicians {
		st := sim.NewTechnician("http://"+apiAddr, tech, sim.Behavior{AcceptRate: 1, ThinkMin: 5 * time.Millisecond, ThinkMax: 30 * time.Millisecond,
			StartAfter: 50 * time.Millisecond, WorkFor: 100 * time.Millisecond}, uint64(i+1), nil)
		sims = append(sims, st)
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(ctx) }()
	}
	cust := &sim.Customers{BaseURL: "http://" + apiAddr, Customers: ds.Customers, Cities: ds.Cities, Services: ds.Services, Rate: 10, Max: 15, Seed: 2}
	wg.Add(1)
	go func() { defer wg.Done(); cust.Run(ctx) }()
	wait.Until(t, 30*time.Second, "15 orders placed", func() bool { return len(cust.Created()) >= 15 })
	wait.Until(t, 60*time.Second, "every order completed", func() bool {
		for _, id := range cust.Created() {
			if o, err := db.FindOrderByID(context.Background(), id); err != nil || o.Stage != smp.StageCompleted {
				return false
			}
		}
		return true
	})
	var offers int64
	for _, st := range sims {
		offers += st.Stats.Offers.Load()
	}
	if offers == 0 {
		t.Fatal("no offer reached a technician")
	}
	t.Logf("%d offers made by the engine process reached technicians connected to the api process", offers)
}

// TestThreeProcessesKillOne: three full smp processes on one MySQL and
// Redis share the work; one is SIGKILLed under load. Every acknowledged
// order is completed, assigned exactly once, and no technician ever holds
// two orders.
func TestThreeProcessesKillOne(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	dsn, raddr, prefix, ds, db := sharedBackends(t, 45)
	shared := []string{"--mysql-dsn", dsn, "--redis-addr", raddr, "--redis-prefix", prefix, "--mysql-max-conns", "8", "--redis-pool-size", "16"}
	var addrs, urls []string
	var servers []*server
	for i := 0; i < 3; i++ {
		addrs = append(addrs, freeAddr(t))
		urls = append(urls, "http://"+addrs[i])
		servers = append(servers, startServer(t, t.TempDir(), addrs[i], shared...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, tech := range ds.Technicians {
		home := i % 3 // technicians spread over the three processes
		st := sim.NewTechnician(urls[home], tech, sim.Behavior{AcceptRate: 1, ThinkMin: 5 * time.Millisecond, ThinkMax: 50 * time.Millisecond,
			StartAfter: 50 * time.Millisecond, WorkFor: 200 * time.Millisecond}, uint64(i+1), nil)
		st.Alternates = append(slices.Clone(urls[home+1:]), urls[:home]...)
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(ctx) }()
	}
	cust := &sim.Customers{BaseURL: urls[0], Alternates: urls[1:], Customers: ds.Customers, Cities: ds.Cities, Services: ds.Services, Rate: 20, Max: 150, Seed: 4}
	wg.Add(1)
	go func() { defer wg.Done(); cust.Run(ctx) }()

	wait.Until(t, 30*time.Second, "40 orders before the kill", func() bool { return len(cust.Created()) >= 40 })
	must(t, servers[1].cmd.Process.Signal(syscall.SIGKILL))
	<-servers[1].done
	wait.Until(t, 60*time.Second, "150 orders acknowledged", func() bool { return len(cust.Created()) >= 150 })
	acked := cust.Created()
	waitAllCompleted(t, db, acked, 90*time.Second)
	cancel()
	wg.Wait()
	for _, i := range []int{0, 2} {
		servers[i].cmd.Process.Signal(syscall.SIGTERM)
		if err := <-servers[i].done; err != nil {
			t.Errorf("process %d did not stop cleanly: %v", i, err)
		}
	}

	used := checkLifecycles(t, db, acked)
	t.Logf("%d orders over 3 processes (one SIGKILLed after %d), %d refused while it died, %d technicians used",
		len(acked), 40, cust.Failures(), used)
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
