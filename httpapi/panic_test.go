package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"smp/httpapi"
	"smp/sqlstore"
)

// TestPanickingHandlerAnswers500AndServerServesOn: a handler that panics
// answers 500 with the JSON error body, is logged once with its stack,
// moves smp_panics_total{component="http"}, and the server (a real one,
// on a port) keeps serving.
func TestPanickingHandlerAnswers500AndServerServesOn(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	var calls atomic.Int32
	// The first /health panics inside its check, as a buggy handler would.
	boom := httpapi.Check{Name: "boom", Fn: func(context.Context) error {
		if calls.Add(1) == 1 {
			panic("nil map somewhere")
		}
		return nil
	}}
	srv, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registerer: reg, Gatherer: reg},
		httpapi.Deps{Store: db, Checks: []httpapi.Check{boom}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	get := func() (int, map[string]any) {
		resp, err := http.Get(srv.URL() + "/health")
		if err != nil {
			t.Fatalf("the server stopped serving: %v", err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		return resp.StatusCode, body
	}
	code, body := get()
	e, _ := body["error"].(map[string]any)
	if code != 500 || e["code"] != "internal" || e["message"] == "" {
		t.Fatalf("panicking handler: %d %v", code, body)
	}
	if n := strings.Count(logs.String(), "panic recovered"); n != 1 || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("logged %d times (want once, with the stack): %s", n, logs.String())
	}
	if code, body := get(); code != 200 || body["status"] != "ok" {
		t.Fatalf("after the panic: %d %v", code, body)
	}
	if got := panicsTotal(t, reg, "http"); got != 1 {
		t.Fatalf("smp_panics_total{component=\"http\"} = %v, want 1", got)
	}
}

func panicsTotal(t *testing.T, g prometheus.Gatherer, component string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "smp_panics_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" && l.GetValue() == component {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
