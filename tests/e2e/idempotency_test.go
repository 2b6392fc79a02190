package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smp"
	"smp/app"
	"smp/auth"
	"smp/internal/wait"
	"smp/sim"
)

const idemOrder = `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"address":"12 Lê Lợi","price_vnd":250000}`

// customerOrders are the ids of customerID's orders in the store.
func (a *testApp) customerOrders(customerID string) []string {
	a.t.Helper()
	os, err := a.Store.FindOrders(context.Background(), smp.OrderFilter{CustomerID: customerID, Limit: 100})
	must(a.t, err)
	var ids []string
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	return ids
}

// postAndLoseReply sends POST /v1/orders and, once done says the server
// acted, closes the connection without reading the answer: the reply is
// lost, as when a phone loses its network.
func postAndLoseReply(t *testing.T, baseURL, token, key, body string, done func() bool) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	must(t, err)
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/orders HTTP/1.1\r\nHost: smp\r\nAuthorization: Bearer %s\r\nIdempotency-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		token, key, len(body), body)
	wait.Until(t, 10*time.Second, "the first request committed", done)
}

// TestIdempotentOrderCreation: POST /v1/orders with an Idempotency-Key
// (Stripe's semantics). A retry after a lost reply gets the order the
// lost reply announced, not a second one; the same key and body replay
// the first answer (status and body); another body is 409; concurrent
// requests with one key create one order; keys are per customer and kept
// 24 h.
func TestIdempotentOrderCreation(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the platform's clock runs offset ahead
	a := startApp(t, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) } })
	c0, c1 := a.ds.Customers[0], a.ds.Customers[1]
	key := func(r response) string { id, _ := r.Body["id"].(string); return id }

	t.Run("RetryAfterLostReply", func(t *testing.T) {
		postAndLoseReply(t, a.url, c0.Token, "lost-1", idemOrder, func() bool { return len(a.customerOrders(c0.ID)) == 1 })
		first := a.customerOrders(c0.ID)[0]
		r := a.do("POST", "/v1/orders", c0.Token, idemOrder, "Idempotency-Key", "lost-1")
		if r.Status != http.StatusCreated || key(r) != first {
			t.Fatalf("retry: %d %s, want 201 with the first order %s", r.Status, r.Raw, first)
		}
		if ids := a.customerOrders(c0.ID); len(ids) != 1 {
			t.Fatalf("orders after the retry: %v, want one", ids)
		}
	})

	t.Run("ReplaySameAnswer", func(t *testing.T) {
		r1 := a.do("POST", "/v1/orders", c1.Token, idemOrder, "Idempotency-Key", "k-replay")
		r2 := a.do("POST", "/v1/orders", c1.Token, idemOrder, "Idempotency-Key", "k-replay")
		if r1.Status != http.StatusCreated || r2.Status != r1.Status || r2.Raw != r1.Raw {
			t.Fatalf("first %d %s\nreplay %d %s", r1.Status, r1.Raw, r2.Status, r2.Raw)
		}
	})

	t.Run("SameKeyOtherBody", func(t *testing.T) {
		before := len(a.customerOrders(c1.ID))
		other := strings.Replace(idemOrder, "250000", "300000", 1)
		r := a.do("POST", "/v1/orders", c1.Token, other, "Idempotency-Key", "k-replay")
		if r.Status != http.StatusConflict || errCode(r) != smp.ECONFLICT || !strings.Contains(r.Raw, "another request") {
			t.Fatalf("same key, other body: %d %s, want 409 conflict", r.Status, r.Raw)
		}
		if n := len(a.customerOrders(c1.ID)); n != before {
			t.Fatalf("%d orders, want %d: the conflict wrote one", n, before)
		}
	})

	t.Run("KeysPerCustomer", func(t *testing.T) {
		c2 := a.ds.Customers[2]
		r1 := a.do("POST", "/v1/orders", c0.Token, idemOrder, "Idempotency-Key", "shared")
		r2 := a.do("POST", "/v1/orders", c2.Token, idemOrder, "Idempotency-Key", "shared")
		if r1.Status != 201 || r2.Status != 201 || key(r1) == key(r2) {
			t.Fatalf("two customers, one key: %d %s / %d %s, want two orders", r1.Status, r1.Raw, r2.Status, r2.Raw)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		c2 := a.ds.Customers[2]
		before := len(a.customerOrders(c2.ID))
		var wg sync.WaitGroup
		rs := make([]response, 8)
		for i := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs[i] = a.do("POST", "/v1/orders", c2.Token, idemOrder, "Idempotency-Key", "k-race")
			}()
		}
		wg.Wait()
		ids := map[string]bool{}
		for i, r := range rs {
			switch {
			case r.Status == 201:
				ids[key(r)] = true
			case r.Status == 409 && strings.Contains(r.Raw, "in progress"):
			default:
				t.Fatalf("racer %d: %d %s", i, r.Status, r.Raw)
			}
		}
		if n := len(a.customerOrders(c2.ID)); n != before+1 || len(ids) != 1 {
			t.Fatalf("orders %d -> %d, ids answered %v: want exactly one order", before, n, ids)
		}
	})

	t.Run("TooLongKey", func(t *testing.T) {
		r := a.do("POST", "/v1/orders", c0.Token, idemOrder, "Idempotency-Key", strings.Repeat("k", smp.MaxIdempotencyKey+1))
		if r.Status != 400 || errCode(r) != smp.EINVALID {
			t.Fatalf("key of %d characters: %d %s", smp.MaxIdempotencyKey+1, r.Status, r.Raw)
		}
	})

	t.Run("ExpiresAfter24h", func(t *testing.T) {
		r1 := a.do("POST", "/v1/orders", c0.Token, idemOrder, "Idempotency-Key", "k-day")
		offset.Store(int64(smp.IdempotencyKeyTTL + time.Minute))
		defer offset.Store(0)
		r2 := a.do("POST", "/v1/orders", c0.Token, idemOrder, "Idempotency-Key", "k-day")
		if r1.Status != 201 || r2.Status != 201 || key(r1) == key(r2) {
			t.Fatalf("the same key a day later: %s / %s, want a new order", r1.Raw, r2.Raw)
		}
	})
}

// TestIdempotencyKeySurvivesSIGKILL: the key is committed with the order,
// so a retry after the process was killed right after answering gets the
// same order.
func TestIdempotencyKeySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	db, err := app.OpenStore(ctx, app.Config{DataDir: dataDir}, nil, nil)
	must(t, err)
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 5}, auth.HashToken)
	must(t, err)
	must(t, db.Close())
	addr := freeAddr(t)
	post := func() (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/orders", strings.NewReader(idemOrder))
		req.Header.Set("Authorization", "Bearer "+ds.Customers[0].Token)
		req.Header.Set("Idempotency-Key", "before-the-kill")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		line, _ := bufio.NewReader(resp.Body).ReadString(0)
		return resp.StatusCode, line
	}
	srv := startServer(t, dataDir, addr)
	code1, body1 := post()
	must(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	<-srv.done
	srv = startServer(t, dataDir, addr)
	defer func() { srv.cmd.Process.Signal(syscall.SIGTERM); <-srv.done }()
	code2, body2 := post()
	if code1 != 201 || code2 != 201 || body1 != body2 {
		t.Fatalf("before the kill %d %s\nafter %d %s\nwant the same answer", code1, body1, code2, body2)
	}
}
