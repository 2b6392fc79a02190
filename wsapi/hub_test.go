package wsapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"smp"
	"smp/internal/panics"
	"smp/wsapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buggyGateway is a technicians' gateway with a bug: Accept panics. The
// other calls succeed, as the engine's would for a known technician.
type buggyGateway struct{}

func (buggyGateway) TechnicianConnected(context.Context, string, string) ([]smp.TechnicianMessage, error) {
	return nil, nil
}
func (buggyGateway) TechnicianDisconnected(context.Context, string, string)         {}
func (buggyGateway) UpdateLocation(context.Context, string, float64, float64) error { return nil }
func (buggyGateway) SetAvailability(context.Context, string, bool) error            { return nil }
func (buggyGateway) Acknowledge(context.Context, string, string) error              { return nil }
func (buggyGateway) Decline(context.Context, string, string, string) error          { return nil }
func (buggyGateway) Accept(context.Context, string, string) (*smp.Order, error)     { panic("nil order") }

// TestPanicInMessageLoopIsRecovered: a message whose handling panics is
// answered with an internal error, counted in
// smp_panics_total{component="websocket"}, and the connection (and the
// process) go on; Stop then closes the connection and joins its
// goroutines (goleak in TestMain).
func TestPanicInMessageLoopIsRecovered(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	hub, err := wsapi.NewHub(func(context.Context, *http.Request) (string, error) { return "tech-1", nil },
		wsapi.Config{Registerer: reg, Now: func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	hub.SetGateway(buggyGateway{})
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+srv.URL[len("http"):], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var r wsapi.Reply
	if err := wsjson.Read(ctx, ws, &r); err != nil || r.Type != "welcome" {
		t.Fatalf("welcome: %+v %v", r, err)
	}
	must(t, wsjson.Write(ctx, ws, wsapi.ClientMessage{Type: "accept", OrderID: "o1", Ref: "a1"}))
	if err := wsjson.Read(ctx, ws, &r); err != nil || r.Type != "error" || r.Code != smp.EINTERNAL || r.Ref != "a1" {
		t.Fatalf("reply to the panicking accept: %+v %v", r, err)
	}
	must(t, wsjson.Write(ctx, ws, wsapi.ClientMessage{Type: "heartbeat", Ref: "h1"}))
	if err := wsjson.Read(ctx, ws, &r); err != nil || r.Type != "heartbeat_ack" || r.ServerTime == nil || r.ServerTime.Hour() != 9 {
		t.Fatalf("the connection goes on (with the injected clock): %+v %v", r, err)
	}
	if got := testutil.ToFloat64(panics.Collector(panics.New(reg, nil), "websocket")); got != 1 {
		t.Fatalf("smp_panics_total{component=\"websocket\"} = %v, want 1", got)
	}
	// The client keeps reading, so it answers the server's close frame.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	defer func() { <-readerDone }()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	must(t, hub.Stop(stopCtx))
	must(t, hub.Stop(stopCtx)) // twice is fine
	if n := hub.Connections(); n != 0 {
		t.Fatalf("%d connections after Stop", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
