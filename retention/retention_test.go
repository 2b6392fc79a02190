package retention_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/retention"
	"smp/sqlbus"
	"smp/sqlstore"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// clock is the injected clock of the store, the log and the job.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	db  *sqlstore.DB
	bus *sqlbus.Bus
	clk *clock
}

func open(t *testing.T) *fixture {
	t.Helper()
	clk := &clock{now: t0}
	dir := t.TempDir()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(dir, "smp.db"), Now: clk.Now})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 1, Now: clk.Now})
	must(t, err)
	t.Cleanup(func() { bus.Close() })
	return &fixture{db: db, bus: bus, clk: clk}
}

var policies = []retention.Policy{
	{Table: smp.PruneOutbox, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneBus, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneProcessed, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneDispatchWaves, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneDispatchOffers, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneInbox, Keep: 7 * 24 * time.Hour},
	{Table: smp.PruneIdempotency, Keep: smp.IdempotencyKeyTTL},
	{Table: smp.PruneAudit, Keep: 0}, // kept
}

// fill writes, at the clock's time, n rows of every prunable kind (the
// outbox events published, event_log rows processed) plus an unpublished
// event, a dead-lettered provider event and an audit entry, and 3 bus
// messages of which the group "g" committed all.
func (f *fixture) fill(t *testing.T, tag string, n int) {
	t.Helper()
	ctx := context.Background()
	at := f.clk.Now()
	must(t, f.db.InTx(ctx, func(tx smp.Tx) error {
		for i := range n + 1 {
			id := fmt.Sprintf("%s-%d", tag, i)
			if err := tx.AddEvent(ctx, smp.Event{ID: "evt-" + id, Type: smp.EventOrderCreated, SchemaVersion: smp.EventSchemaVersion,
				AggregateID: "o-" + id, OccurredAt: at, Data: []byte(`{}`)}); err != nil {
				return err
			}
			if i == n {
				break
			}
			if _, err := tx.MarkProcessed(ctx, "order-svc", "evt-"+id, at); err != nil {
				return err
			}
			if err := tx.RecordIdempotentRequest(ctx, &smp.IdempotentRequest{CustomerID: "C1", Key: id, RequestHash: "h", OrderID: "o-" + id,
				Response: []byte(`{}`), CreatedAt: at}, at.Add(-time.Hour)); err != nil {
				return err
			}
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: at, Actor: "alice", Role: smp.RoleOps, Action: "flags.set", Target: tag, Reason: "test"})
	}))
	for i := range n {
		id := fmt.Sprintf("%s-%d", tag, i)
		processed := at
		for _, st := range []smp.InboxStatus{smp.InboxProcessed, smp.InboxDLQ} {
			e := &smp.InboxEvent{EventID: string(st) + "-" + id, Provider: "inside", EventType: "inside.payment.succeeded", OrderID: "o-" + id,
				AmountVND: 1000, OccurredAt: at, BodyHash: "x", Body: "{}", Status: st, ReceivedAt: at, NextAttemptAt: at}
			if st == smp.InboxProcessed {
				e.ProcessedAt = &processed
			}
			_, _, err := f.db.InsertInboxEvent(ctx, e)
			must(t, err)
			must(t, f.db.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateInboxEvent(ctx, e) })) // processed_at
		}
	}
	recs, err := f.db.FetchOutbox(ctx, 1000)
	must(t, err)
	var ids []int64
	for _, r := range recs {
		if a := r.Event.AggregateID; strings.HasPrefix(a, "o-"+tag+"-") && a != fmt.Sprintf("o-%s-%d", tag, n) {
			ids = append(ids, r.ID)
		}
	}
	must(t, f.db.MarkOutboxPublished(ctx, ids, at))
	for i := range n {
		id := fmt.Sprintf("%s-%d", tag, i)
		must(t, f.db.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "o-" + id, Round: 1, Wave: 1, RadiusM: 2000, StartedAt: at, Candidates: 1}))
		must(t, f.db.AddOffers(ctx, []smp.OfferRecord{{InvitationID: "inv-" + id, OrderID: "o-" + id, TechnicianID: "T1", Round: 1, Wave: 1,
			Rank: 1, RankReason: "nearest", State: smp.InvitationSent, SentAt: at, ExpiresAt: at.Add(20 * time.Second)}}))
	}
	for range 3 {
		must(t, f.bus.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: "k", Value: []byte(tag)},
			smp.Message{Topic: smp.TopicOrders + smp.DLQSuffix, Key: "k", Value: []byte(tag)}))
	}
}

func (f *fixture) job(t *testing.T, owner string, batch, maxBatches int, reg prometheus.Registerer) *retention.Service {
	t.Helper()
	s, err := retention.New(retention.Config{Store: f.db, Bus: f.bus, Policies: policies, Locker: f.db, Owner: owner,
		Every: time.Minute, Batch: batch, MaxBatches: maxBatches, Now: f.clk.Now, Registerer: reg})
	must(t, err)
	return s
}

