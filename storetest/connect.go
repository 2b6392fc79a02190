package storetest

import (
	"strings"
	"testing"

	"smp"
)

var connectTests = []Test{
	{"ConnectOffsets/OK", func(t *testing.T, s Store) { testConnectOffsets(t, s) }},
	{"ConnectOffsets/ErrInvalid", func(t *testing.T, s Store) { testConnectOffsetsInvalid(t, s) }},
}

// RunConnectOffsets holds an offset store other than the system of
// record (Kafka's connect-offsets topic) to the same contract.
func RunConnectOffsets(t *testing.T, open func(t *testing.T) smp.ConnectOffsetStore) {
	t.Helper()
	t.Run("ConnectOffsets/OK", func(t *testing.T) { testConnectOffsets(t, open(t)) })
	t.Run("ConnectOffsets/ErrInvalid", func(t *testing.T) { testConnectOffsetsInvalid(t, open(t)) })
}

// testConnectOffsets: offsets are kept per connector and partition, a
// write replaces a partition's offset, a nil offset removes it, and a
// delete removes only that connector's.
func testConnectOffsets(t *testing.T, s smp.ConnectOffsetStore) {
	got, err := s.ConnectOffsets(ctx, "c1")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("fresh store: %v", got)
	}
	p := map[string]any{"server": "smp"}
	must(t, s.PutConnectOffsets(ctx, "c1", []smp.ConnectOffset{{Partition: p, Offset: map[string]any{"pos": 1}}}))
	must(t, s.PutConnectOffsets(ctx, "c1", []smp.ConnectOffset{{Partition: p, Offset: map[string]any{"pos": 7, "snapshot": false}},
		{Partition: map[string]any{"server": "other"}, Offset: map[string]any{"pos": 2}}}))
	must(t, s.PutConnectOffsets(ctx, "c2", []smp.ConnectOffset{{Partition: p, Offset: map[string]any{"pos": 3}}}))
	got, err = s.ConnectOffsets(ctx, "c1")
	must(t, err)
	if len(got) != 2 || got[1].Partition["server"] != "smp" || got[1].Offset["pos"] != float64(7) || got[1].Offset["snapshot"] != false {
		t.Fatalf("c1 offsets %v", got)
	}
	must(t, s.PutConnectOffsets(ctx, "c1", []smp.ConnectOffset{{Partition: map[string]any{"server": "other"}}}))
	must(t, s.DeleteConnectOffsets(ctx, "c2"))
	if got, _ = s.ConnectOffsets(ctx, "c1"); len(got) != 1 {
		t.Fatalf("c1 after removing a partition: %v", got)
	}
	if got, _ = s.ConnectOffsets(ctx, "c2"); len(got) != 0 {
		t.Fatalf("c2 after delete: %v", got)
	}
}

// testConnectOffsetsInvalid: an empty partition or one over 512 characters
// is EINVALID and nothing of the write is kept.
func testConnectOffsetsInvalid(t *testing.T, s smp.ConnectOffsetStore) {
	good := smp.ConnectOffset{Partition: map[string]any{"server": "smp"}, Offset: map[string]any{"pos": 1}}
	for _, bad := range []smp.ConnectOffset{{Offset: map[string]any{"pos": 1}}, {Partition: map[string]any{"k": strings.Repeat("x", 600)}, Offset: map[string]any{}}} {
		if err := s.PutConnectOffsets(ctx, "c", []smp.ConnectOffset{good, bad}); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("put %v: %v, want EINVALID", bad, err)
		}
	}
	if got, _ := s.ConnectOffsets(ctx, "c"); len(got) != 0 {
		t.Fatalf("a refused write kept %v", got)
	}
}

var connectConfigTests = []Test{
	{"ConnectorConfigs/OK", testConnectorConfigs},
	{"ConnectorConfigs/ErrInvalid", testConnectorConfigsInvalid},
}

// testConnectorConfigs: a configuration and its target state are kept,
// replaced by name, and deleted.
func testConnectorConfigs(t *testing.T, s Store) {
	must(t, s.PutConnectorConfig(ctx, smp.ConnectorConfig{Name: "b", Config: map[string]string{"connector.class": "X"}, Target: "RUNNING"}))
	must(t, s.PutConnectorConfig(ctx, smp.ConnectorConfig{Name: "a", Config: map[string]string{"connector.class": "X", "tasks.max": "1"}, Target: "RUNNING"}))
	must(t, s.PutConnectorConfig(ctx, smp.ConnectorConfig{Name: "a", Config: map[string]string{"connector.class": "Y"}, Target: "STOPPED"}))
	got, err := s.ConnectorConfigs(ctx)
	must(t, err)
	if len(got) != 2 || got[0].Name != "a" || got[0].Target != "STOPPED" || got[0].Config["connector.class"] != "Y" || len(got[0].Config) != 1 || got[1].Name != "b" {
		t.Fatalf("configs %+v", got)
	}
	must(t, s.DeleteConnectorConfig(ctx, "a"))
	must(t, s.DeleteConnectorConfig(ctx, "nope"))
	if got, _ = s.ConnectorConfigs(ctx); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("after delete %+v", got)
	}
}

// testConnectorConfigsInvalid: an empty name, an unknown target or a name
// over 128 characters is EINVALID and nothing is kept.
func testConnectorConfigsInvalid(t *testing.T, s Store) {
	for _, c := range []smp.ConnectorConfig{{Target: "RUNNING"}, {Name: "a", Target: "FAILED"}, {Name: strings.Repeat("n", 129), Target: "RUNNING"}} {
		if err := s.PutConnectorConfig(ctx, c); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("put %+v: %v, want EINVALID", c, err)
		}
	}
	if got, _ := s.ConnectorConfigs(ctx); len(got) != 0 {
		t.Fatalf("refused writes kept %+v", got)
	}
}
