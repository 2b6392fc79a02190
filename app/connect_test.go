package app

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"smp/internal/wait"
)

// TestConnectModule: --connect-addr adds the kafka-connect module to serve;
// ConnectOnly (smp connect) runs it alone; its API answers with the admin
// token and refuses without one; on SQLite smp-mysql-connector runs.
func TestConnectModule(t *testing.T) {
	t.Parallel()
	for _, only := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.AdminToken, cfg.ConnectAddr, cfg.ConnectOnly = "adm", "127.0.0.1:0", only
		a := &App{Cfg: cfg}
		if err := a.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		mods := a.Modules()
		if !slices.Contains(mods, ModuleConnect) || only != !slices.Contains(mods, ModuleServer) {
			t.Errorf("ConnectOnly %v: modules %v", only, mods)
		}
		for token, want := range map[string]string{"adm": `200 ["smp-mysql-connector"]`, "": "401"} {
			req, _ := http.NewRequest("GET", a.ConnectAPI.URL()+"/connectors", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(resp.Status[:3] + " " + strings.TrimSpace(string(body))); !strings.HasPrefix(got, want) {
				t.Errorf("ConnectOnly %v, token %q: %s, want %s", only, token, got, want)
			}
		}
		// On SQLite the embedded source runs: its snapshot stores an offset.
		wait.Until(t, 10*time.Second, "smp-mysql-connector's offset", func() bool {
			offs, err := a.Connect.Offsets(context.Background(), "smp-mysql-connector")
			return err == nil && len(offs) == 1
		})
		if ts, err := a.Connect.TaskStatus("smp-mysql-connector", 0); err != nil || ts.State != "RUNNING" {
			t.Errorf("task %+v %v", ts, err)
		}
		// Its /metrics (no token, as the platform's) has the INC-008 trigger.
		resp, err := http.Get(a.ConnectAPI.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `kafka_connect_connector_status{connector="smp-mysql-connector",state="RUNNING"} 1`) {
			t.Errorf("ConnectOnly %v: /metrics lacks the connector's status:\n%s", only, body)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
