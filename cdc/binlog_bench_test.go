package cdc_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
	"smp/cdc"
	"smp/connect"
	"smp/internal/envtest"
	"smp/kafkabus"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
)

// BenchmarkBinlogCapture measures, in one run on one MariaDB the
// benchmark starts (ROW binlog), how fast b.N inserted orders are read
// from the binlog:
//
//   - raw: go-mysql's BinlogSyncer alone, counting rows (no envelope, no
//     publication): the reference;
//   - smp-kafka: smp-mysql-connector (envelopes, keys, tombstones, offsets
//     on connect-offsets) publishing onto Kafka (kfake, 3 brokers) until
//     every record is on smp.cdc.smp_order.orders.
//
// Run it with a fixed count, e.g.
// go test ./cdc -run '^$' -bench BinlogCapture -benchtime 20000x
// Each reports changes/s; the rows are written (timer stopped) before the
// read is timed, from the binlog position before them.
func BenchmarkBinlogCapture(b *testing.B) {
	if _, err := exec.LookPath("mariadbd"); err != nil {
		envtest.Skip(b, "MariaDB binlog (change data capture)", "mariadbd is not on PATH: install mariadb-server")
	}
	m := sqlstoretest.StartMariaDB(b, "bench", "--server-id=1", "--log-bin="+filepath.Join(b.TempDir(), "binlog"), "--binlog-format=ROW")
	sqlstoretest.ExecAll(b, m.DSN(""), "CREATE DATABASE smp_order")
	store, err := sqlstore.Open(ctx, sqlstore.Config{MySQLDSN: m.DSN("smp_order")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	raw, err := sql.Open("mysql", m.DSN("smp_order"))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	next := 0
	// write inserts n orders (500 rows a statement) and returns the
	// binlog position before them.
	write := func(b *testing.B, n int) gomysql.Position {
		var pos gomysql.Position
		var x1, x2 sql.NullString // MariaDB's Binlog_Do_DB, Binlog_Ignore_DB
		if err := raw.QueryRowContext(ctx, `SHOW MASTER STATUS`).Scan(&pos.Name, &pos.Pos, &x1, &x2); err != nil {
			b.Fatal(err)
		}
		for done := 0; done < n; {
			k := min(500, n-done)
			vals := make([]string, k)
			for i := range vals {
				vals[i] = fmt.Sprintf("('ORD-%08d', 'C0001', 'HCMC', 'aircon', 10.77, 106.7, '1 Lê Lợi', 100000, '01_created', 'pending', 1000, 1000)", next)
				next++
			}
			if _, err := raw.ExecContext(ctx, `INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at) VALUES `+strings.Join(vals, ",")); err != nil {
				b.Fatal(err)
			}
			done += k
		}
		return pos
	}

	b.Run("raw", func(b *testing.B) {
		from := write(b, b.N)
		b.ResetTimer()
		syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: 4001, Flavor: "mariadb", Host: "127.0.0.1", Port: uint16(m.Port), User: "root",
			DisableRetrySync: true, UseDecimal: true, Logger: slog.New(slog.DiscardHandler)})
		defer syncer.Close()
		st, err := syncer.StartSync(from)
		if err != nil {
			b.Fatal(err)
		}
		rows := 0
		for rows < b.N {
			ev, err := st.GetEvent(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if r, ok := ev.Event.(*replication.RowsEvent); ok && string(r.Table.Table) == "orders" {
				rows += len(r.Rows)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	})

	b.Run("smp-kafka", func(b *testing.B) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			b.Fatal(err)
		}
		defer cluster.Close()
		bus, err := kafkabus.Open(kafkabus.Config{Brokers: cluster.ListenAddrs()})
		if err != nil {
			b.Fatal(err)
		}
		defer bus.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		const topic = "smp.cdc.smp_order.orders"
		if err := bus.EnsureTopics(ctx, topic); err != nil {
			b.Fatal(err)
		}
		from := write(b, b.N)
		offsets := bus.ConnectOffsets()
		if err := offsets.PutConnectOffsets(ctx, cdc.ConnectorName, []smp.ConnectOffset{{Partition: map[string]any{"server": "smp.cdc"},
			Offset: map[string]any{"file": from.Name, "pos": from.Pos}}}); err != nil {
			b.Fatal(err)
		}
		plugin, err := cdc.NewBinlog(cdc.BinlogConfig{DSN: m.DSN("smp_order"), Publisher: bus})
		if err != nil {
			b.Fatal(err)
		}
		w, err := connect.New(connect.Config{WorkerID: "bench", Plugins: map[string]connect.Plugin{cdc.Class: plugin}, Offsets: offsets})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := w.PutConfig(cdc.ConnectorName, plugin.DefaultConfig()); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		if err := w.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer w.Stop(context.Background())
		for {
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				b.Fatal(err)
			}
			var n int64
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
			if n >= int64(b.N) {
				break
			}
			if ts, _ := w.TaskStatus(cdc.ConnectorName, 0); ts.State == connect.Failed {
				b.Fatal(ts.Trace)
			}
			time.Sleep(5 * time.Millisecond) // polling the topic's end in a benchmark, not waiting in a test
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	})
}
