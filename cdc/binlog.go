package cdc

// The MySQL/MariaDB binlog source: smp-mysql-connector on a MySQL store,
// reading the server's binlog as a replica does (go-mysql's BinlogSyncer,
// ROW format) and publishing the same Debezium envelopes as the embedded
// source (source.go) on the same topics. Its offset, in the partition
// {"server": <topic.prefix>}, is {"file", "pos", "gtids", "ts_sec"}: the
// binlog coordinates after the last transaction whose changes were
// published, and on MariaDB the GTID state there (a restart resumes from
// the GTIDs, else from file and pos). DDL statements go to the schema
// history topic with their position; a row's columns are named from the
// table map (binlog_row_metadata=FULL) or else from the table's current
// schema, read again after each DDL on it.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/connect"
)

// DefaultTables are the tables captured when table.include.list is not
// set: the orders and their transitions, as on the embedded default (a
// table of secrets, such as tokens or sessions, is never captured unless
// named).
var DefaultTables = []string{"orders", "order_transitions"}

// DefaultServerID is database.server.id's default: the replica id the
// connector registers with (it must differ from every other replica's).
const DefaultServerID = 184054

// MinBinlogRetention is the runbook's binlog retention (INC-008
// prevention: binlog_expire_logs_seconds=604800); the task warns below it.
const MinBinlogRetention = 7 * 24 * time.Hour

// BinlogConfig configures the binlog plugin.
type BinlogConfig struct {
	// DSN is the MySQL server to read (go-sql-driver's form: the
	// platform's --mysql-dsn, the primary): its host, port, user and
	// password, and its database as database.include.list's default. The
	// user needs SELECT, REPLICATION SLAVE and REPLICATION CLIENT (BINLOG
	// MONITOR on MariaDB). The password stays here, never in the
	// connector's configuration (GET …/config shows that).
	DSN       string
	Publisher Publisher
	// Batch is how many records one publication holds at most (500).
	Batch int
	// FlushAfter is how long changes wait for more before they are
	// published (10 ms).
	FlushAfter time.Duration
	// LagEvery is how often smp_cdc_source_lag_bytes is measured (1 s).
	LagEvery time.Duration
	// CommitEvery is how often the position after published changes is
	// committed (1 s; Connect's offset.flush.interval.ms): a restart
	// publishes again at most what came after the last commit.
	CommitEvery time.Duration
	// OffsetFlush is how often a position reached through other tables'
	// transactions only is committed (60 s).
	OffsetFlush time.Duration
	// ReadTimeout ends a stream that received nothing, not even a
	// heartbeat, for that long: the task fails (30 s).
	ReadTimeout time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
	// Registerer, when set, gets smp_cdc_changes_total,
	// smp_cdc_source_lag_seconds and smp_cdc_source_lag_bytes{connector}
	// (the server's binlog position minus the connector's, in bytes).
	Registerer prometheus.Registerer
}

// Binlog is the plugin of the MySQL/MariaDB binlog.
type Binlog struct {
	cfg      BinlogConfig
	dsn      *mysql.Config
	changes  *prometheus.CounterVec
	lag      *prometheus.GaugeVec
	lagBytes *prometheus.GaugeVec
}

var _ connect.Plugin = (*Binlog)(nil)

// NewBinlog returns the plugin.
func NewBinlog(cfg BinlogConfig) (*Binlog, error) {
	if cfg.DSN == "" || cfg.Publisher == nil {
		return nil, fmt.Errorf("cdc: DSN and Publisher are required")
	}
	dsn, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("cdc: DSN: %w", err)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.FlushAfter <= 0 {
		cfg.FlushAfter = 10 * time.Millisecond
	}
	if cfg.LagEvery <= 0 {
		cfg.LagEvery = time.Second
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = time.Second
	}
	if cfg.OffsetFlush <= 0 {
		cfg.OffsetFlush = time.Minute
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Binlog{cfg: cfg, dsn: dsn, changes: changesMetric(), lag: lagMetric(),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smp_cdc_source_lag_bytes",
			Help: "The server's binlog position minus the connector's (bytes of binlog not yet published)."}, []string{"connector"})}
	if err := register(cfg.Registerer, b.changes, b.lag, b.lagBytes); err != nil {
		return nil, err
	}
	return b, nil
}

// Database is the DSN's database (database.include.list's default).
func (b *Binlog) Database() string { return b.dsn.DBName }

// DefaultConfig is the connector's configuration on a MySQL store: the
// DSN's database, its orders and transitions.
func (b *Binlog) DefaultConfig() map[string]string {
	db := b.Database()
	tables := make([]string, len(DefaultTables))
	for i, t := range DefaultTables {
		tables[i] = db + "." + t
	}
	return map[string]string{"connector.class": Class, "tasks.max": "1", "topic.prefix": DefaultTopicPrefix,
		"database.include.list": db, "table.include.list": strings.Join(tables, ","), "snapshot.mode": SnapshotInitial,
		"database.server.id": strconv.Itoa(DefaultServerID), "schema.history.internal.kafka.topic": DefaultTopicPrefix + ".schema-history"}
}

