package kafkabus_test

import (
	"context"
	"testing"

	"smp"
	"smp/kafkabus"
	"smp/storetest"
)

// TestConnectOffsets: the connect-offsets topic keeps source offsets to
// the store's contract (storetest's cases), and another bus on the same
// cluster (a restarted worker) reads them back.
func TestConnectOffsets(t *testing.T) {
	t.Parallel()
	storetest.RunConnectOffsets(t, func(t *testing.T) smp.ConnectOffsetStore {
		return open(t, newCluster(t), kafkabus.Config{}).ConnectOffsets()
	})
	t.Run("Restart", func(t *testing.T) {
		c := newCluster(t)
		ctx := context.Background()
		p := map[string]any{"server": "smp.cdc"}
		first := open(t, c, kafkabus.Config{}).ConnectOffsets()
		for pos := range 5 {
			if err := first.PutConnectOffsets(ctx, "smp-mysql-connector", []smp.ConnectOffset{{Partition: p, Offset: map[string]any{"file": "binlog.000001", "pos": 100 + pos}}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := open(t, c, kafkabus.Config{}).ConnectOffsets().ConnectOffsets(ctx, "smp-mysql-connector")
		if err != nil || len(got) != 1 || got[0].Offset["pos"] != float64(104) || got[0].Partition["server"] != "smp.cdc" {
			t.Fatalf("offsets read by another worker: %v %v", got, err)
		}
	})
}
