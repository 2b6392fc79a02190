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
