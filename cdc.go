package smp

import "context"

// Change data capture (issue 19, runbook INC-008): the Kafka Connect
// worker (package connect) keeps each source connector's offsets here, so
// that a restarted task resumes where it stopped.

// ConnectOffset is one source partition and the position reached in it, in
// Kafka Connect's terms (GET /connectors/{c}/offsets shows them as they
// are). A nil Offset in a write removes that partition's offset.
type ConnectOffset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// ConnectOffsetStore keeps source offsets durably, per connector (Connect's
// connect-offsets topic; a table here). A partition is at most 512
// characters of JSON, a connector's name 128.
type ConnectOffsetStore interface {
	// ConnectOffsets returns the connector's offsets ordered by partition;
	// none is an empty result, not an error.
	ConnectOffsets(ctx context.Context, connector string) ([]ConnectOffset, error)
	// PutConnectOffsets writes offsets, one per partition, all or none; a
	// nil Offset deletes that partition's. EINVALID for an empty
	// partition or sizes over the limits.
	PutConnectOffsets(ctx context.Context, connector string, offsets []ConnectOffset) error
	// DeleteConnectOffsets removes every offset of the connector.
	DeleteConnectOffsets(ctx context.Context, connector string) error
}

// Change is one committed change of a captured row, in the order the
// database committed them (Seq): the embedded default's change table
// (SQLite has no binlog; triggers fill it). Op is "c", "u" or "d"; Key,
// Before and After are the row's primary key and its values as JSON
// objects (Before empty for "c", After for "d"); TsMs is when the change
// was written, in Unix milliseconds.
type Change struct {
	Seq    int64
	Table  string
	Op     string
	Key    []byte
	Before []byte
	After  []byte
	TsMs   int64
}

// ChangeLogStore reads the embedded change table (sqlstore on SQLite).
type ChangeLogStore interface {
	// ReadChanges returns up to limit changes after seq, in order.
	// EINVALID for a limit that is not positive; EUNAVAILABLE on a backend
	// with no change table (MySQL: read the binlog).
	ReadChanges(ctx context.Context, after int64, limit int) ([]Change, error)
	// ChangeLogBounds returns the highest Seq no longer kept (0 when none
	// was removed) and the highest Seq written. EUNAVAILABLE as above.
	ChangeLogBounds(ctx context.Context) (purged, last int64, err error)
	// SnapshotTables reads every row of the captured tables as of one
	// instant, calling fn with each table, key and row (the JSON a Change
	// of the same data would carry), and returns the last Seq at that
	// instant: the changes after it are what the snapshot does not hold.
	// An error from fn stops the read and is returned.
	SnapshotTables(ctx context.Context, fn func(table string, key, row []byte) error) (last int64, err error)
}

// ConnectorConfig is a Kafka Connect connector's configuration and the
// state an operator asked for (RUNNING, PAUSED or STOPPED): Connect's
// connect-configs topic, a table here, so that a pause or a stop outlives
// the worker's process.
type ConnectorConfig struct {
	Name   string
	Config map[string]string
	Target string
}

// ConnectConfigStore keeps connector configurations durably. A name is at
// most 128 characters.
type ConnectConfigStore interface {
	// ConnectorConfigs returns every stored connector, by name.
	ConnectorConfigs(ctx context.Context) ([]ConnectorConfig, error)
	// PutConnectorConfig creates or replaces one; EINVALID for an empty
	// name, a target other than RUNNING, PAUSED or STOPPED, or sizes over
	// the limits.
	PutConnectorConfig(ctx context.Context, c ConnectorConfig) error
	// DeleteConnectorConfig removes one (none: no error).
	DeleteConnectorConfig(ctx context.Context, name string) error
}
