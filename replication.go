package smp

import (
	"context"
	"time"
)

// Replication between regions (issue 21, runbook INC-012): a path carries
// master data from a source region to a target region. Its state and its
// checkpoints are kept on the target (replication_paths and
// replication_checkpoints), as MirrorMaker 2 keeps its offsets on the
// target cluster, so a restart, or another agent taking the path over,
// resumes where the last one stopped.

// ReplicationPath is one path's state in the target region.
type ReplicationPath struct {
	// Path is <source>-to-<target> (the region label of
	// region_replication_lag_seconds).
	Path   string `json:"path"`
	Source string `json:"source"`
	Target string `json:"target"`
	// Paused stops the path: nothing is mirrored or applied until it is
	// resumed (smp ctl regions pause|resume, or a newer schema at an older
	// target, SchemaNeeded, which resumes by itself once the target knows it).
	Paused       bool   `json:"paused"`
	Reason       string `json:"reason,omitempty"`
	SchemaNeeded int    `json:"schema_needed,omitempty"`
	// HeartbeatAt is the source's time in the newest heartbeat the target
	// received (when the path was declared before any): now minus it is
	// the path's lag, right while idle.
	HeartbeatAt time.Time `json:"heartbeat_at"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ReplicationPathName is <source>-to-<target>.
func ReplicationPathName(source, target string) string { return source + "-to-" + target }

// ReplicationCheckpoint is how far a path has carried one source
// partition: Next is the source offset to read next.
type ReplicationCheckpoint struct {
	Path      string    `json:"path"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Next      int64     `json:"next_offset"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ReplicationStore keeps the paths and checkpoints of the region it
// belongs to (the target's).
type ReplicationStore interface {
	// DeclareReplicationPath creates p's row, running, with HeartbeatAt
	// p.HeartbeatAt, unless the path exists (then nothing changes).
	// EINVALID for bad region names or a path not named after them.
	DeclareReplicationPath(ctx context.Context, p ReplicationPath) error
	// FindReplicationPath returns a path; ENOTFOUND when it was never declared.
	FindReplicationPath(ctx context.Context, path string) (ReplicationPath, error)
	// FindReplicationPaths lists the paths by name. No codes.
	FindReplicationPaths(ctx context.Context) ([]ReplicationPath, error)
	// BeatReplicationPath raises the path's HeartbeatAt to at (never
	// lowers it: heartbeats may arrive out of order). ENOTFOUND for a path
	// never declared.
	BeatReplicationPath(ctx context.Context, path string, at time.Time) error
	// ReplicationCheckpoints lists the path's checkpoints by topic and
	// partition. No codes.
	ReplicationCheckpoints(ctx context.Context, path string) ([]ReplicationCheckpoint, error)
	// SaveReplicationCheckpoint raises a partition's checkpoint to c.Next
	// (never lowers it: agents that overlap for a moment cannot move it
	// back). EINVALID for a negative offset or an empty topic.
	SaveReplicationCheckpoint(ctx context.Context, c ReplicationCheckpoint) error
}

// ReplicationTx changes a path's state with the rest of a transaction
// (its audit entry).
type ReplicationTx interface {
	// SetReplicationPathState pauses (paused true, with reason and the
	// schema the target lacks, 0 for an operator's pause) or resumes the
	// path and returns its state before. ENOTFOUND for a path never
	// declared.
	SetReplicationPathState(ctx context.Context, path string, paused bool, reason string, schemaNeeded int, by string) (before ReplicationPath, err error)
}

// HotDataMaxLag is how far behind a region's hot master data
// (currency_rates, tax_configs) may be: a path whose lag is above it fires
// RegionReplicationLagHotData (deploy/prometheus/alerts.yml, "> 60"; a test
// there holds the two equal), and prices and invoices in that region say
// which rate date they use (package pricing).
const HotDataMaxLag = 60 * time.Second
