package e2e

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"smp/app"
	"smp/auth"
	"smp/sim"
	"smp/sqlstore/sqlstoretest"
)

// BenchmarkOrderToOfferDelivered measures, through the real server, a
// customer's POST /v1/orders until the first offer arrives on a
// technician's WebSocket (and is acknowledged).
func BenchmarkOrderToOfferDelivered(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { benchOrderToOffer(b, nil) })
	b.Run("mysql+redis", func(b *testing.B) {
		dsn, addr := sqlstoretest.Server(b), redisAddr(b)
		benchOrderToOffer(b, func(c *Config) {
			c.MySQLDSN, c.RedisAddr, c.RedisPrefix = sqlstoretest.CreateDatabase(b, dsn), addr, randomPrefix()
		})
	})
}

func benchOrderToOffer(b *testing.B, mutate func(*Config)) {
	ctx := context.Background()
	cfg := Config{LogLevel: "error", LogFormat: "json", Config: app.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), AdminToken: "bench-admin",
		InvitationTTL: time.Minute, RetryAfter: time.Second, StuckAfter: time.Hour, BackpressureThreshold: 100, Partitions: 12}}
	if mutate != nil {
		mutate(&cfg)
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 5, Technicians: 60, Customers: 5, Seed: 9}, auth.HashToken)
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	a := &App{Cfg: cfg.Config, Log: slog.New(slog.DiscardHandler)}
	if err := a.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ta := &testApp{App: a, t: b, url: a.HTTP.URL(), admin: cfg.AdminToken, ds: ds}

	// Every technician of HCMC with the plumbing skill is online.
	offers := make(chan string, 1024)
	n := 0
	for _, tech := range ds.Technicians {
		if tech.City != "HCMC" || !slices.Contains(tech.Skills, "plumbing") {
			continue
		}
		ws, _, err := ta.dialTech(tech.Token)
		if err != nil {
			b.Fatal(err)
		}
		ws.send(map[string]any{"type": "location", "lat": tech.Lat, "lng": tech.Lng})
		ws.send(map[string]any{"type": "availability", "available": true})
		n++
		go func() {
			for {
				var m map[string]any
				if err := wsjson.Read(ctx, ws.c, &m); err != nil {
					return
				}
				if m["type"] == "offer" {
					wsjson.Write(ctx, ws.c, map[string]any{"type": "ack", "order_id": m["order_id"]})
					offers <- m["order_id"].(string)
				}
			}
		}()
	}
	if n == 0 {
		b.Fatal("no technician online")
	}
	cust := ds.Customers[0].Token
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r := ta.do("POST", "/v1/orders", cust, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":300000}`)
		id, _ := r.Body["id"].(string)
		if id == "" {
			b.Fatalf("create: %s", r.Raw)
		}
		for got := range offers {
			if got == id {
				break
			}
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		ta.do("POST", "/v1/orders/"+id+"/cancel", cust, nil)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(n), "technicians")
}
