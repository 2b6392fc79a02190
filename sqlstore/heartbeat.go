package sqlstore

import (
	"context"
	"fmt"
	"time"

	"smp"
)

// The processes' heartbeats (smp.HeartbeatStore): the engine's liveness
// and each process's share of the stats, in shared state.

var _ smp.HeartbeatStore = (*DB)(nil)

// BeatProcess records hb and forgets heartbeats expired for over an hour.
func (db *DB) BeatProcess(ctx context.Context, hb *smp.ProcessHeartbeat) error {
	if hb.ID == "" {
		return smp.Errorf(smp.EINVALID, "beat process: empty id")
	}
	if !hb.ExpiresAt.After(hb.BeatAt) {
		return smp.Errorf(smp.EINVALID, "beat process: expires_at %s is not after beat_at %s", hb.ExpiresAt, hb.BeatAt)
	}
	if err := checkSizes("beat process", chars("id", hb.ID, 128), chars("services", hb.Services, 200)); err != nil {
		return err
	}
	up := 0
	if hb.EngineUp {
		up = 1
	}
	if err := db.exec(ctx, "beat process", db.dialect.Upsert("process_heartbeats", []string{"id"},
		[]string{"id", "services", "engine_up", "ws_connections", "beat_at", "expires_at"}),
		hb.ID, hb.Services, up, hb.WebSocketConnections, micros(hb.BeatAt), micros(hb.ExpiresAt)); err != nil {
		return err
	}
	return db.exec(ctx, "forget old heartbeats", `DELETE FROM process_heartbeats WHERE expires_at < ?`, micros(hb.BeatAt.Add(-time.Hour)))
}

// RemoveProcessHeartbeat forgets id's heartbeat.
func (db *DB) RemoveProcessHeartbeat(ctx context.Context, id string) error {
	return db.exec(ctx, "remove heartbeat", `DELETE FROM process_heartbeats WHERE id = ?`, id)
}

// FindProcessHeartbeats lists the live heartbeats, read from the primary
// (a lagging replica would report a dead engine alive).
func (db *DB) FindProcessHeartbeats(ctx context.Context, now time.Time) ([]*smp.ProcessHeartbeat, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT id, services, engine_up, ws_connections, beat_at, expires_at
		FROM process_heartbeats WHERE expires_at > ? ORDER BY id`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find heartbeats: %w", err)
	}
	defer rows.Close()
	var out []*smp.ProcessHeartbeat
	for rows.Next() {
		var hb smp.ProcessHeartbeat
		var up int
		var beat, exp int64
		if err := rows.Scan(&hb.ID, &hb.Services, &up, &hb.WebSocketConnections, &beat, &exp); err != nil {
			return nil, err
		}
		hb.EngineUp = up == 1
		hb.BeatAt, hb.ExpiresAt = fromMicros(beat), fromMicros(exp)
		out = append(out, &hb)
	}
	return out, rows.Err()
}
