package storetest

import (
	"errors"
	"testing"
	"time"

	"smp"
)

var replicationTests = []Test{
	{"Replication/OK", testReplication},
	{"Replication/ErrNotFound", testReplicationNotFound},
	{"Replication/ErrInvalid", testReplicationInvalid},
	{"Replication/Rollback", testReplicationRollback},
	{"Replication/HopsAndOffsets", testReplicationHopsAndOffsets},
}

// testReplicationHopsAndOffsets: a hop's heartbeat only moves forward; an
// offset sync keeps the first copy; a source offset translates to the
// first mirrored record at or after it, else one past the last before it;
// a group checkpoint is replaced by the newest.
func testReplicationHopsAndOffsets(t *testing.T, s Store) {
	h := smp.ReplicationHop{Path: "asia-to-us", Source: "asia", Target: "us", Via: "china", HeartbeatAt: T0.Add(5 * time.Second)}
	must(t, s.BeatReplicationHop(ctx, h))
	h.HeartbeatAt = T0 // older: ignored
	must(t, s.BeatReplicationHop(ctx, h))
	must(t, s.BeatReplicationHop(ctx, smp.ReplicationHop{Path: "asia-to-us", Source: "asia", Target: "us", Via: "global,china", HeartbeatAt: T0}))
	hops, err := s.FindReplicationHops(ctx)
	must(t, err)
	if len(hops) != 2 || hops[0].Via != "china" || !hops[0].HeartbeatAt.Equal(T0.Add(5*time.Second)) || hops[1].Via != "global,china" {
		t.Fatalf("hops %+v", hops)
	}
	wantCode(t, "hop without via", s.BeatReplicationHop(ctx, smp.ReplicationHop{Path: "asia-to-us", Source: "asia", Target: "us"}), smp.EINVALID)
	wantCode(t, "hop misnamed", s.BeatReplicationHop(ctx, smp.ReplicationHop{Path: "x", Source: "asia", Target: "us", Via: "china"}), smp.EINVALID)

	const path, topic = "global-to-china", "masterdata.countries"
	if _, _, ok, err := s.TranslateReplicationOffset(ctx, path, topic, 1, 0); ok || err != nil {
		t.Fatalf("translated with no syncs: %v %v", ok, err)
	}
	// Source offsets 0, 1, (2 refused), 3 landed at 0, 1, 2; 1 was carried
	// again later, at 3.
	for _, sy := range [][2]int64{{0, 0}, {1, 1}, {3, 2}, {1, 3}} {
		must(t, s.SaveReplicationOffsetSync(ctx, smp.ReplicationOffsetSync{Path: path, Topic: topic, Partition: 1, Upstream: sy[0], DownPartition: 1, Downstream: sy[1]}))
	}
	for up, want := range map[int64]int64{0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 9: 3} {
		part, down, ok, err := s.TranslateReplicationOffset(ctx, path, topic, 1, up)
		if err != nil || !ok || part != 1 || down != want {
			t.Errorf("translate %d: partition %d offset %d %v %v, want %d", up, part, down, ok, err, want)
		}
	}
	wantCode(t, "negative sync", s.SaveReplicationOffsetSync(ctx, smp.ReplicationOffsetSync{Path: path, Topic: topic, Upstream: -1}), smp.EINVALID)

	cp := smp.ReplicationGroupCheckpoint{Path: path, Group: "billing", Topic: topic, Partition: 1, Upstream: 2, DownTopic: "global." + topic, DownPartition: 1, Downstream: 2}
	must(t, s.SaveReplicationGroupCheckpoint(ctx, cp))
	cp.Upstream, cp.Downstream = 4, 3
	must(t, s.SaveReplicationGroupCheckpoint(ctx, cp))
	must(t, s.SaveReplicationGroupCheckpoint(ctx, smp.ReplicationGroupCheckpoint{Path: path, Group: "audit", Topic: topic, Partition: 0, Upstream: 1, DownTopic: "global." + topic, Downstream: 1}))
	cps, err := s.ReplicationGroupCheckpoints(ctx, path, "billing")
	must(t, err)
	if len(cps) != 1 || cps[0].Upstream != 4 || cps[0].Downstream != 3 || cps[0].DownTopic != "global."+topic {
		t.Fatalf("billing's checkpoints %+v", cps)
	}
	if all, err := s.ReplicationGroupCheckpoints(ctx, path, ""); err != nil || len(all) != 2 || all[0].Group != "audit" {
		t.Fatalf("all checkpoints %+v %v", all, err)
	}
	wantCode(t, "no group", s.SaveReplicationGroupCheckpoint(ctx, smp.ReplicationGroupCheckpoint{Path: path, Topic: topic, DownTopic: "x"}), smp.EINVALID)
}

