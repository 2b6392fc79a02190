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
	// BeatReplicationHop raises the heartbeat of a pair of regions joined
	// through others (h.Path, h.Via) to h.HeartbeatAt, creating it; never
	// lowers it. EINVALID for bad region names or an empty Via.
	BeatReplicationHop(ctx context.Context, h ReplicationHop) error
	// FindReplicationHops lists the pairs reached through other regions,
	// by path and via. No codes.
	FindReplicationHops(ctx context.Context) ([]ReplicationHop, error)
	// SaveReplicationOffsetSync keeps where a mirrored record landed on
	// the target (the first copy: a copy carried again later keeps the
	// first one's offset). EINVALID for negative offsets or an empty topic.
	SaveReplicationOffsetSync(ctx context.Context, s ReplicationOffsetSync) error
	// TranslateReplicationOffset translates a source consumer's next
	// offset on (topic, partition) of path into the target's: the target
	// offset of the first mirrored record at or after upstream, else one
	// past the last mirrored record before it. ok is false when nothing of
	// that partition was mirrored yet. No codes.
	TranslateReplicationOffset(ctx context.Context, path, topic string, partition int32, upstream int64) (downPartition int32, downstream int64, ok bool, err error)
	// SaveReplicationGroupCheckpoint keeps a source consumer group's
	// offset on one partition with its translation on the target (the
	// newest replaces the one before). EINVALID for negative offsets or
	// an empty group or topic.
	SaveReplicationGroupCheckpoint(ctx context.Context, c ReplicationGroupCheckpoint) error
	// ReplicationGroupCheckpoints lists path's group checkpoints (group
	// "": every group's), by group, topic and partition. No codes.
	ReplicationGroupCheckpoints(ctx context.Context, path, group string) ([]ReplicationGroupCheckpoint, error)
}

// ReplicationHop is a pair of regions joined through others (MirrorMaker
// 2's heartbeats mirrored onward: asia → china → us gives us the
// heartbeats of asia as china.asia.heartbeats): its lag is measured as a
// path's, from the source time of the newest heartbeat of Source that
// reached Target through Via.
type ReplicationHop struct {
	// Path is <source>-to-<target>: asia-to-us.
	Path   string `json:"path"`
	Source string `json:"source"`
	Target string `json:"target"`
	// Via are the regions in between, in the order the heartbeats went
	// through them, joined by commas: "china".
	Via         string    `json:"via"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ReplicationOffsetSync is where one mirrored record landed: the record
// at Upstream of the source's (Topic, Partition) is at Downstream of
// DownPartition of the target's <source>.<Topic> (MirrorMaker 2's offset
// syncs).
type ReplicationOffsetSync struct {
	Path          string
	Topic         string
	Partition     int32
	Upstream      int64
	DownPartition int32
	Downstream    int64
}

// ReplicationGroupCheckpoint is MirrorMaker 2's checkpoint: a source
// consumer group's next offset on one source partition (Upstream) and
// where the group goes on in the target region (Downstream of
// DownPartition of DownTopic), so a consumer failing over to the target
// resumes at the next record it had not read.
type ReplicationGroupCheckpoint struct {
	Path          string    `json:"path"`
	Group         string    `json:"group"`
	Topic         string    `json:"topic"`
	Partition     int32     `json:"partition"`
	Upstream      int64     `json:"upstream_offset"`
	DownTopic     string    `json:"downstream_topic"`
	DownPartition int32     `json:"downstream_partition"`
	Downstream    int64     `json:"downstream_offset"`
	UpdatedAt     time.Time `json:"updated_at"`
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
