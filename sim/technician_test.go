package sim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/sim"
	"smp/wsapi"
)

// quietGateway is the engine's side of a connection for a technician
// with no job and no offer: every call succeeds and does nothing.
type quietGateway struct{}

func (quietGateway) TechnicianConnected(context.Context, string, string) ([]smp.TechnicianMessage, error) {
	return nil, nil
}
func (quietGateway) TechnicianDisconnected(context.Context, string, string)         {}
func (quietGateway) UpdateLocation(context.Context, string, float64, float64) error { return nil }
func (quietGateway) SetAvailability(context.Context, string, bool) error            { return nil }
func (quietGateway) Acknowledge(context.Context, string, string) error              { return nil }
func (quietGateway) Decline(context.Context, string, string, string) error          { return nil }
func (quietGateway) Accept(context.Context, string, string) (*smp.Order, error) {
	return nil, smp.Errorf(smp.ECONFLICT, "no offer")
}

// TestPhoneBeatsAtTheServersPace: a phone whose own heartbeat interval is
// longer than the server's idle timeout (the dispatch bench's phones beat
// every 60 s against the server's 45 s) beats at the pace the welcome
// asks for and keeps its one connection. Before, every such phone was
// closed as idle and reconnected, each time with a token lookup and a
// technician read: 10,000 of them made a reconnect storm of ~200/s.
func TestPhoneBeatsAtTheServersPace(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	const idle = 300 * time.Millisecond
	hub, err := wsapi.NewHub(func(context.Context, *http.Request) (string, error) { return "tech-1", nil },
		wsapi.Config{IdleTimeout: idle, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	hub.SetGateway(quietGateway{})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()

	var me sim.SeededTechnician
	me.ID, me.Token, me.Lat, me.Lng = "tech-1", "tok", 10.78, 106.7
	phone := sim.NewTechnician(srv.URL, me, sim.Behavior{Heartbeat: time.Hour}, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); phone.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Five heartbeats take over a second: more than three idle timeouts.
	const want = 5
	deadline := time.Now().Add(15 * time.Second)
	for heartbeats(t, reg) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%v heartbeats reached the server in 15 s, want %d (connections opened: %d)", heartbeats(t, reg), want, phone.Stats.Connects.Load())
		}
		time.Sleep(10 * time.Millisecond) // polling the server's counter
	}
	if n := phone.Stats.Connects.Load(); n != 1 {
		t.Fatalf("the phone connected %d times, want 1: it was closed as idle", n)
	}
}

func heartbeats(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "smp_websocket_messages_total" {
			continue
		}
		for _, m := range mf.Metric {
			in, hb := false, false
			for _, l := range m.Label {
				in = in || l.GetName() == "direction" && l.GetValue() == "in"
				hb = hb || l.GetName() == "type" && l.GetValue() == "heartbeat"
			}
			if in && hb {
				return m.Counter.GetValue()
			}
		}
	}
	return 0
}
