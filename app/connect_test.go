package app

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"smp"
	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/sqlstore/sqlstoretest"
)

// TestConnectModule: --connect-addr adds the kafka-connect module to serve;
// ConnectOnly (smp connect) runs it alone; its API answers with the admin
// token and refuses without one; on SQLite smp-mysql-connector runs, and
// on every backend the read model's elasticsearch-sink.
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
		for token, want := range map[string]string{"adm": `200 ["elasticsearch-sink","smp-mysql-connector"]`, "": "401"} {
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
		wait.Until(t, 10*time.Second, "elasticsearch-sink's task RUNNING", func() bool {
			ts, err := a.Connect.TaskStatus("elasticsearch-sink", 0)
			return err == nil && ts.State == "RUNNING"
		})
		// Its /metrics (no token, as the platform's) has the INC-008 trigger.
		resp, err := http.Get(a.ConnectAPI.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`kafka_connect_connector_status{connector="smp-mysql-connector",state="RUNNING"} 1`,
			`kafka_connect_connector_status{connector="elasticsearch-sink",state="RUNNING"} 1`, "es_sink_lag_seconds "} {
			if !strings.Contains(string(body), want) {
				t.Errorf("ConnectOnly %v: /metrics lacks %s:\n%s", only, want, body)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConnectModuleOnMySQL: on a MySQL store the worker runs
// smp-mysql-connector from the server's binlog (a MariaDB the test starts
// with --log-bin, ROW): the snapshot stores an offset in binlog
// coordinates, and an order written after it reaches
// smp.cdc.smp_order.orders on the platform's event bus.
func TestConnectModuleOnMySQL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		envtest.Skip(t, "MariaDB binlog (change data capture)", "mariadbd is not on PATH: install mariadb-server")
	}
	m := sqlstoretest.StartMariaDB(t, "cdc", "--server-id=1", "--log-bin="+filepath.Join(t.TempDir(), "binlog"), "--binlog-format=ROW")
	sqlstoretest.ExecAll(t, m.DSN(""), "CREATE DATABASE smp_order")
	cfg := testConfig(t)
	cfg.AdminToken, cfg.ConnectAddr, cfg.ConnectOnly, cfg.MySQLDSN = "adm", "127.0.0.1:0", true, m.DSN("smp_order")
	a := &App{Cfg: cfg}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wait.Until(t, 20*time.Second, "smp-mysql-connector's binlog offset", func() bool {
		offs, err := a.Connect.Offsets(context.Background(), "smp-mysql-connector")
		return err == nil && len(offs) == 1 && offs[0].Offset["file"] != nil
	})
	if ts, err := a.Connect.TaskStatus("smp-mysql-connector", 0); err != nil || ts.State != "RUNNING" {
		t.Fatalf("task %+v %v", ts, err)
	}
	got := make(chan smp.Message, 1)
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Bus.Subscribe(sctx, "test-cdc", []string{"smp.cdc.smp_order.orders"}, func(_ context.Context, msg smp.Message) error {
			select {
			case got <- msg:
			default:
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	sqlstoretest.ExecAll(t, m.DSN("smp_order"), `INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at)
		VALUES ('ORD-1', 'C0001', 'HCMC', 'aircon', 10.77, 106.7, '', 100000, '01_created', 'pending', 1000, 1000)`)
	select {
	case msg := <-got:
		if msg.Key != `{"id":"ORD-1"}` || !strings.Contains(string(msg.Value), `"op":"c"`) || !strings.Contains(string(msg.Value), `"file":"binlog.`) {
			t.Fatalf("record %s %s", msg.Key, msg.Value)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no record on smp.cdc.smp_order.orders")
	}
}

// TestConnectOffsetsOnKafka: with the bus on Kafka the source offsets go
// to the connect-offsets topic (where another worker of the cluster reads
// them), not to the store's table.
func TestConnectOffsetsOnKafka(t *testing.T) {
	t.Parallel()
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	cfg := testConfig(t)
	cfg.AdminToken, cfg.ConnectAddr, cfg.ConnectOnly, cfg.KafkaBrokers = "adm", "127.0.0.1:0", true, strings.Join(k.ListenAddrs(), ",")
	a := &App{Cfg: cfg}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wait.Until(t, 20*time.Second, "smp-mysql-connector's offset on connect-offsets", func() bool {
		offs, err := a.Kafka.ConnectOffsets().ConnectOffsets(context.Background(), "smp-mysql-connector")
		return err == nil && len(offs) == 1
	})
	if offs, err := a.Store.ConnectOffsets(context.Background(), "smp-mysql-connector"); err != nil || len(offs) != 0 {
		t.Fatalf("offsets in the store's table: %v %v", offs, err)
	}
}
