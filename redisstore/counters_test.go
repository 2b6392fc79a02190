package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"smp"
	"smp/redisstore"
)

// TestCommandCounts: every command is counted by name, a pipeline as one
// round trip of its commands, and /metrics has both.
func TestCommandCounts(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	before := s.Counts()
	rdb := s.Client()
	must(t, rdb.Set(ctx, s.Prefix()+"a", "1", 0).Err())
	must(t, rdb.Get(ctx, s.Prefix()+"a").Err())
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, s.Prefix()+"b")
		p.Incr(ctx, s.Prefix()+"b")
		p.Get(ctx, s.Prefix()+"a")
		return nil
	})
	must(t, err)
	got := s.Counts().Sub(before)
	// A new connection's handshake (hello, client setinfo) counts too.
	handshake := got.ByName["hello"] + got.ByName["client"]
	if got.Commands != 5+handshake || got.ByName["incr"] != 2 || got.ByName["get"] != 2 || got.ByName["set"] != 1 || got.RoundTrips < 3 || got.RoundTrips > 3+handshake {
		t.Fatalf("counted %+v, want 5 commands (set 1, get 2, incr 2) in 3 round trips, besides handshakes", got)
	}
	delete(got.ByName, "hello")
	delete(got.ByName, "client")
	if top := got.Top(1); len(top) != 1 || top[0] != (redisstore.NamedCount{Name: "get", N: 2}) {
		t.Fatalf("Top(1) = %v", top)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(redisstore.NewCollector(s))
	if n, err := testutil.GatherAndCount(reg, "smp_redis_roundtrips_total"); err != nil || n != 1 {
		t.Fatalf("smp_redis_roundtrips_total: %d series, %v", n, err)
	}
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "smp_redis_commands_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "incr" && m.GetCounter().GetValue() != 2 {
				t.Fatalf("smp_redis_commands_total{cmd=incr} = %v", m.GetCounter().GetValue())
			}
		}
		return
	}
	t.Fatal("no smp_redis_commands_total")
}

// TestGeoUpdateRoundTrips: a technician's update is one script, one round
// trip (it was a read and a compare-and-set script; before that WATCH,
// HGETALL, MULTI/EXEC and UNWATCH: four), and the entry and the geo sets
// move as before.
func TestGeoUpdateRoundTrips(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	g := s.Geo()
	p := smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.78, Lng: 106.70, Skills: []string{"plumbing", "electrical"},
		Online: true, Available: true, UpdatedAt: time.Unix(1, 0)}
	must(t, g.Upsert(ctx, p)) // loads the script
	before := s.Counts()
	must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldBusy, To: smp.TechnicianPosition{Busy: true}}))
	got := s.Counts().Sub(before)
	handshake := got.ByName["hello"] + got.ByName["client"]
	if got.RoundTrips-handshake != 1 || got.Commands-handshake != 1 || got.ByName["evalsha"] != 1 {
		t.Fatalf("an update took %+v, want one evalsha", got)
	}
	if c, err := g.Nearby(ctx, "HCMC", "plumbing", 10.78, 106.70, 1000, 5); err != nil || len(c) != 0 {
		t.Fatalf("a busy technician is a candidate: %v %v", c, err)
	}
	must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldBusy}))
	if c, err := g.Nearby(ctx, "HCMC", "electrical", 10.78, 106.70, 1000, 5); err != nil || len(c) != 1 || c[0].TechnicianID != "T1" {
		t.Fatalf("a free technician is not a candidate: %v %v", c, err)
	}
	if got, _, _ := g.Get(ctx, "T1"); !got.UpdatedAt.Equal(p.UpdatedAt) || got.Lat != p.Lat {
		t.Fatalf("fields not set were changed: %+v", got)
	}
	// The hash keeps its TTL (refreshed by every change).
	if ttl, err := s.Client().TTL(ctx, s.Prefix()+redisstore.PrefixTech+"T1").Result(); err != nil || ttl <= 0 {
		t.Fatalf("TTL %s %v", ttl, err)
	}
	// Removal leaves no entry and no candidate.
	must(t, g.Update(ctx, "T1", smp.TechnicianChange{Remove: true}))
	if _, ok, err := g.Get(ctx, "T1"); err != nil || ok {
		t.Fatalf("removed entry: %v %v", ok, err)
	}
	if c, _ := g.Nearby(ctx, "HCMC", "plumbing", 10.78, 106.70, 1000, 5); len(c) != 0 {
		t.Fatalf("a removed technician is a candidate: %v", c)
	}
}

