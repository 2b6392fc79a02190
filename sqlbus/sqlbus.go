// Package sqlbus is SMP's durable event bus without Kafka: a
// partitioned, append-only log in SQL (its own SQLite file for one
// process, or MySQL to share it between processes), with consumer groups
// whose positions are committed next to the log and whose partitions are
// shared among members by leases. It behaves like the Kafka bus (partition
// by key, order per partition, at-least-once, resume from the committed
// offset; a message whose handler fails is delivered again).
// (Named sqlbus, not eventlog: the payments inbox table is event_log.)
// Its schema is in migrations/<dialect>/, recorded in bus_schema_migrations.
package sqlbus

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" driver
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"smp"
	"smp/internal/sqldb"
)

//go:embed migrations
var migrationsFS embed.FS

// Config of a Log: Path for SQLite (one process) or MySQLDSN to share
// the log between processes, or Shared: the store's SQLite database
// (the embedded default), whose writer, readers and group committer the
// log then uses, its tables migrated into that file.
type Config struct {
	Path     string
	MySQLDSN string
	Shared   *sqldb.Shared
	// Import, with Shared: the log's former file (events.db). If it is
	// there, Open moves its messages, partitions and committed offsets
	// into the shared database in one transaction and renames the file
	// (and its -wal, -shm) to <Import>.migrated-<time> (ImportFile).
	Import string
	// Partitions per topic (12, as the runbook's topics have).
	Partitions int
	// RetryBackoff is the first delay before a message whose handler
	// failed is delivered again, doubled up to 5 s (default 100 ms).
	// Attempt limits and dead letters are bus.Router's.
	RetryBackoff time.Duration
	// Owner names this member in partition leases (default random).
	Owner string
	// LeaseTTL: a member that stops renewing loses its partitions after it
	// (default 10 s).
	LeaseTTL time.Duration
	// PollInterval: how often the process's one poller reads every
	// partition's end (one statement) to see messages other processes
	// appended (default 5 s on SQLite, 100 ms on MySQL). This process's
	// own publishes wake their partitions' consumers at once.
	PollInterval time.Duration
	// CommitInterval: a batch with nothing to write but its position
	// (its handler recorded what it applied itself, or applied nothing)
	// has that position committed at most this much later: with the next
	// batch that writes, once the lease is no longer fresh, when the
	// subscription ends, or on this timer (default 1 s, as Kafka's
	// consumers; at most LeaseTTL/3; negative: every batch's position at
	// once). A crash
	// replays what was handled since, which consumers absorb (at least
	// once).
	CommitInterval time.Duration
	// NoGroupCommit: on SQLite each publish commits (and fsyncs) on its
	// own instead of with the publishes waiting at the same moment.
	NoGroupCommit bool
	// Now is the clock of message timestamps and lease expiries (default
	// time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer exports the log's SQL statement and commit counts
	// (smp_sql_*_total{db="bus"}); nil: not exported.
	Registerer prometheus.Registerer
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	n := 0
	for _, set := range []bool{c.Path != "", c.MySQLDSN != "", c.Shared != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return smp.Errorf(smp.EINVALID, "sqlbus: give a SQLite path, a MySQL DSN or a shared database")
	}
	if c.Shared != nil && (c.Shared.Write == nil || c.Shared.Read == nil) {
		return smp.Errorf(smp.EINVALID, "sqlbus: the shared database has no pools")
	}
	if c.Import != "" && c.Shared == nil {
		return smp.Errorf(smp.EINVALID, "sqlbus: Import needs a shared database")
	}
	if c.Partitions <= 0 {
		c.Partitions = 12
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.Owner == "" {
		b := make([]byte, 6)
		rand.Read(b)
		c.Owner = "member-" + hex.EncodeToString(b)
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.CommitInterval > c.LeaseTTL/3 {
		c.CommitInterval = c.LeaseTTL / 3 // committed while the lease is fresh
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
		if c.MySQLDSN != "" {
			c.PollInterval = 100 * time.Millisecond
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Bus is the embedded smp.EventBus. Members of a consumer group share its
// partitions through leases (one member per partition at a time, taken
// over when a member stops renewing); offsets are committed only by the
// lease holder.
type Bus struct {
	cfg     Config
	write   *sql.DB
	read    *sql.DB
	dialect sqldb.Dialect

	mu sync.Mutex
	// wakes has one channel per partition, closed when a publish of this
	// process (or the poller, for another process's) appends to it: only
	// that partition's consumers wake.
	wakes map[tp]chan struct{}
	// known is each partition's end as last seen by this process.
	known  map[tp]int64
	poller *poller // while any subscription runs
	subs   int
	closed bool
	done   chan struct{} // closed by Close
	// activity tells the poller this process published (buffered, 1).
	activity chan struct{}

	counters *sqldb.Counters
	// pollEvery is the poller's current interval (its back-off, as tests
	// observe it).
	pollEvery atomic.Int64
	// gc runs publish transactions on SQLite (one fsync for the publishes
	// waiting at the same moment); nil on MySQL.
	gc *sqldb.GroupCommitter
	// shared: the pools and gc are the store's (Config.Shared): Close
	// leaves them open.
	shared bool
}

type tp struct {
	topic     string
	partition int32
}

var (
	_ smp.EventBus = (*Bus)(nil)
	_ smp.BusAdmin = (*Bus)(nil)

	_ smp.BatchSubscriber = (*Bus)(nil)
)

// Open opens or creates the log and applies its migrations.
func Open(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Bus{cfg: cfg, wakes: map[tp]chan struct{}{}, known: map[tp]int64{}, done: make(chan struct{}), activity: make(chan struct{}, 1), counters: sqldb.NewCounters("bus")}
	if cfg.Registerer != nil && cfg.Shared == nil {
		var are prometheus.AlreadyRegisteredError
		if err := cfg.Registerer.Register(l.counters); err != nil && !errors.As(err, &are) {
			return nil, fmt.Errorf("sqlbus: %w", err)
		}
	}
	switch {
	case cfg.Shared != nil:
		// Statements are counted by the store's counters (they run on its
		// pools): the log's own stay at zero, and are not exported.
		l.write, l.read, l.gc, l.dialect, l.shared = cfg.Shared.Write, cfg.Shared.Read, cfg.Shared.GC, sqldb.SQLite, true
	case cfg.MySQLDSN != "":
		if _, err := sqldb.ParseMySQLDSN(cfg.MySQLDSN); err != nil {
			return nil, smp.Errorf(smp.EINVALID, "sqlbus: MySQL DSN: %v", err)
		}
		// Consumers queue for connections: each partition's loop is short.
		db, err := sqldb.OpenMySQL(cfg.MySQLDSN, false, sqldb.Pool{MaxOpen: 16, MaxIdle: 4, MaxIdleTime: time.Minute}, sqldb.WithCounters(l.counters))
		if err != nil {
			return nil, fmt.Errorf("sqlbus: open: %w", err)
		}
		l.write, l.read, l.dialect = db, db, sqldb.MySQL
	default:
		var err error
		if l.write, l.read, err = sqldb.OpenSQLitePools(cfg.Path, false, sqldb.WithCounters(l.counters)); err != nil {
			return nil, fmt.Errorf("sqlbus: %w", err)
		}
		l.dialect = sqldb.SQLite
		if !cfg.NoGroupCommit {
			l.gc = sqldb.NewGroupCommitter(l.write, 0, l.counters)
		}
	}
	m := sqldb.Migrations{FS: migrationsFS, Dir: "migrations", Table: "bus_schema_migrations", Lock: "smp_bus_migrate", Now: cfg.Now}
	if err := m.Migrate(context.Background(), l.write, l.dialect); err != nil {
		l.Close()
		return nil, fmt.Errorf("sqlbus: %w", err)
	}
	if cfg.Import != "" {
		if err := l.ImportFile(context.Background(), cfg.Import); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// SQLCounts is what the log has asked of its database so far (statements
// by kind, commits, write commits: on SQLite the fsyncs of commits).
func (l *Bus) SQLCounts() sqldb.CounterSnapshot { return l.counters.Snapshot() }

func (l *Bus) insertIgnore() string { return l.dialect.InsertIgnore }

func (l *Bus) forUpdate() string { return l.dialect.ForUpdate }

// Close closes the log; safe to call twice.
func (l *Bus) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	for _, ch := range l.wakes {
		close(ch)
	}
	p := l.poller
	l.mu.Unlock()
	if p != nil {
		<-p.exited // it saw done: no statement runs on the closed pools
	}
	if l.shared {
		return nil // the store's pools: the store closes them
	}
	if l.gc != nil {
		l.gc.Close()
	}
	if l.read != l.write {
		l.read.Close()
	}
	return l.write.Close()
}

// PartitionFor returns the partition a key maps to.
func (l *Bus) PartitionFor(key string) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(l.cfg.Partitions))
}

// Publish appends messages durably (one transaction for the batch).
// Offsets come from a per-partition row locked in the transaction, so
// several processes may publish at once.
func (l *Bus) Publish(ctx context.Context, msgs ...smp.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return smp.Errorf(smp.EUNAVAILABLE, "sqlbus: closed")
	}
	var err error
	var next map[tp]int64
	for attempt := 0; attempt < 5; attempt++ {
		if next, err = l.publish(ctx, msgs); !sqldb.IsRetryable(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	l.appended(next)
	return nil
}

// appended wakes the consumers of the partitions whose ends are now next
// (after the commit that appended to them) and tells the poller this
// process published.
func (l *Bus) appended(next map[tp]int64) {
	l.mu.Lock()
	if !l.closed {
		for k, n := range next {
			// The poller need not wake these partitions again for this publish.
			l.known[k] = max(l.known[k], n)
			l.wakeLocked(k)
		}
	}
	l.mu.Unlock()
	select {
	case l.activity <- struct{}{}:
	default:
	}
}

// AppendTx appends msgs to the log inside tx, a transaction on the
// shared database (Config.Shared) that the caller commits, and returns
// what the caller must run after that commit: it wakes the consumers of
// the partitions appended to. If tx rolls back nothing was appended.
// SQLite only (on MySQL the offsets of concurrent transactions could
// commit out of order: EINVALID). The offsets are taken in the order the
// transactions run on the one writer, which is their commit order.
// sqlstore calls it for the outbox (sqlstore.DB.SetOutboxLog).
func (l *Bus) AppendTx(ctx context.Context, tx *sql.Tx, msgs []smp.Message) (func(), error) {
	if l.dialect.Name != sqldb.SQLite.Name {
		return nil, smp.Errorf(smp.EINVALID, "sqlbus: appending in another transaction needs SQLite")
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	for _, m := range msgs {
		if m.Topic == "" {
			return nil, smp.Errorf(smp.EINVALID, "sqlbus: message without topic")
		}
	}
	next, err := l.appendSQLite(ctx, tx, msgs)
	if err != nil {
		return nil, err
	}
	return func() { l.appended(next) }, nil
}

func (l *Bus) publish(ctx context.Context, msgs []smp.Message) (map[tp]int64, error) {
	parts := map[tp]bool{}
	var order []tp
	for _, m := range msgs {
		if m.Topic == "" {
			return nil, smp.Errorf(smp.EINVALID, "sqlbus: message without topic")
		}
		k := tp{m.Topic, l.PartitionFor(m.Key)}
		if !parts[k] {
			parts[k] = true
			order = append(order, k)
		}
	}
	// Lock partitions in one global order: concurrent publishers never deadlock on each other.
	sort.Slice(order, func(i, j int) bool {
		if order[i].topic != order[j].topic {
			return order[i].topic < order[j].topic
		}
		return order[i].partition < order[j].partition
	})
	var next map[tp]int64
	err := l.inWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		next, err = l.append(ctx, tx, msgs, order)
		return err
	})
	return next, err
}

// inWriteTx runs fn in a write transaction: on SQLite through the group
// committer (fn shares one transaction and one fsync with the others
// waiting, under its own savepoint, its ctx without cancellation), on
// MySQL in its own.
func (l *Bus) inWriteTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return sqldb.WriteTx(ctx, l.gc, l.write, fn)
}

// append writes msgs (their partitions locked in order) and returns each
// partition's new end.
func (l *Bus) append(ctx context.Context, tx *sql.Tx, msgs []smp.Message, order []tp) (map[tp]int64, error) {
	if l.dialect.Name == sqldb.SQLite.Name {
		return l.appendSQLite(ctx, tx, msgs)
	}
	next := map[tp]int64{}
	for _, k := range order {
		if _, err := tx.ExecContext(ctx, l.insertIgnore()+` INTO bus_partitions (topic, part, next_off) VALUES (?, ?, 0)`, k.topic, k.partition); err != nil {
			return nil, fmt.Errorf("sqlbus: partition row: %w", err)
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT next_off FROM bus_partitions WHERE topic = ? AND part = ?`+l.forUpdate(), k.topic, k.partition).Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlbus: lock partition: %w", err)
		}
		next[k] = n
	}
	now := l.cfg.Now().UnixMicro()
	for _, m := range msgs {
		k := tp{m.Topic, l.PartitionFor(m.Key)}
		hdr, _ := json.Marshal(m.Headers)
		value := m.Value
		if value == nil {
			// A tombstone (Kafka's null value, as change data capture
			// writes after a delete): the log keeps it as an empty value.
			value = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bus_messages (topic, part, off, msg_key, msg_value, headers, ts) VALUES (?,?,?,?,?,?,?)`,
			m.Topic, k.partition, next[k], m.Key, value, string(hdr), now); err != nil {
			return nil, fmt.Errorf("sqlbus: append: %w", err)
		}
		next[k]++
	}
	for _, k := range order {
		if _, err := tx.ExecContext(ctx, `UPDATE bus_partitions SET next_off = ? WHERE topic = ? AND part = ?`, next[k], k.topic, k.partition); err != nil {
			return nil, fmt.Errorf("sqlbus: advance partition: %w", err)
		}
	}
	return next, nil
}

// appendRows bounds a multi-row INSERT of messages (7 parameters a row,
// well under SQLite's 32766).
const appendRows = 500

// appendSQLite appends msgs in tx on SQLite, whose one writer runs one
// transaction at a time: each partition's range is reserved by one
// UPDATE … RETURNING (an INSERT the first time), and the messages are
// written by multi-row INSERTs. It returns each partition's new end.
func (l *Bus) appendSQLite(ctx context.Context, tx *sql.Tx, msgs []smp.Message) (map[tp]int64, error) {
	count := map[tp]int64{}
	var order []tp
	for _, m := range msgs {
		k := tp{m.Topic, l.PartitionFor(m.Key)}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	next := make(map[tp]int64, len(order)) // the next offset to give, then the end
	for _, k := range order {
		var end int64
		err := tx.QueryRowContext(ctx, `UPDATE bus_partitions SET next_off = next_off + ? WHERE topic = ? AND part = ? RETURNING next_off`, count[k], k.topic, k.partition).Scan(&end)
		if errors.Is(err, sql.ErrNoRows) {
			end = count[k]
			_, err = tx.ExecContext(ctx, `INSERT INTO bus_partitions (topic, part, next_off) VALUES (?, ?, ?)`, k.topic, k.partition, end)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlbus: reserve offsets: %w", err)
		}
		next[k] = end - count[k]
	}
	now := l.cfg.Now().UnixMicro()
	for start := 0; start < len(msgs); start += appendRows {
		chunk := msgs[start:min(len(msgs), start+appendRows)]
		var q strings.Builder
		q.WriteString(`INSERT INTO bus_messages (topic, part, off, msg_key, msg_value, headers, ts) VALUES `)
		args := make([]any, 0, 7*len(chunk))
		for i, m := range chunk {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?,?,?)")
			k := tp{m.Topic, l.PartitionFor(m.Key)}
			hdr, _ := json.Marshal(m.Headers)
			value := m.Value
			if value == nil {
				value = []byte{} // a tombstone: see append
			}
			args = append(args, m.Topic, k.partition, next[k], m.Key, value, string(hdr), now)
			next[k]++
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return nil, fmt.Errorf("sqlbus: append: %w", err)
		}
	}
	return next, nil
}

func (l *Bus) committed(ctx context.Context, group string, k tp) (int64, error) {
	var next int64
	err := l.write.QueryRowContext(ctx, `SELECT next_off FROM bus_offsets WHERE grp = ? AND topic = ? AND part = ?`, group, k.topic, k.partition).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return next, err
}

// commit stores the group's position if this member still holds the
// partition's lease (fencing: a member that lost it cannot move the offset).
// On SQLite it goes through the group committer, so the commits of a
// process's many partition consumers share an fsync.
func (l *Bus) commit(ctx context.Context, group string, k tp, next int64) (held bool, err error) {
	err = l.inWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		held, err = l.moveOffset(ctx, tx, group, k, next)
		return err
	})
	return held && err == nil, err
}

// commitBatch commits the offset after the first n of msgs (a delivered
// batch), as commit does, running finish (when not nil) in the same
// transaction first, on a shared database: the batch's deferred effects
// and the records of its processed events (smp.WithBatchFinish) commit
// with its offset, in one commit, and the functions they registered
// (smp.AfterCommit) run after it. They are written even when the lease
// was lost and the offset does not move, as the handler would have
// written them itself; a failed finish moves nothing and the batch comes
// again. When finish cuts the batch (smp.BatchCut: the effect of message
// At failed), the transaction is rolled back and run again up to At:
// done is then At and cut the effect's error. held is false when the
// lease was lost (with done > 0).
func (l *Bus) commitBatch(ctx context.Context, group string, k tp, msgs []smp.Message, n int, finish smp.BatchFinish) (held bool, done int, cut, err error) {
	for done = n; done > 0; {
		var hooks func() error
		err = l.inWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			held, hooks = false, nil
			if finish != nil {
				fctx, run := smp.WithCommitHooks(sqldb.WithTx(ctx, l.write, tx))
				if err := finish(fctx, done); err != nil {
					return fmt.Errorf("sqlbus: a batch's effects and records: %w", err)
				}
				hooks = run
			}
			var err error
			held, err = l.moveOffset(ctx, tx, group, k, msgs[done-1].Offset+1)
			return err
		})
		var bc *smp.BatchCut
		if errors.As(err, &bc) && bc.At < done {
			done, cut, held = bc.At, bc.Err, false
			continue
		}
		if err == nil && hooks != nil {
			if herr := hooks(); herr != nil {
				l.cfg.Logger.Error("sqlbus: after a batch's commit", "group", group, "topic", k.topic, "partition", k.partition, "err", herr)
			}
		}
		return held && err == nil, done, cut, err
	}
	return false, 0, cut, nil
}

