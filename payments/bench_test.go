package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"smp"
	"smp/payments"
)

// BenchmarkWebhookIngest: signed webhooks verified, parsed and durably
// stored in event_log (SQLite, synchronous=FULL), one per request.
func BenchmarkWebhookIngest(b *testing.B) {
	f := newFixtureTB(b)
	bodies := make([][]byte, b.N)
	sigs := make([]string, b.N)
	for i := range bodies {
		bodies[i] = body(wh(fmt.Sprintf("bench-%d", i), smp.InsidePaymentSucceeded, fmt.Sprintf("ord_%d", i), 250000))
		sigs[i] = sign(f.clock, bodies[i])
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.svc.Ingest(ctx, sigs[i], bodies[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "webhooks/s")
}

// BenchmarkRawInsert: the reference: the same rows inserted into the same
// store directly, without verification or parsing.
func BenchmarkRawInsert(b *testing.B) {
	f := newFixtureTB(b)
	evs := make([]*smp.InboxEvent, b.N)
	now := time.Now()
	for i := range evs {
		bd := body(wh(fmt.Sprintf("raw-%d", i), smp.InsidePaymentSucceeded, fmt.Sprintf("ord_%d", i), 250000))
		evs[i] = &smp.InboxEvent{EventID: fmt.Sprintf("raw-%d", i), Provider: payments.Provider, EventType: smp.InsidePaymentSucceeded, OrderID: fmt.Sprintf("ord_%d", i),
			AmountVND: 250000, OccurredAt: now, BodyHash: fmt.Sprintf("%064d", i), Body: string(bd), Status: smp.InboxReceived, ReceivedAt: now, NextAttemptAt: now}
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, _, err := f.store.InsertInboxEvent(ctx, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "inserts/s")
}
