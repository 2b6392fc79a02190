package smp

import "unicode/utf8"

// Sizes of the inputs that end up in a column, checked at the edge (the
// APIs and smp ctl, through ops and the services: EINVALID, a 400) before
// anything is done, and again by every store, which refuses (never
// truncates) a longer value on every backend: one limit per input.
const (
	// MaxReason is why an action was taken (audit_log.reason,
	// order_transitions.reason).
	MaxReason = 1000
	// MaxAuditTarget is what an action was taken on (audit_log.target).
	MaxAuditTarget = 200
	// MaxGroupName and MaxTopicName size a consumer group and a topic
	// (the event log's bus_offsets.grp and bus_messages.topic).
	MaxGroupName = 128
	MaxTopicName = 128
	// MaxFlushPattern is a Redis cache flush's pattern: its audit target
	// is "redis:" and the pattern.
	MaxFlushPattern = MaxAuditTarget - len("redis:")
)

// CheckLen returns EINVALID when value is longer than max characters.
func CheckLen(name, value string, max int) error {
	if n := utf8.RuneCountInString(value); n > max {
		return Errorf(EINVALID, "%s is %d characters long, at most %d", name, n, max)
	}
	return nil
}