// moveOffset sets the group's next offset on k in tx if this member holds
// the partition's lease; held false (no error) when it does not.
func (l *Bus) moveOffset(ctx context.Context, tx *sql.Tx, group string, k tp, next int64) (held bool, err error) {
	if l.dialect.Name == sqldb.SQLite.Name {
		// One statement: the lease's row, if this member's, is the row
		// inserted or updated (SQLite's transactions are serial: nothing
		// can take the lease between the check and the write).
		res, err := tx.ExecContext(ctx, `INSERT INTO bus_offsets (grp, topic, part, next_off)
SELECT grp, topic, part, ? FROM bus_leases WHERE grp = ? AND topic = ? AND part = ? AND owner = ?
ON CONFLICT (grp, topic, part) DO UPDATE SET next_off = excluded.next_off`, next, group, k.topic, k.partition, l.cfg.Owner)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	}
	var owner string
	err = tx.QueryRowContext(ctx, `SELECT owner FROM bus_leases WHERE grp = ? AND topic = ? AND part = ?`+l.forUpdate(), group, k.topic, k.partition).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // no lease at all: lost, as to another member (a batch's effects and records still commit)
	}
	if err != nil {
		return false, err
	}
	if owner != l.cfg.Owner {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, l.insertIgnore()+` INTO bus_offsets (grp, topic, part, next_off) VALUES (?,?,?,?)`, group, k.topic, k.partition, next); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bus_offsets SET next_off = ? WHERE grp = ? AND topic = ? AND part = ?`, next, group, k.topic, k.partition); err != nil {
		return false, err
	}
	return true, nil
}

func (l *Bus) fetch(ctx context.Context, k tp, from int64, limit int) ([]smp.Message, error) {
	rows, err := l.read.QueryContext(ctx, `SELECT off, msg_key, msg_value, headers FROM bus_messages WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?`,
		k.topic, k.partition, from, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []smp.Message
	for rows.Next() {
		m := smp.Message{Topic: k.topic, Partition: k.partition}
		var hdr string
		if err := rows.Scan(&m.Offset, &m.Key, &m.Value, &hdr); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(hdr), &m.Headers); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Lag returns uncommitted message counts per topic and partition.
func (l *Bus) Lag(ctx context.Context, group string, topics []string) (map[string][]int64, error) {
	offs, err := l.Offsets(ctx, group, topics)
	if err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	for _, o := range offs {
		if out[o.Topic] == nil {
			out[o.Topic] = make([]int64, l.cfg.Partitions)
		}
		out[o.Topic][o.Partition] = o.Lag
	}
	return out, nil
}

// Topics lists the topics a message was ever published to, by name (the
// replication agent finds mirrored heartbeats with it).
func (l *Bus) Topics(ctx context.Context) ([]string, error) {
	rows, err := l.read.QueryContext(ctx, `SELECT DISTINCT topic FROM bus_partitions ORDER BY topic`)
	if err != nil {
		return nil, fmt.Errorf("sqlbus: topics: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("sqlbus: topics: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Offsets describes group's position on every partition of topics.
func (l *Bus) Offsets(ctx context.Context, group string, topics []string) ([]smp.PartitionOffsets, error) {
	var out []smp.PartitionOffsets
	for _, topic := range topics {
		hw := make([]int64, l.cfg.Partitions)
		rows, err := l.read.QueryContext(ctx, `SELECT part, next_off FROM bus_partitions WHERE topic = ?`, topic)
		if err != nil {
			return nil, fmt.Errorf("sqlbus: offsets: %w", err)
		}
		for rows.Next() {
			var p int
			var n int64
			if err := rows.Scan(&p, &n); err != nil {
				rows.Close()
				return nil, err
			}
			if p < len(hw) {
				hw[p] = n
			}
		}
		rows.Close()
		committed := map[int32]int64{}
		rows, err = l.read.QueryContext(ctx, `SELECT part, next_off FROM bus_offsets WHERE grp = ? AND topic = ?`, group, topic)
		if err != nil {
			return nil, fmt.Errorf("sqlbus: offsets: %w", err)
		}
		for rows.Next() {
			var p int32
			var n int64
			if err := rows.Scan(&p, &n); err != nil {
				rows.Close()
				return nil, err
			}
			committed[p] = n
		}
		rows.Close()
		holders := map[int32]string{}
		rows, err = l.read.QueryContext(ctx, `SELECT part, owner FROM bus_leases WHERE grp = ? AND topic = ? AND expires_at >= ?`, group, topic, l.cfg.Now().UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("sqlbus: offsets: %w", err)
		}
		for rows.Next() {
			var p int32
			var owner string
			if err := rows.Scan(&p, &owner); err != nil {
				rows.Close()
				return nil, err
			}
			holders[p] = owner
		}
		rows.Close()
		for p := range hw {
			o := smp.PartitionOffsets{Topic: topic, Partition: int32(p), Committed: -1, End: hw[p], Consumer: holders[int32(p)]}
			pos := int64(0)
			if c, ok := committed[int32(p)]; ok {
				o.Committed, pos = c, c
			}
			o.Lag = max(0, hw[p]-pos)
			out = append(out, o)
		}
	}
	return out, nil
}

// ResetOffset sets group's next offset on one partition. It refuses while
// a member holds the partition's lease: that member would overwrite it.
func (l *Bus) ResetOffset(ctx context.Context, group, topic string, partition int32, offset int64) error {
	// The columns' sizes, on both dialects: MySQL's INSERT IGNORE below
	// would otherwise store a longer group truncated.
	if err := smp.CheckLen("group", group, smp.MaxGroupName); err != nil {
		return err
	}
	if err := smp.CheckLen("topic", topic, smp.MaxTopicName); err != nil {
		return err
	}
	if partition < 0 || int(partition) >= l.cfg.Partitions {
		return smp.Errorf(smp.EINVALID, "partition %d does not exist (0..%d)", partition, l.cfg.Partitions-1)
	}
	var end int64
	err := l.read.QueryRowContext(ctx, `SELECT next_off FROM bus_partitions WHERE topic = ? AND part = ?`, topic, partition).Scan(&end)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if offset < 0 || offset > end {
		return smp.Errorf(smp.EINVALID, "offset %d is outside %s:%d (0..%d)", offset, topic, partition, end)
	}
	tx, err := l.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var owner string
	var exp int64
	err = tx.QueryRowContext(ctx, `SELECT owner, expires_at FROM bus_leases WHERE grp = ? AND topic = ? AND part = ?`+l.forUpdate(), group, topic, partition).Scan(&owner, &exp)
	if err == nil && exp > l.cfg.Now().UnixMilli() {
		return smp.Errorf(smp.ECONFLICT, "group %s is consuming %s:%d (member %s): stop its members first", group, topic, partition, owner)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if _, err := tx.ExecContext(ctx, l.insertIgnore()+` INTO bus_offsets (grp, topic, part, next_off) VALUES (?,?,?,?)`, group, topic, partition, offset); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bus_offsets SET next_off = ? WHERE grp = ? AND topic = ? AND part = ?`, offset, group, topic, partition); err != nil {
		return err
	}
	return tx.Commit()
}