// testReplication: a path is declared once (a second declaration changes
// nothing), its heartbeat and checkpoints only move forward, and it is
// paused and resumed with the state before returned.
func testReplication(t *testing.T, s Store) {
	p := smp.ReplicationPath{Path: "global-to-china", Source: "global", Target: "china", HeartbeatAt: T0}
	must(t, s.DeclareReplicationPath(ctx, p))
	must(t, s.BeatReplicationPath(ctx, p.Path, T0.Add(5*time.Second)))
	must(t, s.DeclareReplicationPath(ctx, p))
	must(t, s.BeatReplicationPath(ctx, p.Path, T0.Add(2*time.Second))) // older: ignored
	got, err := s.FindReplicationPath(ctx, p.Path)
	must(t, err)
	if got.Source != "global" || got.Target != "china" || got.Paused || !got.HeartbeatAt.Equal(T0.Add(5*time.Second)) {
		t.Fatalf("path %+v", got)
	}
	must(t, s.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: "asia-to-china", Source: "asia", Target: "china"}))
	if all, err := s.FindReplicationPaths(ctx); err != nil || len(all) != 2 || all[0].Path != "asia-to-china" {
		t.Fatalf("paths %+v %v", all, err)
	}

	for _, c := range []smp.ReplicationCheckpoint{{Path: p.Path, Topic: "masterdata.countries", Partition: 1, Next: 5},
		{Path: p.Path, Topic: "masterdata.countries", Partition: 1, Next: 3}, // lower: ignored
		{Path: p.Path, Topic: "masterdata.countries", Partition: 0, Next: 2},
		{Path: "asia-to-china", Topic: "masterdata.countries", Partition: 0, Next: 9}} {
		must(t, s.SaveReplicationCheckpoint(ctx, c))
	}
	cps, err := s.ReplicationCheckpoints(ctx, p.Path)
	must(t, err)
	if len(cps) != 2 || cps[0].Partition != 0 || cps[0].Next != 2 || cps[1].Next != 5 {
		t.Fatalf("checkpoints %+v", cps)
	}

	inTx(t, s, func(tx smp.Tx) error {
		before, err := tx.SetReplicationPathState(ctx, p.Path, true, "schema 2 at the source, 1 here", 2, "replication-agent")
		if err == nil && before.Paused {
			t.Errorf("before pause: %+v", before)
		}
		return err
	})
	got, _ = s.FindReplicationPath(ctx, p.Path)
	if !got.Paused || got.SchemaNeeded != 2 || got.Reason == "" || got.UpdatedBy != "replication-agent" {
		t.Fatalf("paused %+v", got)
	}
	inTx(t, s, func(tx smp.Tx) error {
		before, err := tx.SetReplicationPathState(ctx, p.Path, false, "ignored", 7, "olga")
		if err == nil && !before.Paused {
			t.Errorf("before resume: %+v", before)
		}
		return err
	})
	got, _ = s.FindReplicationPath(ctx, p.Path)
	if got.Paused || got.SchemaNeeded != 0 || got.Reason != "" || got.UpdatedBy != "olga" {
		t.Fatalf("resumed %+v", got)
	}
}

func testReplicationNotFound(t *testing.T, s Store) {
	_, err := s.FindReplicationPath(ctx, "asia-to-us")
	wantCode(t, "find", err, smp.ENOTFOUND)
	wantCode(t, "beat", s.BeatReplicationPath(ctx, "asia-to-us", T0), smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error {
		_, err := tx.SetReplicationPathState(ctx, "asia-to-us", true, "x", 0, "olga")
		return err
	})
	wantCode(t, "pause", err, smp.ENOTFOUND)
}

func testReplicationInvalid(t *testing.T, s Store) {
	for _, p := range []smp.ReplicationPath{{Path: "asia-to-asia", Source: "asia", Target: "asia"},
		{Path: "x", Source: "asia", Target: "china"}, {Path: "Asia-to-china", Source: "Asia", Target: "china"}} {
		wantCode(t, "declare "+p.Path, s.DeclareReplicationPath(ctx, p), smp.EINVALID)
	}
	wantCode(t, "negative offset", s.SaveReplicationCheckpoint(ctx, smp.ReplicationCheckpoint{Path: "asia-to-china", Topic: "t", Next: -1}), smp.EINVALID)
	wantCode(t, "no topic", s.SaveReplicationCheckpoint(ctx, smp.ReplicationCheckpoint{Path: "asia-to-china", Next: 1}), smp.EINVALID)
	if all, _ := s.FindReplicationPaths(ctx); len(all) != 0 {
		t.Fatalf("declared %+v", all)
	}
}

func testReplicationRollback(t *testing.T, s Store) {
	must(t, s.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: "asia-to-china", Source: "asia", Target: "china"}))
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.SetReplicationPathState(ctx, "asia-to-china", true, "drill", 0, "olga"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if got, _ := s.FindReplicationPath(ctx, "asia-to-china"); got.Paused {
		t.Fatalf("rolled back pause kept: %+v", got)
	}
}
