// Package integrations calls SMP's third parties, inside (customer info,
// payment requests) and wms (stock), each through its own circuit breaker
// (failsafe-go) with a 3 s timeout. Reads fall back to the last good
// answer, marked stale ("Đang cập nhật" when there is none); writes never
// fall back: they fail at once and honestly while the breaker is open.
package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Breaker states as exported in integration_circuit_breaker_state.
const (
	StateClosed   = 0
	StateOpen     = 1
	StateHalfOpen = 2
)

// UpdatingVI / UpdatingEN: what users see for data we cannot fetch now.
const (
	UpdatingVI = "Đang cập nhật"
	UpdatingEN = "Updating"
)

// Cache keeps last good read answers (Redis when configured).
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte) error
}

// Config of one integration.
type Config struct {
	Name    string // "inside", "wms"
	BaseURL string
	// Timeout of one call (default 3 s).
	Timeout time.Duration
	// FailureThreshold consecutive failures open the breaker (default 5).
	FailureThreshold uint
	// OpenFor: how long the breaker stays open before a half-open probe (default 30 s).
	OpenFor time.Duration
	Flags   smp.FlagReader
	Cache   Cache
	// Now is the clock of the cache's and the admin view's timestamps
	// (default time.Now). The breaker keeps failsafe-go's own wall clock:
	// shorten OpenFor to test it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Client is one third party behind its breaker.
type Client struct {
	cfg  Config
	http *http.Client
	cb   circuitbreaker.CircuitBreaker[[]byte]
	log  *slog.Logger

	mu   sync.Mutex
	last string // last state change, for the admin view
}

// ErrUnavailable wraps every failure to reach the third party.
var ErrUnavailable = errors.New("unavailable")

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" || cfg.BaseURL == "" {
		return nil, smp.Errorf(smp.EINVALID, "integrations: name and base URL are required")
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "integrations: %s URL: %v", cfg.Name, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout}, log: cfg.Logger.With("integration", cfg.Name)}
	c.cb = circuitbreaker.NewBuilder[[]byte]().
		HandleIf(func(_ []byte, err error) bool { return err != nil && !isClientError(err) }).
		WithFailureThreshold(cfg.FailureThreshold).
		WithDelay(cfg.OpenFor).
		WithSuccessThreshold(1).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			c.mu.Lock()
			c.last = cfg.Now().UTC().Format(time.RFC3339)
			c.mu.Unlock()
			c.log.Warn("circuit breaker state changed", "from", e.OldState.String(), "to", e.NewState.String())
		}).
		Build()
	return c, nil
}

// Name of the integration.
func (c *Client) Name() string { return c.cfg.Name }

// State is the breaker's state as the metric encodes it.
func (c *Client) State() int {
	switch c.cb.State() {
	case circuitbreaker.OpenState:
		return StateOpen
	case circuitbreaker.HalfOpenState:
		return StateHalfOpen
	}
	return StateClosed
}

// Status is the admin view of a breaker.
type Status struct {
	Service        string `json:"service"`
	State          string `json:"state"`
	StateCode      int    `json:"state_code"`
	Failures       uint   `json:"failures"`
	Successes      uint   `json:"successes"`
	RemainingOpenS int    `json:"remaining_open_seconds,omitempty"`
	ChangedAt      string `json:"changed_at,omitempty"`
	Bypassed       bool   `json:"bypassed"`
}

// Status returns the breaker's state for ops.
func (c *Client) Status() Status {
	c.mu.Lock()
	changed := c.last
	c.mu.Unlock()
	m := c.cb.Metrics()
	st := Status{Service: c.cfg.Name, State: stateName(c.State()), StateCode: c.State(), Failures: m.Failures(), Successes: m.Successes(),
		ChangedAt: changed, Bypassed: c.bypassed()}
	if c.cb.IsOpen() {
		st.RemainingOpenS = int(c.cb.RemainingDelay().Seconds())
	}
	return st
}

func stateName(s int) string {
	switch s {
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "closed"
}

// HalfOpen forces the breaker half-open: the next call is the probe that
// closes it (success) or opens it again (failure). The runbook's
// POST /admin/circuit-breaker/half-open.
func (c *Client) HalfOpen() { c.cb.HalfOpen() }

func (c *Client) bypassed() bool {
	return c.cfg.Flags != nil && c.cfg.Flags.Enabled(smp.FlagIntegrationBypassCircuit)
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func isClientError(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.code >= 400 && se.code < 500
}

// call performs one request through the breaker (or around it while the
// bypass flag is on). 4xx answers are the caller's problem, not the
// third party's: they do not count against the breaker.
func (c *Client) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	do := func() ([]byte, error) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			rd = bytes.NewReader(b)
		}
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 300 {
			return nil, &statusError{resp.StatusCode, string(bytes.TrimSpace(b[:min(len(b), 200)]))}
		}
		return b, nil
	}
	var b []byte
	var err error
	if c.bypassed() {
		b, err = do()
	} else {
		b, err = failsafe.With[[]byte](c.cb).WithContext(ctx).Get(do)
	}
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, circuitbreaker.ErrOpen) && !isClientError(err) {
		// The runbook greps for "circuit|failed_to_call".
		c.log.Warn("failed_to_call", "method", method, "path", path, "err", err)
	}
	var se *statusError
	switch {
	case errors.As(err, &se) && se.code == http.StatusNotFound:
		return nil, smp.Errorf(smp.ENOTFOUND, "%s: not found", c.cfg.Name)
	case isClientError(err):
		return nil, smp.Errorf(smp.EINVALID, "%s refused the request: %v", c.cfg.Name, err)
	case errors.Is(err, circuitbreaker.ErrOpen):
		return nil, smp.Errorf(smp.EUNAVAILABLE, "%s is unavailable (circuit breaker open)", c.cfg.Name)
	}
	return nil, smp.Errorf(smp.EUNAVAILABLE, "%s is unavailable: %v", c.cfg.Name, err)
}

