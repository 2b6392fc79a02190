// Package eventlog is SMP's embedded event bus: a durable, partitioned,
// append-only log in its own SQLite file, with consumer groups whose
// positions are committed next to the log. It behaves like the Kafka bus
// (partition by key, order per partition, at-least-once, resume from the
// committed offset, dead letters on <topic>.dlq) within one process.
package eventlog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite"

	"smp"
)

// Config of a Log.
type Config struct {
	Path string
	// Partitions per topic (12, as the runbook's topics have).
	Partitions int
	// MaxAttempts before a failing message goes to <topic>.dlq; 0 means 5.
	MaxAttempts int
	// RetryBackoff is the first retry delay, doubled up to 5 s.
	RetryBackoff time.Duration
	Logger       *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Path == "" {
		return smp.Errorf(smp.EINVALID, "eventlog: path is required")
	}
	if c.Partitions <= 0 {
		c.Partitions = 12
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Log is the embedded smp.EventBus.
type Log struct {
	cfg   Config
	write *sql.DB
	read  *sql.DB

	mu     sync.Mutex
	hwm    map[tp]int64 // next offset per topic-partition
	wake   chan struct{}
	groups map[string]bool
	closed bool
}

type tp struct {
	topic     string
	partition int32
}

var _ smp.EventBus = (*Log)(nil)

// Open opens or creates the log.
func Open(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("eventlog: open: %w", err)
	}
	r.SetMaxOpenConns(4)
	l := &Log{cfg: cfg, write: w, read: r, hwm: map[tp]int64{}, wake: make(chan struct{}), groups: map[string]bool{}}
	if err := l.init(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) init() error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS messages (topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
			key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, partition, offset))`,
		`CREATE TABLE IF NOT EXISTS offsets (grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
			PRIMARY KEY (grp, topic, partition))`,
	} {
		if _, err := l.write.Exec(stmt); err != nil {
			return fmt.Errorf("eventlog: init: %w", err)
		}
	}
	rows, err := l.write.Query(`SELECT topic, partition, MAX(offset) FROM messages GROUP BY topic, partition`)
	if err != nil {
		return fmt.Errorf("eventlog: load offsets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k tp
		var max int64
		if err := rows.Scan(&k.topic, &k.partition, &max); err != nil {
			return err
		}
		l.hwm[k] = max + 1
	}
	return rows.Err()
}

// Close closes the log; safe to call twice.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.wake)
	l.mu.Unlock()
	return errors.Join(l.write.Close(), l.read.Close())
}

// PartitionFor returns the partition a key maps to.
func (l *Log) PartitionFor(key string) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(l.cfg.Partitions))
}

// Publish appends messages durably (one transaction for the batch).
func (l *Log) Publish(ctx context.Context, msgs ...smp.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return smp.Errorf(smp.EUNAVAILABLE, "eventlog: closed")
	}
	tx, err := l.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("eventlog: begin: %w", err)
	}
	next := map[tp]int64{}
	now := time.Now().UnixMicro()
	for _, m := range msgs {
		if m.Topic == "" {
			tx.Rollback()
			return smp.Errorf(smp.EINVALID, "eventlog: message without topic")
		}
		k := tp{m.Topic, l.PartitionFor(m.Key)}
		off, ok := next[k]
		if !ok {
			off = l.hwm[k]
		}
		hdr, _ := json.Marshal(m.Headers)
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages (topic, partition, offset, key, value, headers, ts) VALUES (?,?,?,?,?,?,?)`,
			m.Topic, k.partition, off, m.Key, m.Value, string(hdr), now); err != nil {
			tx.Rollback()
			return fmt.Errorf("eventlog: append: %w", err)
		}
		next[k] = off + 1
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("eventlog: commit: %w", err)
	}
	for k, v := range next {
		l.hwm[k] = v
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

func (l *Log) waitChan() (<-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake, l.closed
}

// Subscribe consumes topics as group until ctx is done. One subscription
// per group per Log: a second concurrent one gets ECONFLICT.
func (l *Log) Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error {
	l.mu.Lock()
	if l.groups[group] {
		l.mu.Unlock()
		return smp.Errorf(smp.ECONFLICT, "eventlog: group %q already has a consumer in this process", group)
	}
	l.groups[group] = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.groups, group)
		l.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, topic := range topics {
		for p := 0; p < l.cfg.Partitions; p++ {
			wg.Add(1)
			go func(k tp) {
				defer wg.Done()
				l.consume(ctx, group, k, h)
			}(tp{topic, int32(p)})
		}
	}
	wg.Wait()
	return ctx.Err()
}

