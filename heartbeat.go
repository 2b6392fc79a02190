package smp

import (
	"context"
	"time"
)

// ProcessHeartbeat is one smp process's liveness record in shared state:
// every process writes its own every few seconds, so any process can tell
// whether a dispatch engine runs somewhere (dispatch_engine_up, runbook
// INC-001) and aggregate what the others hold (/admin/stats).
type ProcessHeartbeat struct {
	// ID names the process (host/pid and a random suffix).
	ID string `json:"id"`
	// Services is its --services list.
	Services string `json:"services"`
	// EngineUp: the process runs a dispatch engine whose workers loop.
	EngineUp bool `json:"engine_up"`
	// WebSocketConnections: technicians connected to this process.
	WebSocketConnections int64     `json:"websocket_connections"`
	BeatAt               time.Time `json:"beat_at"`
	// ExpiresAt: after it, the process is presumed dead.
	ExpiresAt time.Time `json:"expires_at"`
}

// HeartbeatStore keeps the processes' heartbeats.
type HeartbeatStore interface {
	// BeatProcess records hb, replacing the heartbeat of the same ID, and
	// forgets heartbeats expired for over an hour. EINVALID for an empty
	// ID or ExpiresAt not after BeatAt.
	BeatProcess(ctx context.Context, hb *ProcessHeartbeat) error
	// RemoveProcessHeartbeat forgets id's heartbeat (a clean stop); no
	// error when there is none. No codes.
	RemoveProcessHeartbeat(ctx context.Context, id string) error
	// FindProcessHeartbeats lists the heartbeats whose ExpiresAt is after
	// now, by ID. No codes.
	FindProcessHeartbeats(ctx context.Context, now time.Time) ([]*ProcessHeartbeat, error)
}
