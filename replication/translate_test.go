package replication

import (
	"context"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
)

// TestCheckpointTranslation: MirrorMaker 2's checkpoints between two
// Kafka clusters (kfake). global's masterdata.currency_rates holds six
// records of one key, the third a PII record the guard refuses, so the
// offsets differ from china's copy from there on. The consumer group
// billing has read four records in global (its offset is 4); the agent
// checkpoints that offset in china with its translation, and a consumer
// started in china at the translated offset sees exactly the two records
// billing had not read, in order.
func TestCheckpointTranslation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	globalDB, chinaDB := openStore(t), openStore(t)
	globalBus, chinaBus := kafkaBus(t, kafkaCluster(t)), kafkaBus(t, kafkaCluster(t))
	g, _ := NewGuard(nil, nil)
	topic, key := "masterdata.currency_rates", "USD/VND/2026-12-01"
	rate := map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01"}
	pii := []byte(`{"event_id":"x","event_type":"masterdata.currency_rates.changed","schema_version":1,"aggregate_id":"` + key + `","data":` +
		`{"table":"currency_rates","key":"` + key + `","fields":{"from_currency":"USD","to_currency":"VND","rate_date":"2026-12-01","rate":"1","customer_phone":"+84901234567"},"version":9,"region":"global","schema_version":1}}`)
	for i, r := range []string{"25400", "25401", "", "25403", "25404", "25405"} {
		v := pii
		if r != "" {
			rate["rate"] = r
			v = published(t, globalDB, smp.MasterCurrencyRates, rate)
		}
		if err := globalBus.Publish(ctx, smp.Message{Topic: topic, Key: key, Value: v}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	src, err := globalBus.Read(ctx, topic, 10)
	if err != nil || len(src) != 6 {
		t.Fatalf("global's %s: %d records (%v)", topic, len(src), err)
	}
	part := src[0].Partition
	// billing read the first four records (offsets 0..3) in global.
	if err := globalBus.ResetOffset(ctx, "billing", topic, part, src[3].Offset+1); err != nil {
		t.Fatal(err)
	}

	a, err := NewAgent(AgentConfig{Source: "global", Target: "china", SourceBus: globalBus, TargetBus: chinaBus, TargetStore: chinaDB, Guard: g,
		Groups: []string{"billing"}, CheckpointEvery: 50 * time.Millisecond,
		HeartbeatEvery: 100 * time.Millisecond, Agents: 1, LeaseTTL: 2 * time.Second, PollEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(ctx) })

	// Until china has everything, a checkpoint may point before what
	// billing read (conservative: read again, applied once); once it has,
	// the next checkpoint is exact.
	wait.Until(t, 60*time.Second, "version 5 applied in china", func() bool {
		r, err := chinaDB.FindMasterRecord(ctx, smp.MasterCurrencyRates, key)
		return err == nil && r.Version == 5
	})
	mark := time.Now()
	var cp smp.ReplicationGroupCheckpoint
	wait.Until(t, 60*time.Second, "billing's checkpoint in china", func() bool {
		cps, err := Translate(ctx, chinaDB, "global", "china", "billing")
		if err != nil || len(cps) != 1 {
			return false
		}
		cp = cps[0]
		return cp.UpdatedAt.After(mark)
	})
	if cp.Topic != topic || cp.Partition != part || cp.Upstream != src[3].Offset+1 || cp.DownTopic != "global."+topic {
		t.Fatalf("checkpoint %+v", cp)
	}
	// The refused record is not in china: upstream 4 is downstream 3.
	if cp.Downstream != src[3].Offset {
		t.Errorf("translated to %d, want %d (one record refused before)", cp.Downstream, src[3].Offset)
	}

	// billing fails over to china: it starts at the translated offset.
	if err := chinaBus.ResetOffset(ctx, "billing", cp.DownTopic, cp.DownPartition, cp.Downstream); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []int64
	)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		chinaBus.Subscribe(sctx, "billing", []string{cp.DownTopic}, func(_ context.Context, m smp.Message) error {
			ev, err := g.Check(m.Topic, m.Value)
			if err != nil {
				t.Errorf("in china: %v", err)
				return nil
			}
			mu.Lock()
			seen = append(seen, ev.Version)
			mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	wait.Until(t, 60*time.Second, "billing caught up in china", func() bool {
		lag, err := chinaBus.Lag(ctx, "billing", []string{cp.DownTopic})
		if err != nil {
			return false
		}
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		return n >= 2 && lag[cp.DownTopic][cp.DownPartition] == 0
	})
	mu.Lock()
	defer mu.Unlock()
	// Versions 1, 2, the PII record and version 3 (offsets 0..3) were read
	// in global: billing goes on with versions 4 and 5.
	if len(seen) != 2 || seen[0] != 4 || seen[1] != 5 {
		t.Errorf("billing saw versions %v in china, want [4 5]", seen)
	}
}