// Read is a read answer, fresh or the last good one.
type Read struct {
	Data      json.RawMessage `json:"data,omitempty"`
	Stale     bool            `json:"stale"`
	FetchedAt *time.Time      `json:"fetched_at,omitempty"`
	// Message is shown to users when the data is stale or missing.
	Message   string `json:"message,omitempty"`
	MessageEN string `json:"message_en,omitempty"`
}

type cached struct {
	Data      json.RawMessage `json:"data"`
	FetchedAt time.Time       `json:"fetched_at"`
}

// read GETs path; on success the answer is cached under key. On
// failure it serves the cached answer marked stale, or "Đang cập nhật".
// With the bypass flag on, failures are returned as they are.
func (c *Client) read(ctx context.Context, path, key string) (Read, error) {
	b, err := c.call(ctx, http.MethodGet, path, nil)
	if err == nil {
		now := c.cfg.Now().UTC()
		if c.cfg.Cache != nil {
			v, _ := json.Marshal(cached{Data: b, FetchedAt: now})
			if cerr := c.cfg.Cache.Set(ctx, key, v); cerr != nil {
				c.log.Warn("cache write failed", "key", key, "err", cerr)
			}
		}
		return Read{Data: b, FetchedAt: &now}, nil
	}
	if smp.ErrorCode(err) != smp.EUNAVAILABLE || c.bypassed() {
		return Read{}, err
	}
	c.log.Debug("circuit breaker open or call failed, fallback to the last good response", "key", key, "err", err)
	if c.cfg.Cache != nil {
		if v, ok, cerr := c.cfg.Cache.Get(ctx, key); cerr == nil && ok {
			var e cached
			if json.Unmarshal(v, &e) == nil {
				return Read{Data: e.Data, Stale: true, FetchedAt: &e.FetchedAt, Message: UpdatingVI, MessageEN: UpdatingEN}, nil
			}
		}
	}
	return Read{Stale: true, Message: UpdatingVI, MessageEN: UpdatingEN}, nil
}

// Inside is the payment provider's API.
type Inside struct{ *Client }

// Customer reads a customer's info (cached as cache:inside:customer:{id}).
func (i Inside) Customer(ctx context.Context, id string) (Read, error) {
	return i.read(ctx, "/customers/"+url.PathEscape(id), "cache:inside:customer:"+id)
}

// PaymentRequest is inside's answer to a payment request.
type PaymentRequest struct {
	PaymentID  string `json:"payment_id"`
	PaymentURL string `json:"payment_url"`
}

// RequestPayment asks inside to collect amount for an order. A write: it
// never falls back, and fails at once while the breaker is open.
func (i Inside) RequestPayment(ctx context.Context, orderID string, amount int64) (PaymentRequest, error) {
	var pr PaymentRequest
	b, err := i.call(ctx, http.MethodPost, "/payments", map[string]any{"order_id": orderID, "amount_vnd": amount})
	if err != nil {
		return pr, err
	}
	if err := json.Unmarshal(b, &pr); err != nil || pr.PaymentID == "" {
		return pr, smp.Errorf(smp.EUNAVAILABLE, "inside answered an unreadable payment request")
	}
	return pr, nil
}

// WMS is the warehouse system.
type WMS struct{ *Client }

// Stock reads a SKU's stock (cached as cache:wms:stock:{sku} for 30 s).
func (w WMS) Stock(ctx context.Context, sku string) (Read, error) {
	return w.read(ctx, "/stock/"+url.PathEscape(sku), "cache:wms:stock:"+sku)
}

// Collector exports integration_circuit_breaker_state{service}.
type Collector struct{ clients []*Client }

// NewCollector returns the collector of clients' breakers.
func NewCollector(clients ...*Client) *Collector { return &Collector{clients} }

var stateDesc = prometheus.NewDesc("integration_circuit_breaker_state", "Circuit breaker state per third party: 0 closed, 1 open, 2 half-open.", []string{"service"}, nil)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, cl := range c.clients {
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, float64(cl.State()), cl.Name())
	}
}

// Get is a raw GET through the breaker (no cache), for checks and tests.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	return c.call(ctx, http.MethodGet, path, nil)
}
