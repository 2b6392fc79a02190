package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smp"
	"smp/payments"
)

// Faults are a simulated third party's knobs, safe to change while it runs.
type Faults struct {
	mu        sync.Mutex
	latency   time.Duration
	errorRate float64
	down      atomic.Bool
	calls     atomic.Int64
}

// SetLatency delays every answer by d.
func (f *Faults) SetLatency(d time.Duration) { f.mu.Lock(); f.latency = d; f.mu.Unlock() }

// SetErrorRate makes that share of requests answer 500.
func (f *Faults) SetErrorRate(r float64) { f.mu.Lock(); f.errorRate = r; f.mu.Unlock() }

// SetDown makes every request fail (connection closed, as a dead host).
func (f *Faults) SetDown(down bool) { f.down.Store(down) }

// Calls counts requests received.
func (f *Faults) Calls() int64 { return f.calls.Load() }

// inject applies the knobs; it reports whether the request was answered.
func (f *Faults) inject(w http.ResponseWriter, r *http.Request) bool {
	f.calls.Add(1)
	if f.down.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	f.mu.Lock()
	lat, rate := f.latency, f.errorRate
	f.mu.Unlock()
	if lat > 0 {
		smp.Sleep(r.Context(), lat)
	}
	if rate > 0 && rand.Float64() < rate {
		http.Error(w, "simulated failure", http.StatusInternalServerError)
		return true
	}
	return false
}

func writeJSONResp(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Inside simulates the payment provider: customer info, payment requests,
// and the signed webhooks it sends SMP, with fault knobs on both.
type Inside struct {
	Faults
	// WebhookURL is SMP's endpoint; Secret signs webhooks.
	WebhookURL string
	Secret     []byte
	// AutoPay: after a payment request, report it succeeded (after PayAfter).
	AutoPay  bool
	PayAfter time.Duration

	WebhookFaults WebhookFaults

	mu       sync.Mutex
	payments map[string]string // payment id -> order id
	seq      atomic.Int64
	pending  sync.WaitGroup
}

// WebhookFaults are the knobs of the webhook sender.
type WebhookFaults struct {
	mu             sync.Mutex
	WrongSignature bool
	DropRate       float64
	DuplicateRate  float64
	// Reorder sends each batch in reverse order.
	Reorder bool
}

// Set changes the webhook knobs.
func (f *WebhookFaults) Set(fn func(f *WebhookFaults)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

func (f *WebhookFaults) get() (wrong bool, drop, dup float64, reorder bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.WrongSignature, f.DropRate, f.DuplicateRate, f.Reorder
}

// ServeHTTP implements inside's API: GET /health, GET /customers/{id},
// POST /payments.
func (in *Inside) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if in.inject(w, r) {
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/health":
		writeJSONResp(w, 200, map[string]string{"status": "ok"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/customers/"):
		id := strings.TrimPrefix(r.URL.Path, "/customers/")
		writeJSONResp(w, 200, map[string]any{"id": id, "name": "Khách " + id, "tier": "gold", "wallet_vnd": 1_000_000})
	case r.Method == http.MethodPost && r.URL.Path == "/payments":
		var req struct {
			OrderID   string `json:"order_id"`
			AmountVND int64  `json:"amount_vnd"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.OrderID == "" || req.AmountVND <= 0 {
			writeJSONResp(w, 400, map[string]string{"error": "order_id and amount_vnd are required"})
			return
		}
		id := fmt.Sprintf("pay_%d", in.seq.Add(1))
		in.mu.Lock()
		if in.payments == nil {
			in.payments = map[string]string{}
		}
		in.payments[id] = req.OrderID
		in.mu.Unlock()
		writeJSONResp(w, 201, map[string]string{"payment_id": id, "payment_url": "https://pay.inside.local/" + id})
		if in.AutoPay {
			in.pending.Add(1)
			go func() {
				defer in.pending.Done()
				smp.Sleep(context.Background(), in.PayAfter)
				in.Deliver(context.Background(), payments.Webhook{EventID: "evt_" + id, EventType: smp.InsidePaymentSucceeded,
					OrderID: req.OrderID, AmountVND: req.AmountVND, OccurredAt: time.Now().UTC()})
			}()
		}
	default:
		writeJSONResp(w, 404, map[string]string{"error": "no route"})
	}
}

// Wait waits for automatic webhooks in flight.
func (in *Inside) Wait() { in.pending.Wait() }

// Deliver sends webhooks to SMP as inside does, through the webhook
// knobs; like inside, it retries a webhook that got no 2xx (up to 5
// times). It returns how many were acknowledged.
func (in *Inside) Deliver(ctx context.Context, ws ...payments.Webhook) int {
	wrong, drop, dup, reorder := in.WebhookFaults.get()
	var out []payments.Webhook
	for _, w := range ws {
		if drop > 0 && rand.Float64() < drop {
			continue
		}
		out = append(out, w)
		if dup > 0 && rand.Float64() < dup {
			out = append(out, w)
		}
	}
	if reorder {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	acked := 0
	for _, w := range out {
		body, _ := json.Marshal(w)
		secret := in.Secret
		if wrong {
			secret = []byte("not-the-secret")
		}
		for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.WebhookURL, bytes.NewReader(body))
			if err != nil {
				break
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(payments.SignatureHeader, payments.Sign(secret, time.Now(), body))
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 300 {
					acked++
					break
				}
				if resp.StatusCode < 500 {
					break // refused: retrying will not help
				}
			}
			smp.Sleep(ctx, time.Duration(attempt+1)*100*time.Millisecond)
		}
	}
	return acked
}

// WMS simulates the warehouse: GET /stock/{sku}.
type WMS struct {
	Faults
}

// ServeHTTP implements wms's API.
func (s *WMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.inject(w, r) {
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/health" {
		writeJSONResp(w, 200, map[string]string{"status": "ok"})
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/stock/") {
		sku := strings.TrimPrefix(r.URL.Path, "/stock/")
		n := 0
		for _, c := range sku {
			n += int(c)
		}
		writeJSONResp(w, 200, map[string]any{"sku": sku, "available": n % 50})
		return
	}
	writeJSONResp(w, 404, map[string]string{"error": "no route"})
}