// Read returns up to max messages of topic from the start of each partition.
func (l *Bus) Read(ctx context.Context, topic string, max int) ([]smp.Message, error) {
	var out []smp.Message
	for p := 0; p < l.cfg.Partitions && len(out) < max; p++ {
		batch, err := l.fetch(ctx, tp{topic, int32(p)}, 0, max-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
	}
	return out, nil
}

// Prune deletes at most limit messages appended before before that every
// consumer group has committed past (a partition no group has committed
// on keeps its messages: they may still be read). Dead letters (the
// .dlq topics) have no consumer group here, so they stay until replayed
// or reset. It returns how many it deleted.
func (l *Bus) Prune(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, smp.Errorf(smp.EINVALID, "limit %d: must be positive", limit)
	}
	committed := `off < (SELECT MIN(o.next_off) FROM bus_offsets o WHERE o.topic = bus_messages.topic AND o.part = bus_messages.part)`
	q := `DELETE FROM bus_messages WHERE ts < ? AND ` + committed + ` LIMIT ?`
	if l.dialect.Name != sqldb.MySQL.Name {
		q = `DELETE FROM bus_messages WHERE rowid IN (SELECT rowid FROM bus_messages WHERE ts < ? AND ` + committed + ` LIMIT ?)`
	}
	res, err := l.write.ExecContext(ctx, q, before.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlbus: prune: %w", err)
	}
	return res.RowsAffected()
}
