package wsapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp/wsapi"
)

// TestIdleTimeoutAndCloseReasons: the welcome asks for heartbeats at two
// thirds of the idle timeout; a connection that beats at that pace stays
// open over several idle timeouts (each message pushes the one idle
// timer back), a silent one is closed once the timeout passes, and each
// close is counted by its reason in smp_websocket_closed_total.
func TestIdleTimeoutAndCloseReasons(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	const idle = 300 * time.Millisecond
	_, url := startHub(t, okGateway{}, wsapi.Config{IdleTimeout: idle, Registerer: reg})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	beating := dial(t, ctx, url)
	w := readReply(t, ctx, beating)
	if w.Type != "welcome" || w.HeartbeatMs != 200 {
		t.Fatalf("welcome %+v, want heartbeat_ms 200 (two thirds of 300 ms)", w)
	}
	for start := time.Now(); time.Since(start) < 3*idle; {
		must(t, wsjson.Write(ctx, beating, wsapi.ClientMessage{Type: "heartbeat", Ref: "h"}))
		if r := readReply(t, ctx, beating); r.Type != "heartbeat_ack" {
			t.Fatalf("beating connection: %+v", r)
		}
		time.Sleep(time.Duration(w.HeartbeatMs) * time.Millisecond / 2) // the app's pace (with margin)
	}
	must(t, beating.Close(websocket.StatusNormalClosure, "done"))
	waitClosed(t, reg, "client", 1)

	silent := dial(t, ctx, url)
	if r := readReply(t, ctx, silent); r.Type != "welcome" {
		t.Fatalf("welcome %+v", r)
	}
	readUntilClosed(ctx, silent)
	waitClosed(t, reg, "idle", 1)
}

// waitClosed waits until smp_websocket_closed_total{reason} is want (the
// hub counts a close as its connection's goroutines finish).
func waitClosed(t *testing.T, reg *prometheus.Registry, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := testutil.GatherAndCount(reg, "smp_websocket_closed_total")
		if err != nil {
			t.Fatal(err)
		}
		if got > 0 && closedCount(t, reg, reason) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("smp_websocket_closed_total{reason=%q} = %v, want %v", reason, closedCount(t, reg, reason), want)
		}
		time.Sleep(5 * time.Millisecond) // polling the counter
	}
}

func closedCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "smp_websocket_closed_total" {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}

// TestConnectionsCountsOnlineOnes: a connection is counted once its
// technician is online (TechnicianConnected returned), not while it is
// still connecting: smp-bench waits for the count to reach its fleet and
// then measures the platform at rest, which it was not while the last
// phones' connecting reads were still queued (200-560 statements/s).
func TestConnectionsCountsOnlineOnes(t *testing.T) {
	t.Parallel()
	connecting, release := make(chan struct{}), make(chan struct{})
	hub, url := startHub(t, okGateway{connecting: connecting, release: release}, wsapi.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dial(t, ctx, url)
	select {
	case <-connecting:
	case <-ctx.Done():
		t.Fatal("the connection never reached the gateway")
	}
	if n := hub.Connections(); n != 0 {
		t.Fatalf("%d connections counted while connecting, want 0", n)
	}
	close(release)
	if r := readReply(t, ctx, ws); r.Type != "welcome" {
		t.Fatalf("welcome %+v", r)
	}
	if n := hub.Connections(); n != 1 {
		t.Fatalf("%d connections after the welcome, want 1", n)
	}
	must(t, ws.Close(websocket.StatusNormalClosure, "bye"))
	for deadline := time.Now().Add(10 * time.Second); hub.Connections() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after the close, want 0", hub.Connections())
		}
		time.Sleep(5 * time.Millisecond) // polling the count
	}
}