// TestPruneOldRowsKeepYoungOnes: a run deletes what is past its table's
// retention, in batches, and keeps what is younger, unpublished outbox
// events, dead-lettered provider events, bus messages a group has not
// committed or no group reads (dead letters), and audit entries (kept by
// default); smp_retention_pruned_total counts by table.
func TestPruneOldRowsKeepYoungOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := open(t)
	f.fill(t, "old", 5)
	must(t, f.bus.ResetOffset(ctx, "g", smp.TopicOrders, 0, 3)) // the group read the old messages
	f.clk.Set(t0.Add(8 * 24 * time.Hour))
	f.fill(t, "young", 2)
	f.clk.Set(t0.Add(8*24*time.Hour + 2*time.Hour))

	reg := prometheus.NewRegistry()
	res, err := f.job(t, "p1", 2, 100, reg).RunOnce(ctx)
	must(t, err)
	want := map[string]int64{smp.PruneOutbox: 5, smp.PruneBus: 3, smp.PruneProcessed: 5, smp.PruneDispatchWaves: 5,
		smp.PruneDispatchOffers: 5, smp.PruneInbox: 5, smp.PruneIdempotency: 5}
	if fmt.Sprint(res.Pruned) != fmt.Sprint(want) || res.Skipped {
		t.Fatalf("pruned %v (skipped %v), want %v", res.Pruned, res.Skipped, want)
	}
	for table, n := range want {
		if got := testutil.ToFloat64(retentionCounter(t, reg, table)); got != float64(n) {
			t.Errorf("smp_retention_pruned_total{table=%q} = %v, want %d", table, got, n)
		}
	}
	// What was kept is still there.
	if done, err := f.db.IsProcessed(ctx, "order-svc", "evt-young-0"); err != nil || !done {
		t.Errorf("young processed record: %v %v", done, err)
	}
	if _, err := f.db.FindInboxEvent(ctx, "dlq-old-0"); err != nil {
		t.Errorf("a dead-lettered provider event was pruned: %v", err)
	}
	if _, err := f.db.FindInboxEvent(ctx, "processed-old-0"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Errorf("an old processed provider event: %v, want ENOTFOUND", err)
	}
	if n, _, err := f.db.OutboxBacklog(ctx); err != nil || n != 2 {
		t.Errorf("unpublished outbox events: %d %v, want 2 (one per fill)", n, err)
	}
	if tr, err := f.db.FindDispatchTrace(ctx, "o-young-0"); err != nil || len(tr.Waves) != 1 {
		t.Errorf("young dispatch trace: %+v %v", tr, err)
	}
	if a, err := f.db.FindAudit(ctx, smp.AuditFilter{Limit: 10}); err != nil || len(a) != 2 {
		t.Errorf("audit entries: %d %v, want both kept", len(a), err)
	}
	// Nothing more is due: a second run deletes nothing.
	res, err = f.job(t, "p1", 2, 100, nil).RunOnce(ctx)
	must(t, err)
	for table, n := range res.Pruned {
		if n != 0 {
			t.Errorf("second run pruned %d of %s", n, table)
		}
	}
}

func retentionCounter(t *testing.T, reg *prometheus.Registry, table string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "smp_retention_pruned_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					g.Set(m.GetCounter().GetValue())
				}
			}
		}
	}
	return g
}

// TestPruneIsBounded: a run deletes at most Batch × MaxBatches rows of a
// table; the next runs take the rest.
func TestPruneIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := open(t)
	f.fill(t, "old", 7)
	f.clk.Set(t0.Add(30 * 24 * time.Hour))
	job := f.job(t, "p1", 2, 2, nil)
	for run, want := range []int64{4, 3, 0} {
		res, err := job.RunOnce(ctx)
		must(t, err)
		if got := res.Pruned[smp.PruneProcessed]; got != want {
			t.Fatalf("run %d pruned %d processed records, want %d", run, got, want)
		}
	}
}

// TestOneProcessPrunes: two processes' jobs on one database: while one
// holds the lease (for Every after its run) the other's runs skip; once
// it lapses, the other takes over.
func TestOneProcessPrunes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := open(t)
	f.fill(t, "old", 3)
	f.clk.Set(t0.Add(30 * 24 * time.Hour))
	a, b := f.job(t, "process-a", 100, 10, nil), f.job(t, "process-b", 100, 10, nil)
	if res, err := a.RunOnce(ctx); err != nil || res.Skipped || res.Pruned[smp.PruneOutbox] != 3 {
		t.Fatalf("a: %+v %v", res, err)
	}
	if res, err := b.RunOnce(ctx); err != nil || !res.Skipped {
		t.Fatalf("b while a holds the lease: %+v %v, want skipped", res, err)
	}
	if res, err := a.RunOnce(ctx); err != nil || res.Skipped {
		t.Fatalf("a again (its own lease): %+v %v", res, err)
	}
	f.clk.Set(f.clk.Now().Add(2 * time.Minute)) // a died: its lease lapses
	if res, err := b.RunOnce(ctx); err != nil || res.Skipped {
		t.Fatalf("b after a's lease lapsed: %+v %v", res, err)
	}
}

// TestStartStop: the job's loop starts once, stops twice, and leaves no
// goroutine (goleak in TestMain).
func TestStartStop(t *testing.T) {
	t.Parallel()
	f := open(t)
	job := f.job(t, "p1", 10, 1, nil)
	must(t, job.Start(context.Background()))
	must(t, job.Start(context.Background()))
	<-job.Started()
	must(t, job.Stop(context.Background()))
	must(t, job.Stop(context.Background()))
}