// Type is "source".
func (b *Binlog) Type() string { return "source" }

// Validate checks what the embedded source checks, the server id and the
// database list.
func (b *Binlog) Validate(cfg map[string]string) error {
	if err := (&Embedded{}).Validate(cfg); err != nil {
		return err
	}
	if v := cfg["database.server.id"]; v != "" {
		if n, err := strconv.ParseUint(v, 10, 32); err != nil || n == 0 {
			return smp.Errorf(smp.EINVALID, "database.server.id %q: must be a number from 1 to 4294967295", v)
		}
	}
	if len(b.databases(cfg)) == 0 {
		return smp.Errorf(smp.EINVALID, "database.include.list: name the database to capture")
	}
	return nil
}

func (b *Binlog) databases(cfg map[string]string) []string {
	return splitList(or(cfg["database.include.list"], b.Database()))
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Tasks makes the connector's one task (the binlog is one ordered log).
func (b *Binlog) Tasks(name string, cfg map[string]string) ([]connect.Task, error) {
	sid, _ := strconv.ParseUint(or(cfg["database.server.id"], strconv.Itoa(DefaultServerID)), 10, 32)
	t := &binlogTask{b: b, name: name, prefix: or(cfg["topic.prefix"], DefaultTopicPrefix), mode: or(cfg["snapshot.mode"], SnapshotInitial),
		serverID: uint32(sid), history: or(cfg["schema.history.internal.kafka.topic"], or(cfg["topic.prefix"], DefaultTopicPrefix)+".schema-history"),
		dbs: b.databases(cfg), tables: map[string]bool{}, log: b.cfg.Logger.With("connector", name)}
	for _, v := range splitList(cfg["table.include.list"]) {
		t.tables[v] = true
	}
	if len(t.tables) == 0 {
		for _, db := range t.dbs {
			for _, tb := range DefaultTables {
				t.tables[db+"."+tb] = true
			}
		}
	}
	return []connect.Task{t}, nil
}

type binlogTask struct {
	b             *Binlog
	name, prefix  string
	mode, history string
	serverID      uint32
	dbs           []string
	tables        map[string]bool // "db.table" (or a bare table name: in every database)
	log           *slog.Logger
	mariadb       bool
	fullMeta      bool // binlog_row_metadata=FULL: the table map names the columns
	schemas       map[string]*tableSchema
	conn          *sql.DB
	committedMu   sync.Mutex
	reached       binlogPos // published up to here (committed, or only other tables' transactions after it)
}

// binlogPos is a position in the binlog (the connector's offset).
type binlogPos struct {
	File  string
	Pos   uint32
	GTIDs string // MariaDB's GTID state there (domain-server-seq per domain), "" if none
}

func (p binlogPos) String() string {
	s := fmt.Sprintf("%s:%d", p.File, p.Pos)
	if p.GTIDs != "" {
		s += " (GTIDs " + p.GTIDs + ")"
	}
	return s
}

func (t *binlogTask) captured(db, table string) bool {
	if !slices.Contains(t.dbs, db) {
		return false
	}
	return t.tables[db+"."+table] || t.tables[table]
}

func (t *binlogTask) partition() map[string]any { return map[string]any{"server": t.prefix} }

func (t *binlogTask) position(ctx context.Context, offs connect.Offsets) (binlogPos, bool, error) {
	stored, err := offs.Read(ctx)
	if err != nil {
		return binlogPos{}, false, err
	}
	for _, o := range stored {
		if o.Partition["server"] != t.prefix {
			continue
		}
		file, _ := o.Offset["file"].(string)
		var pos float64
		switch v := o.Offset["pos"].(type) {
		case float64:
			pos = v
		case json.Number:
			pos, _ = v.Float64()
		}
		gtids, _ := o.Offset["gtids"].(string)
		if file == "" || pos <= 0 {
			return binlogPos{}, false, fmt.Errorf("stored offset %v has no binlog file and pos", o.Offset)
		}
		return binlogPos{File: file, Pos: uint32(pos), GTIDs: gtids}, true, nil
	}
	return binlogPos{}, false, nil
}

func (t *binlogTask) commit(ctx context.Context, offs connect.Offsets, p binlogPos, tsSec int64) error {
	o := map[string]any{"file": p.File, "pos": p.Pos, "ts_sec": tsSec}
	if p.GTIDs != "" {
		o["gtids"] = p.GTIDs
	}
	if err := offs.Commit(ctx, []connect.Offset{{Partition: t.partition(), Offset: o}}); err != nil {
		return err
	}
	t.reach(p)
	return nil
}

// openServer opens a pool of at most conns connections to the DSN's
// server, with no default database (the connector names each table with
// its database) and times read in UTC.
func (b *Binlog) openServer(conns int) (*sql.DB, error) {
	dsn := b.dsn.Clone()
	dsn.DBName = ""
	dsn.Loc = time.UTC
	db, err := sql.Open("mysql", dsn.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	return db, nil
}

// isMariaDB tells MariaDB from MySQL by what SELECT VERSION() answered.
func isMariaDB(version string) bool {
	return strings.Contains(strings.ToLower(version), "mariadb")
}

// Run checks the server, snapshots if it must, then streams the binlog
// until ctx ends or the stream fails (the task is then FAILED and the
// watchdog restarts it: at least once, from the stored offset).
func (t *binlogTask) Run(ctx context.Context, offs connect.Offsets) error {
	db, err := t.b.openServer(3)
	if err != nil {
		return err
	}
	defer db.Close()
	t.conn = db
	t.schemas = map[string]*tableSchema{}
	if err := t.checkServer(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	pos, ok, err := t.position(ctx, offs)
	if err != nil {
		return err
	}
	if ok {
		available, err := t.available(ctx, pos)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !available {
			if t.mode != SnapshotWhenNeeded {
				return &PositionLostError{Position: pos.String()}
			}
			t.log.Warn("the stored binlog position is no longer available: taking a new snapshot (snapshot.mode when_needed); consumers get each row again", "position", pos.String())
			ok = false
		}
	}
	if !ok {
		if t.mode == SnapshotNever {
			if pos, err = t.firstPosition(ctx); err != nil {
				return err
			}
		} else if pos, err = t.snapshot(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := t.commit(ctx, offs, pos, t.b.cfg.Now().Unix()); err != nil {
			return err
		}
	}
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); t.measureLag(lagCtx) }()
	defer func() { stopLag(); <-lagDone }()
	for {
		err := t.stream(ctx, offs, pos)
		if ctx.Err() != nil {
			return nil
		}
		var lost *PositionLostError
		if errors.As(err, &lost) && t.mode == SnapshotWhenNeeded {
			t.log.Warn("the binlog position is no longer available: taking a new snapshot (snapshot.mode when_needed); consumers get each row again", "position", lost.Position)
			if pos, err = t.snapshot(ctx); err != nil {
				return err
			}
			if err := t.commit(ctx, offs, pos, t.b.cfg.Now().Unix()); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// checkServer reads the flavor and the binlog settings: the binlog on,
// ROW format, FULL row images (else the task fails with Debezium's
// message), and the retention (a warning below 7 days).
func (t *binlogTask) checkServer(ctx context.Context) error {
	var version, format, image string
	var logBin int
	if err := t.conn.QueryRowContext(ctx, `SELECT VERSION(), @@log_bin, @@binlog_format, @@binlog_row_image`).Scan(&version, &logBin, &format, &image); err != nil {
		return fmt.Errorf("cdc: read the server's binlog settings: %w", err)
	}
	t.mariadb = isMariaDB(version)
	if logBin == 0 {
		//lint:ignore ST1005 Debezium's message, word for word: operators search for it
		return errors.New("The MySQL server is not configured to use a binlog (log_bin is OFF), which is required for this connector to work properly. Change the MySQL configuration to use a binlog (--log-bin) and restart the connector.")
	}
	if !strings.EqualFold(format, "ROW") {
		//lint:ignore ST1005 Debezium's message, word for word: operators search for it
		return errors.New("The MySQL server is not configured to use a ROW binlog_format, which is required for this connector to work properly. Change the MySQL configuration to use a binlog_format=ROW and restart the connector.")
	}
	if !strings.EqualFold(image, "FULL") {
		//lint:ignore ST1005 Debezium's message, word for word: operators search for it
		return errors.New("The MySQL server is not configured to use a FULL binlog_row_image, which is required for this connector to work properly. Change the MySQL configuration to use a binlog_row_image=FULL and restart the connector.")
	}
	var meta string
	if t.conn.QueryRowContext(ctx, `SELECT @@binlog_row_metadata`).Scan(&meta) == nil {
		t.fullMeta = strings.EqualFold(meta, "FULL")
	}
	if !t.fullMeta {
		t.log.Info("binlog_row_metadata is not FULL: rows are named from the tables' current columns (exact unless the connector is behind a DDL that changed more than columns at the end)")
	}
	if retention, ok := t.retention(ctx); ok && retention > 0 && retention < MinBinlogRetention {
		t.log.Warn("binlog retention is below 7 days: a connector stopped longer than that loses its position (set binlog_expire_logs_seconds=604800)",
			"retention_seconds", int64(retention.Seconds()))
	}
	return nil
}

// retention is how long the server keeps binlogs (0: for ever):
// binlog_expire_logs_seconds, else expire_logs_days (MariaDB 10.11 has
// both; MySQL 8.4 only the first).
func (t *binlogTask) retention(ctx context.Context) (time.Duration, bool) {
	var secs float64
	if t.conn.QueryRowContext(ctx, `SELECT @@binlog_expire_logs_seconds`).Scan(&secs) == nil && secs > 0 {
		return time.Duration(secs) * time.Second, true
	}
	var days float64
	if t.conn.QueryRowContext(ctx, `SELECT @@expire_logs_days`).Scan(&days) == nil {
		return time.Duration(days * float64(24*time.Hour)), true
	}
	return 0, secs == 0
}

// binaryLogs lists the server's binlog files and their sizes, oldest first.
func (t *binlogTask) binaryLogs(ctx context.Context) ([]binlogFile, error) {
	rows, err := t.conn.QueryContext(ctx, `SHOW BINARY LOGS`)
	if err != nil {
		return nil, fmt.Errorf("cdc: SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []binlogFile
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		size, _ := strconv.ParseInt(string(vals[1]), 10, 64)
		out = append(out, binlogFile{name: string(vals[0]), size: size})
	}
	return out, rows.Err()
}

type binlogFile struct {
	name string
	size int64
}

// available says whether the binlog still holds pos (its file was not
// purged).
func (t *binlogTask) available(ctx context.Context, pos binlogPos) (bool, error) {
	logs, err := t.binaryLogs(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(logs, func(f binlogFile) bool { return f.name == pos.File }), nil
}

// firstPosition is the start of the oldest binlog kept (snapshot.mode
// never with no offset).
func (t *binlogTask) firstPosition(ctx context.Context) (binlogPos, error) {
	logs, err := t.binaryLogs(ctx)
	if err != nil {
		return binlogPos{}, err
	}
	if len(logs) == 0 {
		return binlogPos{}, errors.New("cdc: the server lists no binary logs")
	}
	return binlogPos{File: logs[0].name, Pos: 4}, nil
}

// measureLag sets smp_cdc_source_lag_bytes every LagEvery: the bytes of
// binlog after the connector's committed position.
func (t *binlogTask) measureLag(ctx context.Context) {
	tick := time.NewTicker(t.b.cfg.LagEvery)
	defer tick.Stop()
	for {
		t.committedMu.Lock()
		p := t.reached
		t.committedMu.Unlock()
		if logs, err := t.binaryLogs(ctx); err == nil && p.File != "" {
			t.b.lagBytes.WithLabelValues(t.name).Set(float64(lagBytes(logs, p)))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lagBytes is the size of the binlog after p.
func lagBytes(logs []binlogFile, p binlogPos) int64 {
	var n int64
	for _, f := range logs {
		switch {
		case f.name == p.File:
			n += max(0, f.size-int64(p.Pos))
		case f.name > p.File:
			n += f.size
		}
	}
	return n
}

// --- the snapshot ---

// beginSnapshot starts a consistent read on conn and returns the binlog
// position of its view (MariaDB: START TRANSACTION WITH CONSISTENT
// SNAPSHOT gives it; MySQL: under a brief global read lock). The caller
// ends the transaction (ROLLBACK) when it is done reading.
func (t *binlogTask) beginSnapshot(ctx context.Context, conn *sql.Conn) (binlogPos, error) {
	for _, q := range []string{`SET SESSION time_zone = '+00:00'`, `SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot: %w", err)
		}
	}
	var pos binlogPos
	if t.mariadb {
		if _, err := conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT`); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot: %w", err)
		}
		rows, err := conn.QueryContext(ctx, `SHOW STATUS LIKE 'binlog_snapshot_%'`)
		if err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot position: %w", err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return binlogPos{}, err
			}
			switch strings.ToLower(k) {
			case "binlog_snapshot_file":
				pos.File = v
			case "binlog_snapshot_position":
				n, _ := strconv.ParseUint(v, 10, 32)
				pos.Pos = uint32(n)
			}
		}
		rows.Close()
		if err := conn.QueryRowContext(ctx, `SELECT COALESCE(BINLOG_GTID_POS(?, ?), '')`, pos.File, pos.Pos).Scan(&pos.GTIDs); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot GTIDs: %w", err)
		}
	} else {
		if _, err := conn.ExecContext(ctx, `FLUSH TABLES WITH READ LOCK`); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot lock: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT`); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot: %w", err)
		}
		logs, err := t.binaryLogs(ctx)
		if err == nil && len(logs) > 0 {
			pos.File, pos.Pos = logs[len(logs)-1].name, uint32(logs[len(logs)-1].size)
		}
		if _, uerr := conn.ExecContext(ctx, `UNLOCK TABLES`); err != nil || uerr != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot position: %w", errors.Join(err, uerr))
		}
	}
	if pos.File == "" {
		conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return binlogPos{}, errors.New("cdc: snapshot: the server gave no binlog position")
	}
	return pos, nil
}

// snapshot reads every captured table in one consistent read (MariaDB:
// START TRANSACTION WITH CONSISTENT SNAPSHOT gives the binlog position of
// that view; MySQL: under a brief global read lock) and publishes each
// row as an "r" read; the schema history gets each table's CREATE TABLE.
// It returns the binlog position the snapshot covers.
func (t *binlogTask) snapshot(ctx context.Context) (binlogPos, error) {
	t.log.Info("snapshot started")
	conn, err := t.conn.Conn(ctx)
	if err != nil {
		return binlogPos{}, err
	}
	defer conn.Close()
	pos, err := t.beginSnapshot(ctx, conn)
	if err != nil {
		return binlogPos{}, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	now := t.b.cfg.Now().UnixMilli()
	tables, err := t.capturedTables(ctx)
	if err != nil {
		return binlogPos{}, err
	}
	var msgs []smp.Message
	var last *Envelope
	var pending *smp.Message
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		err := t.b.cfg.Publisher.Publish(ctx, msgs...)
		msgs = msgs[:0]
		return err
	}
	for _, dt := range tables {
		s, err := t.loadSchema(ctx, dt[0], dt[1])
		if err != nil {
			return binlogPos{}, err
		}
		var ddl string
		if err := conn.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteID(dt[0])+"."+quoteID(dt[1])).Scan(new(string), &ddl); err != nil {
			return binlogPos{}, fmt.Errorf("cdc: snapshot %s.%s: %w", dt[0], dt[1], err)
		}
		hist, err := t.historyRecord(pos, dt[0], ddl, now)
		if err != nil {
			return binlogPos{}, err
		}
		msgs = append(msgs, hist)
		err = t.readTable(ctx, conn, s, "", nil, func(row []any) error {
			if pending != nil {
				msgs = append(msgs, *pending)
				if len(msgs) >= t.b.cfg.Batch {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			key, after := s.key(row), s.object(s.names(), row)
			env := Envelope{After: after, Source: t.source(dt[0], dt[1], now, "true", pos.File, int64(pos.Pos), 0, 0, nil), Op: "r", TsMs: now}
			last = &env
			v, err := json.Marshal(env)
			if err != nil {
				return err
			}
			pending = &smp.Message{Topic: Topic(t.prefix, dt[0], dt[1]), Key: key, Value: v}
			t.b.changes.WithLabelValues(t.name, dt[1], "r").Inc()
			return nil
		})
		if err != nil {
			return binlogPos{}, err
		}
	}
	if pending != nil {
		last.Source.Snapshot = "last"
		v, err := json.Marshal(last)
		if err != nil {
			return binlogPos{}, err
		}
		pending.Value = v
		msgs = append(msgs, *pending)
	}
	if err := flush(); err != nil {
		return binlogPos{}, err
	}
	t.log.Info("snapshot completed", "position", pos.String())
	return pos, nil
}

// queryer is a connection (in a snapshot) or the pool.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readTable reads the rows of a table on conn (in its snapshot; those
// matching where, "" for all), in primary-key order, each value as the
// binlog's reading of it.
func (t *binlogTask) readTable(ctx context.Context, conn queryer, s *tableSchema, where string, args []any, fn func(row []any) error) error {
	var names []string
	for _, c := range s.cols {
		names = append(names, quoteID(c.name))
	}
	order := ""
	if len(s.pk) > 0 {
		var ks []string
		for _, i := range s.pk {
			ks = append(ks, quoteID(s.cols[i].name))
		}
		order = " ORDER BY " + strings.Join(ks, ", ")
	}
	rows, err := conn.QueryContext(ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+quoteID(s.db)+"."+quoteID(s.table)+where+order, args...)
	if err != nil {
		return fmt.Errorf("cdc: snapshot %s.%s: %w", s.db, s.table, err)
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(s.cols))
	ptrs := make([]any, len(s.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = s.cols[i].fromText(v)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return rows.Err()
}

// ReadTables reads tables of the DSN's database (the connector's default
// database) in one consistent read, as the snapshot does, calling fn with
// each table, row key and row: the JSON a change event of the same data
// carries (its key, its "after"). It returns the binlog position of that
// view (File and Pos of a Source), so that a caller comparing the rows
// with what the changes before it made (the read model's drift check)
// knows which changes the read holds. The server's user needs what the
// connector needs (RELOAD too on MySQL, for the read lock).
func (b *Binlog) ReadTables(ctx context.Context, tables []string, fn func(table string, key, row []byte) error) (Source, error) {
	db, err := b.openServer(2)
	if err != nil {
		return Source{}, err
	}
	defer db.Close()
	t := &binlogTask{b: b, conn: db, log: b.cfg.Logger}
	var version string
	if err := db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		return Source{}, fmt.Errorf("cdc: read tables: %w", err)
	}
	t.mariadb = isMariaDB(version)
	conn, err := db.Conn(ctx)
	if err != nil {
		return Source{}, err
	}
	defer conn.Close()
	pos, err := t.beginSnapshot(ctx, conn)
	if err != nil {
		return Source{}, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	for _, table := range tables {
		s, err := t.loadSchema(ctx, b.Database(), table)
		if err != nil {
			return Source{}, err
		}
		if err := t.readTable(ctx, conn, s, "", nil, func(row []any) error {
			return fn(table, []byte(s.key(row)), s.object(s.names(), row))
		}); err != nil {
			return Source{}, err
		}
	}
	return Source{Connector: "mysql", DB: b.Database(), File: pos.File, Pos: int64(pos.Pos)}, nil
}

// ReadCapturedRow reads one row of a table of the DSN's database by its
// primary key (a single column) now, as ReadTables would give it; nil
// when there is none.
func (b *Binlog) ReadCapturedRow(ctx context.Context, table, id string) ([]byte, error) {
	db, err := b.openServer(1)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	t := &binlogTask{b: b, conn: db, log: b.cfg.Logger}
	s, err := t.loadSchema(ctx, b.Database(), table)
	if err != nil {
		return nil, err
	}
	if len(s.pk) != 1 {
		return nil, fmt.Errorf("cdc: %s.%s: a row is read by a primary key of one column", b.Database(), table)
	}
	var out []byte
	err = t.readTable(ctx, db, s, " WHERE "+quoteID(s.cols[s.pk[0]].name)+" = ?", []any{id}, func(row []any) error {
		out = s.object(s.names(), row)
		return nil
	})
	return out, err
}

// capturedTables lists the captured tables that exist, as [db, table].
func (t *binlogTask) capturedTables(ctx context.Context) ([][2]string, error) {
	var out [][2]string
	for _, db := range t.dbs {
		rows, err := t.conn.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, db)
		if err != nil {
			return nil, fmt.Errorf("cdc: list tables: %w", err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return nil, err
			}
			if t.captured(db, name) {
				out = append(out, [2]string{db, name})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func quoteID(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// --- the stream ---

type streamState struct {
	file     string
	gtids    map[uint32]string // domain -> "domain-server-seq"
	gtid     string            // the current transaction's
	boundary binlogPos         // after the last complete transaction
	dirty    bool              // boundary not committed yet
	pending  []smp.Message
	counts   []string // table/op of each pending change, for the metric
	lastTs   int64    // ms: when the last pending change was written
	tsSec    int64
	// lastCommit is when an offset was last committed (wall clock: a
	// rate limit, not a business time).
	lastCommit time.Time
	reported   binlogPos // the boundary last given to reach
	owed       bool      // changes published since the last commit
}

func (s *streamState) gtidString() string {
	var parts []string
	for _, d := range slices.Sorted(maps.Keys(s.gtids)) {
		parts = append(parts, s.gtids[d])
	}
	return strings.Join(parts, ",")
}

var ddlTable = regexp.MustCompile("(?is)^\\s*(?:/\\*.*?\\*/\\s*)*(ALTER|CREATE|DROP|RENAME|TRUNCATE)\\s+(?:ONLINE\\s+|IGNORE\\s+|TEMPORARY\\s+|OR\\s+REPLACE\\s+)*(?:TABLE\\s+)?(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?`?([A-Za-z0-9_$]+)`?(?:\\.`?([A-Za-z0-9_$]+)`?)?")

var createTable = regexp.MustCompile(`(?i)^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE`)

func (t *binlogTask) stream(ctx context.Context, offs connect.Offsets, from binlogPos) error {
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: t.serverID, Flavor: flavor(t.mariadb), Host: hostOf(t.b.dsn.Addr), Port: portOf(t.b.dsn.Addr), User: t.b.dsn.User, Password: t.b.dsn.Passwd,
		DisableRetrySync: true, HeartbeatPeriod: time.Second, ReadTimeout: t.b.cfg.ReadTimeout, UseDecimal: true, TimestampStringLocation: time.UTC,
		Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	st := &streamState{file: from.File, gtids: map[uint32]string{}, boundary: from, reported: from, lastCommit: time.Now()}
	defer func() {
		// A position reached through other tables' transactions is kept
		// at a clean stop (nothing of it is unpublished).
		if st.dirty && len(st.pending) == 0 {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := t.commit(cctx, offs, st.boundary, st.tsSec); err != nil {
				t.log.Warn("the last position was not stored: it is read again at the next start", "error", err)
			}
		}
	}()
	var streamer *replication.BinlogStreamer
	var err error
	if t.mariadb && from.GTIDs != "" {
		for _, g := range strings.Split(from.GTIDs, ",") {
			if d, _, ok := strings.Cut(g, "-"); ok {
				n, _ := strconv.ParseUint(d, 10, 32)
				st.gtids[uint32(n)] = g
			}
		}
		var set gomysql.GTIDSet
		if set, err = gomysql.ParseMariadbGTIDSet(from.GTIDs); err == nil {
			streamer, err = syncer.StartSyncGTID(set)
		}
	} else {
		streamer, err = syncer.StartSync(gomysql.Position{Name: from.File, Pos: from.Pos})
	}
	if err != nil {
		return t.streamError(err, from)
	}
	t.log.Info("streaming the binlog", "from", from.String())
	for {
		evCtx, cancel := ctx, context.CancelFunc(func() {})
		if len(st.pending) > 0 || st.boundary != st.reported {
			evCtx, cancel = context.WithTimeout(ctx, t.b.cfg.FlushAfter)
		} else if st.owed && st.dirty {
			evCtx, cancel = context.WithTimeout(ctx, max(t.b.cfg.FlushAfter, t.b.cfg.CommitEvery-time.Since(st.lastCommit)))
		}
		ev, err := streamer.GetEvent(evCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if err := t.flush(ctx, offs, st); err != nil {
					return err
				}
				continue
			}
			return t.streamError(err, st.boundary)
		}
		if err := t.event(ctx, offs, st, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// streamError turns the server's ERROR 1236 (the binlog it was asked for
// was purged) into Debezium's position-lost failure.
func (t *binlogTask) streamError(err error, at binlogPos) error {
	var my *gomysql.MyError
	if errors.As(err, &my) && my.Code == gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG || strings.Contains(err.Error(), "ERROR 1236") {
		return &PositionLostError{Position: at.String() + ": " + err.Error()}
	}
	return fmt.Errorf("cdc: binlog stream at %s: %w", at, err)
}

func flavor(mariadb bool) string {
	if mariadb {
		return gomysql.MariaDBFlavor
	}
	return gomysql.MySQLFlavor
}

func hostOf(addr string) string {
	h, _, ok := strings.Cut(addr, ":")
	if !ok || h == "" {
		return "127.0.0.1"
	}
	return h
}

func portOf(addr string) uint16 {
	_, p, ok := strings.Cut(addr, ":")
	n, err := strconv.ParseUint(p, 10, 16)
	if !ok || err != nil {
		return 3306
	}
	return uint16(n)
}

func (t *binlogTask) event(ctx context.Context, offs connect.Offsets, st *streamState, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		st.file = string(e.NextLogName)
		if h.Timestamp == 0 && !st.dirty && len(st.pending) == 0 && st.boundary.File != st.file && e.Position > 4 {
			// A fake rotate (the stream's start) naming where it starts.
			st.boundary.File, st.boundary.Pos = st.file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		st.gtid = e.GTID.String()
	case *replication.RowsEvent:
		db, table := string(e.Table.Schema), string(e.Table.Table)
		if !t.captured(db, table) {
			return nil
		}
		return t.rows(ctx, st, h, e, db, table)
	case *replication.XIDEvent:
		t.endTx(st, h)
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		switch strings.ToUpper(q) {
		case "BEGIN":
			return nil
		case "COMMIT":
			t.endTx(st, h)
			return nil
		}
		if err := t.ddl(ctx, offs, st, h, string(e.Schema), q); err != nil {
			return err
		}
		t.endTx(st, h)
	default:
		return nil
	}
	if len(st.pending) >= t.b.cfg.Batch {
		return t.flush(ctx, offs, st)
	}
	return nil
}

func (t *binlogTask) endTx(st *streamState, h *replication.EventHeader) {
	if st.gtid != "" {
		if d, _, ok := strings.Cut(st.gtid, "-"); ok {
			n, _ := strconv.ParseUint(d, 10, 32)
			st.gtids[uint32(n)] = st.gtid
		}
	}
	st.gtid = ""
	st.boundary = binlogPos{File: st.file, Pos: h.LogPos, GTIDs: st.gtidString()}
	st.tsSec = int64(h.Timestamp)
	st.dirty = true
}

// flush publishes what is pending, then commits the position after the
// last complete transaction, at most every CommitEvery (at least once: a
// crash publishes again from the previous offset). A position reached
// through transactions of other tables only is committed at most every
// OffsetFlush: each commit is itself a transaction in the binlog when the
// offsets are in the same database, which must not feed itself.
func (t *binlogTask) flush(ctx context.Context, offs connect.Offsets, st *streamState) error {
	if len(st.pending) > 0 {
		if err := t.b.cfg.Publisher.Publish(ctx, st.pending...); err != nil {
			return err
		}
		for _, c := range st.counts {
			table, op, _ := strings.Cut(c, "/")
			t.b.changes.WithLabelValues(t.name, table, op).Inc()
		}
		if len(st.counts) > 0 {
			t.b.lag.WithLabelValues(t.name).Set(max(0, float64(t.b.cfg.Now().UnixMilli()-st.lastTs)/1000))
		}
		st.pending, st.counts = st.pending[:0], st.counts[:0]
		st.owed = true
	}
	since := time.Since(st.lastCommit)
	if st.dirty && (st.owed && since >= t.b.cfg.CommitEvery || since >= t.b.cfg.OffsetFlush) {
		if err := t.commit(ctx, offs, st.boundary, st.tsSec); err != nil {
			return err
		}
		st.dirty, st.owed, st.lastCommit = false, false, time.Now()
	}
	t.reach(st.boundary)
	st.reported = st.boundary
	return nil
}

// reach records the position the connector has published up to (what
// smp_cdc_source_lag_bytes is measured from).
func (t *binlogTask) reach(p binlogPos) {
	t.committedMu.Lock()
	t.reached = p
	t.committedMu.Unlock()
}

func (t *binlogTask) source(db, table string, tsMs int64, snapshot, file string, pos int64, row int, serverID uint32, gtid *string) Source {
	return Source{Version: Version, Connector: "mysql", Name: t.prefix, TsMs: tsMs, Snapshot: snapshot, DB: db, Table: table,
		ServerID: int64(serverID), GTID: gtid, File: file, Pos: pos, Row: row}
}

func (t *binlogTask) rows(ctx context.Context, st *streamState, h *replication.EventHeader, e *replication.RowsEvent, db, table string) error {
	s, err := t.schemaFor(ctx, db, table, e.Table)
	if err != nil {
		return err
	}
	op, step := "", 1
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = "c"
	case replication.EnumRowsEventTypeUpdate:
		op, step = "u", 2
	case replication.EnumRowsEventTypeDelete:
		op = "d"
	default:
		return nil
	}
	names := s.names()
	if n := len(e.Table.ColumnNameString()); n > 0 {
		names = e.Table.ColumnNameString()
	}
	tsMs := int64(h.Timestamp) * 1000
	now := t.b.cfg.Now().UnixMilli()
	var gtid *string
	if st.gtid != "" {
		g := st.gtid
		gtid = &g
	}
	start := int64(h.LogPos) - int64(h.EventSize)
	topic := Topic(t.prefix, db, table)
	for i, r := 0, 0; i+step-1 < len(e.Rows); i, r = i+step, r+1 {
		before, after := json.RawMessage("null"), json.RawMessage("null")
		var keyRow []any
		switch op {
		case "c":
			vals := s.fromBinlog(names, e.Rows[i])
			after, keyRow = s.object(names, vals), vals
		case "d":
			vals := s.fromBinlog(names, e.Rows[i])
			before, keyRow = s.object(names, vals), vals
		case "u":
			b, a := s.fromBinlog(names, e.Rows[i]), s.fromBinlog(names, e.Rows[i+1])
			before, after, keyRow = s.object(names, b), s.object(names, a), a
		}
		key := s.keyByName(names, keyRow)
		env := Envelope{Before: before, After: after, Source: t.source(db, table, tsMs, "false", st.file, start, r, h.ServerID, gtid), Op: op, TsMs: now}
		v, err := json.Marshal(env)
		if err != nil {
			return err
		}
		st.pending = append(st.pending, smp.Message{Topic: topic, Key: key, Value: v})
		if op == "d" {
			st.pending = append(st.pending, smp.Message{Topic: topic, Key: key}) // the tombstone
		}
		st.counts = append(st.counts, table+"/"+op)
		st.lastTs = tsMs
	}
	return nil
}

// ddl records a DDL statement on a captured database in the schema
// history (with its position), forgets the schema of the table it names
// (rows after it are read with the new columns), and makes a TRUNCATE of
// a captured table an "t" envelope.
func (t *binlogTask) ddl(ctx context.Context, offs connect.Offsets, st *streamState, h *replication.EventHeader, schema, q string) error {
	m := ddlTable.FindStringSubmatch(q)
	db, table := schema, ""
	if m != nil {
		table = m[2]
		if m[3] != "" {
			db, table = m[2], m[3]
		}
		if strings.EqualFold(m[1], "CREATE") && !createTable.MatchString(q) {
			table = "" // CREATE INDEX, DATABASE, …: a statement, not a table name
		}
	}
	if !slices.Contains(t.dbs, db) {
		return nil
	}
	delete(t.schemas, db+"."+table)
	// Changes before the DDL are published first: the history's order is
	// the binlog's.
	if err := t.flush(ctx, offs, st); err != nil {
		return err
	}
	pos := binlogPos{File: st.file, Pos: h.LogPos, GTIDs: st.gtidString()}
	rec, err := t.historyRecord(pos, db, q, int64(h.Timestamp)*1000)
	if err != nil {
		return err
	}
	st.pending = append(st.pending, rec)
	if m != nil && strings.EqualFold(m[1], "TRUNCATE") && table != "" && t.captured(db, table) {
		now := t.b.cfg.Now().UnixMilli()
		var gtid *string
		if st.gtid != "" {
			g := st.gtid
			gtid = &g
		}
		env := Envelope{Before: json.RawMessage("null"), After: json.RawMessage("null"),
			Source: t.source(db, table, int64(h.Timestamp)*1000, "false", st.file, int64(h.LogPos)-int64(h.EventSize), 0, h.ServerID, gtid), Op: "t", TsMs: now}
		v, err := json.Marshal(env)
		if err != nil {
			return err
		}
		st.pending = append(st.pending, smp.Message{Topic: Topic(t.prefix, db, table), Value: v})
		st.counts = append(st.counts, table+"/t")
		st.lastTs = int64(h.Timestamp) * 1000
	}
	return nil
}

// HistoryRecord is one record of the schema history topic: a DDL
// statement and the binlog position it was read at (Debezium's shape).
type HistoryRecord struct {
	Source       map[string]any `json:"source"`
	Position     map[string]any `json:"position"`
	TsMs         int64          `json:"ts_ms"`
	DatabaseName string         `json:"databaseName"`
	DDL          string         `json:"ddl"`
}

func (t *binlogTask) historyRecord(pos binlogPos, db, ddl string, tsMs int64) (smp.Message, error) {
	p := map[string]any{"file": pos.File, "pos": pos.Pos, "server_id": t.serverID}
	if pos.GTIDs != "" {
		p["gtids"] = pos.GTIDs
	}
	v, err := json.Marshal(HistoryRecord{Source: map[string]any{"server": t.prefix}, Position: p, TsMs: tsMs, DatabaseName: db, DDL: ddl})
	if err != nil {
		return smp.Message{}, err
	}
	// One key: the history is read in order, from one partition.
	return smp.Message{Topic: t.history, Key: t.prefix, Value: v}, nil
}