// TestGeoUpdateRefusedPosition: a position Redis cannot index (beyond
// its latitudes) fails the update and leaves the entry as it was.
func TestGeoUpdateRefusedPosition(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	g := s.Geo()
	p := smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.78, Lng: 106.70, Skills: []string{"plumbing"}, Online: true, Available: true}
	must(t, g.Upsert(ctx, p))
	if err := g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldLocation, To: smp.TechnicianPosition{Lat: 89, Lng: 106.70}}); err == nil {
		t.Fatal("a latitude of 89 was taken")
	}
	if got, _, _ := g.Get(ctx, "T1"); got.Lat != p.Lat {
		t.Fatalf("the refused update changed the entry: %+v", got)
	}
	if c, _ := g.Nearby(ctx, "HCMC", "plumbing", 10.78, 106.70, 1000, 5); len(c) != 1 {
		t.Fatalf("the refused update moved the candidate: %v", c)
	}
}

// TestInvitationsPutRoundTrips: a wave's invitations are stored by one
// script (a MULTI/EXEC of five commands per invitation was 17 commands
// for three), and every key it writes has its class's TTL.
func TestInvitationsPutRoundTrips(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	iv := s.Invitations()
	now := time.Now().UTC()
	wave := func(order string) []smp.Invitation {
		var invs []smp.Invitation
		for _, tech := range []string{"T1", "T2", "T3"} {
			invs = append(invs, smp.Invitation{ID: "inv_" + order + tech, OrderID: order, TechnicianID: tech, State: smp.InvitationSent, Wave: 1,
				SentAt: now, ExpiresAt: now.Add(time.Minute)})
		}
		return invs
	}
	must(t, iv.Put(ctx, wave("O0")...)) // loads the script
	before := s.Counts()
	must(t, iv.Put(ctx, wave("O1")...))
	got := s.Counts().Sub(before)
	handshake := got.ByName["hello"] + got.ByName["client"]
	if got.Commands-handshake != 1 || got.RoundTrips-handshake != 1 || got.ByName["evalsha"] != 1 {
		t.Fatalf("a wave of three took %+v, want one evalsha", got)
	}
	if invs, err := iv.ForOrder(ctx, "O1"); err != nil || len(invs) != 3 {
		t.Fatalf("stored %v %v", invs, err)
	}
	if n, err := iv.Count(ctx); err != nil || n != 6 {
		t.Fatalf("open %d %v, want 6", n, err)
	}
	if invs, err := iv.ForTechnician(ctx, "T2"); err != nil || len(invs) != 2 {
		t.Fatalf("T2 holds %v %v, want 2", invs, err)
	}
	// A technician's offers (at a connect) are one script too, however
	// many orders they were offered; an order whose invitations are gone
	// leaves their index.
	must(t, iv.DeleteOrder(ctx, "O0"))
	must(t, s.Client().SAdd(ctx, s.Prefix()+redisstore.PrefixTechInv+"T2", "O0").Err()) // as if left behind
	before = s.Counts()
	if invs, err := iv.ForTechnician(ctx, "T2"); err != nil || len(invs) != 1 || invs[0].OrderID != "O1" {
		t.Fatalf("T2 holds %v %v, want O1's", invs, err)
	}
	got = s.Counts().Sub(before)
	handshake = got.ByName["hello"] + got.ByName["client"]
	if got.Commands-handshake > 2 || got.ByName["hget"]+got.ByName["smembers"] != 0 { // evalsha, and eval the first time
		t.Fatalf("ForTechnician took %+v, want one script", got)
	}
	if n, err := s.Client().SCard(ctx, s.Prefix()+redisstore.PrefixTechInv+"T2").Result(); err != nil || n != 1 {
		t.Fatalf("T2's index holds %d orders (%v), want 1", n, err)
	}
	for key, class := range map[string]string{smp.InvitationsKey("O1"): redisstore.PrefixInvitations, redisstore.PrefixTechInv + "T3": redisstore.PrefixTechInv} {
		ttl, err := s.Client().TTL(ctx, s.Prefix()+key).Result()
		must(t, err)
		if want := redisstore.TTLOf(class); ttl <= want-time.Minute || ttl > want {
			t.Fatalf("%s: TTL %s, want %s", key, ttl, want)
		}
	}
}
