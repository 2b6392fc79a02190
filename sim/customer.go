package sim

import (
	"context"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"smp"
)

// Customers places orders at a steady rate from seeded customers.
type Customers struct {
	BaseURL string
	// Alternates are other processes; orders are spread over all of them.
	Alternates []string
	Customers  []SeededCustomer
	Cities     []*smp.City
	Services   []*smp.Service
	// Rate is orders per second across all customers (default 1).
	Rate float64
	// Max stops after this many acknowledged orders (0: no limit).
	Max    int
	Logger *slog.Logger
	Seed   uint64

	mu       sync.Mutex
	created  []string
	failures int
}

// Created returns the ids of orders the API acknowledged (201).
func (c *Customers) Created() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.created...)
}

// Failures returns how many order requests were not acknowledged.
func (c *Customers) Failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// Run places orders until ctx is done or Max is reached. An order
// request in flight when ctx ends is finished (its answer counted) before
// Run returns.
func (c *Customers) Run(ctx context.Context) {
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	rng := mrand.New(mrand.NewPCG(c.Seed, 11))
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if ctx.Err() != nil {
			return // both were ready: a stop places no more
		}
		if c.Max > 0 && len(c.Created()) >= c.Max {
			return
		}
		cust := c.Customers[rng.IntN(len(c.Customers))]
		city := c.Cities[rng.IntN(len(c.Cities))]
		// Keep orders a little inside the bounds.
		lat := city.MinLat + (0.05+0.9*rng.Float64())*(city.MaxLat-city.MinLat)
		lng := city.MinLng + (0.05+0.9*rng.Float64())*(city.MaxLng-city.MinLng)
		body := map[string]any{
			"city": city.Code, "service": c.Services[rng.IntN(len(c.Services))].Code,
			"lat": math.Round(lat*1e6) / 1e6, "lng": math.Round(lng*1e6) / 1e6,
			"address": "Số " + strings.Repeat("1", 1+rng.IntN(3)) + " đường Lê Lợi", "price_vnd": int64(150+rng.IntN(650)) * 1000,
		}
		var out struct {
			ID string `json:"id"`
		}
		bases := append([]string{c.BaseURL}, c.Alternates...)
		base := bases[rng.IntN(len(bases))]
		// A stop ends the placing, not a request in flight: its order may
		// be committed already, and a caller that counts orders by
		// Created must know of it (httpClient's timeout bounds it).
		err := postJSON(context.WithoutCancel(ctx), strings.TrimSuffix(base, "/")+"/v1/orders", cust.Token, body, &out)
		c.mu.Lock()
		if err != nil {
			c.failures++
		} else {
			c.created = append(c.created, out.ID)
		}
		c.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			c.Logger.Debug("sim customer order failed", "err", err)
		}
	}
}
