package storetest

import (
	"strings"
	"testing"
	"time"

	"smp"
)

var heartbeatTests = []Test{
	{"Heartbeats/BeatProcess/OK", testBeatProcess},
	{"Heartbeats/BeatProcess/ErrInvalid", testBeatProcessInvalid},
	{"Heartbeats/RemoveProcessHeartbeat", testRemoveHeartbeat},
}

func beat(id string, engine bool, ws int64, at time.Time, ttl time.Duration) *smp.ProcessHeartbeat {
	return &smp.ProcessHeartbeat{ID: id, Services: "all", EngineUp: engine, WebSocketConnections: ws, BeatAt: at, ExpiresAt: at.Add(ttl)}
}

// testBeatProcess: a beat replaces the process's previous one; only
// unexpired heartbeats are found, by id; an hour-old one is forgotten.
func testBeatProcess(t *testing.T, s Store) {
	must(t, s.BeatProcess(ctx, beat("b", true, 3, T0, 15*time.Second)))
	must(t, s.BeatProcess(ctx, beat("a", false, 7, T0, 15*time.Second)))
	must(t, s.BeatProcess(ctx, beat("b", false, 4, T0.Add(5*time.Second), 15*time.Second)))
	got, err := s.FindProcessHeartbeats(ctx, T0.Add(10*time.Second))
	must(t, err)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("heartbeats %v, want a and b", got)
	}
	want := beat("b", false, 4, T0.Add(5*time.Second), 15*time.Second)
	if g := got[1]; g.EngineUp != want.EngineUp || g.WebSocketConnections != 4 || !g.BeatAt.Equal(want.BeatAt) || !g.ExpiresAt.Equal(want.ExpiresAt) || g.Services != "all" {
		t.Fatalf("heartbeat b = %+v, want %+v", g, want)
	}
	got, err = s.FindProcessHeartbeats(ctx, T0.Add(16*time.Second))
	must(t, err)
	if len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("after a expired: %v, want only b", got)
	}
	// a expired at T0+15s; a beat two hours later forgets it for good.
	must(t, s.BeatProcess(ctx, beat("c", true, 0, T0.Add(2*time.Hour), 15*time.Second)))
	got, err = s.FindProcessHeartbeats(ctx, T0.Add(-time.Hour))
	must(t, err)
	if len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("after forgetting old heartbeats: %v, want only c", got)
	}
}

func testBeatProcessInvalid(t *testing.T, s Store) {
	wantCode(t, "BeatProcess(empty id)", s.BeatProcess(ctx, beat("", true, 0, T0, time.Second)), smp.EINVALID)
	wantCode(t, "BeatProcess(expired)", s.BeatProcess(ctx, beat("a", true, 0, T0, 0)), smp.EINVALID)
	wantCode(t, "BeatProcess(long id)", s.BeatProcess(ctx, beat(strings.Repeat("x", 129), true, 0, T0, time.Second)), smp.EINVALID)
	got, err := s.FindProcessHeartbeats(ctx, T0.Add(-time.Minute))
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("refused beats were kept: %v", got)
	}
}

func testRemoveHeartbeat(t *testing.T, s Store) {
	must(t, s.BeatProcess(ctx, beat("a", true, 0, T0, time.Minute)))
	must(t, s.RemoveProcessHeartbeat(ctx, "a"))
	must(t, s.RemoveProcessHeartbeat(ctx, "unknown"))
	if got, err := s.FindProcessHeartbeats(ctx, T0); err != nil || len(got) != 0 {
		t.Fatalf("after remove: %v %v", got, err)
	}
}