func (l *Log) consume(ctx context.Context, group string, k tp, h smp.Handler) {
	log := l.cfg.Logger.With("group", group, "topic", k.topic, "partition", k.partition)
	next, err := l.committed(ctx, group, k)
	if err != nil {
		log.Error("eventlog: read committed offset", "err", err)
		return
	}
	for ctx.Err() == nil {
		wake, closed := l.waitChan()
		if closed {
			return
		}
		batch, err := l.fetch(ctx, k, next, 256)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("eventlog: fetch", "err", err)
				smp.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-wake:
			case <-time.After(5 * time.Second):
			}
			continue
		}
		for _, m := range batch {
			if !l.deliver(ctx, log, group, m, h) {
				return
			}
			next = m.Offset + 1
			// Commit even when ctx was just cancelled: a handled message
			// must not come again after a graceful stop.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := l.commit(cctx, group, k, next)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					log.Error("eventlog: commit offset", "err", err)
				}
				return
			}
		}
	}
}

// deliver runs h until it succeeds, or dead-letters m after MaxAttempts.
// It returns false if ctx ended first.
func (l *Log) deliver(ctx context.Context, log *slog.Logger, group string, m smp.Message, h smp.Handler) bool {
	backoff := l.cfg.RetryBackoff
	var err error
	for attempt := 1; attempt <= l.cfg.MaxAttempts; attempt++ {
		if err = h(ctx, m); err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("eventlog: handler failed", "offset", m.Offset, "attempt", attempt, "err", err)
		if attempt < l.cfg.MaxAttempts {
			if !smp.Sleep(ctx, backoff) {
				return false
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	dlq := smp.Message{Topic: m.Topic + ".dlq", Key: m.Key, Value: m.Value, Headers: map[string]string{}}
	for k, v := range m.Headers {
		dlq.Headers[k] = v
	}
	dlq.Headers["dlq.reason"] = err.Error()
	dlq.Headers["dlq.group"] = group
	dlq.Headers["dlq.topic"] = m.Topic
	dlq.Headers["dlq.partition"] = strconv.Itoa(int(m.Partition))
	dlq.Headers["dlq.offset"] = strconv.FormatInt(m.Offset, 10)
	dlq.Headers["dlq.attempts"] = strconv.Itoa(l.cfg.MaxAttempts)
	for ctx.Err() == nil {
		if perr := l.Publish(ctx, dlq); perr == nil {
			log.Error("eventlog: message dead-lettered", "offset", m.Offset, "err", err)
			return true
		} else {
			log.Error("eventlog: dead-letter publish failed", "err", perr)
			smp.Sleep(ctx, time.Second)
		}
	}
	return false
}

func (l *Log) committed(ctx context.Context, group string, k tp) (int64, error) {
	var next int64
	err := l.read.QueryRowContext(ctx, `SELECT next_offset FROM offsets WHERE grp = ? AND topic = ? AND partition = ?`, group, k.topic, k.partition).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return next, err
}

func (l *Log) commit(ctx context.Context, group string, k tp, next int64) error {
	_, err := l.write.ExecContext(ctx, `INSERT INTO offsets (grp, topic, partition, next_offset) VALUES (?,?,?,?)
		ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset`, group, k.topic, k.partition, next)
	return err
}

func (l *Log) fetch(ctx context.Context, k tp, from int64, limit int) ([]smp.Message, error) {
	rows, err := l.read.QueryContext(ctx, `SELECT offset, key, value, headers FROM messages WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?`,
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
func (l *Log) Lag(ctx context.Context, group string, topics []string) (map[string][]int64, error) {
	out := map[string][]int64{}
	for _, topic := range topics {
		lag := make([]int64, l.cfg.Partitions)
		for p := range lag {
			k := tp{topic, int32(p)}
			c, err := l.committed(ctx, group, k)
			if err != nil {
				return nil, fmt.Errorf("eventlog: lag: %w", err)
			}
			l.mu.Lock()
			h := l.hwm[k]
			l.mu.Unlock()
			lag[p] = max(0, h-c)
		}
		out[topic] = lag
	}
	return out, nil
}
