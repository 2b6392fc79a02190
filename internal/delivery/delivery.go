// Package delivery is what both event buses do with a delivered message:
// run the handler, retry it with backoff, and after MaxAttempts turn it
// into a dead letter on <topic>.dlq so its partition keeps flowing.
package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"smp"
)

// Policy is how often and how patiently a message is retried.
type Policy struct {
	MaxAttempts  int
	RetryBackoff time.Duration // doubled after each attempt, up to 5 s
}

// Run delivers m to h until h succeeds or MaxAttempts fail; then it
// publishes the dead letter with publish (retrying until ctx ends). It
// returns false only if ctx ended first, in which case m is not done and
// must not be committed.
func Run(ctx context.Context, log *slog.Logger, p Policy, group string, m smp.Message, h smp.Handler, publish func(context.Context, smp.Message) error) bool {
	backoff := p.RetryBackoff
	var err error
	for attempt := 1; attempt <= p.MaxAttempts; attempt++ {
		if err = h(ctx, m); err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("event handler failed", "group", group, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "attempt", attempt, "err", err)
		if attempt < p.MaxAttempts {
			if !smp.Sleep(ctx, backoff) {
				return false
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	dlq := DeadLetter(m, group, err.Error(), p.MaxAttempts)
	for ctx.Err() == nil {
		perr := publish(ctx, dlq)
		if perr == nil {
			log.Error("event dead-lettered", "group", group, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", dlq.Topic, "err", err)
			return true
		}
		log.Warn("dead-letter publish failed; retrying", "dlq", dlq.Topic, "err", perr)
		smp.Sleep(ctx, time.Second)
	}
	return false
}

// DeadLetter is m as it goes to <topic>.dlq: same key and value, its
// headers plus why, by whom and from where it was given up.
func DeadLetter(m smp.Message, group, reason string, attempts int) smp.Message {
	d := smp.Message{Topic: m.Topic + smp.DLQSuffix, Key: m.Key, Value: m.Value, Headers: map[string]string{}}
	for k, v := range m.Headers {
		d.Headers[k] = v
	}
	d.Headers[smp.HeaderDLQReason] = reason
	d.Headers[smp.HeaderDLQGroup] = group
	d.Headers[smp.HeaderDLQTopic] = m.Topic
	d.Headers[smp.HeaderDLQPartition] = strconv.Itoa(int(m.Partition))
	d.Headers[smp.HeaderDLQOffset] = strconv.FormatInt(m.Offset, 10)
	d.Headers[smp.HeaderDLQAttempts] = strconv.Itoa(attempts)
	return d
}

// Replayed is a dead letter put back on its original topic: its own
// headers without the dlq.* ones, marked with where it came from.
func Replayed(dlqTopic string, m smp.Message) smp.Message {
	orig := m.Headers[smp.HeaderDLQTopic]
	if orig == "" {
		orig = strings.TrimSuffix(dlqTopic, smp.DLQSuffix)
	}
	r := smp.Message{Topic: orig, Key: m.Key, Value: m.Value, Headers: map[string]string{}}
	for k, v := range m.Headers {
		if !strings.HasPrefix(k, "dlq.") {
			r.Headers[k] = v
		}
	}
	r.Headers[smp.HeaderReplayedFrom] = fmt.Sprintf("%s/%d/%d", dlqTopic, m.Partition, m.Offset)
	return r
}

// View is a dead letter as ops read it.
type View struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Group     string            `json:"group"`
	Reason    string            `json:"reason"`
	From      string            `json:"from"` // topic:partition@offset it was given up at
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

// ViewOf describes a dead letter.
func ViewOf(m smp.Message) View {
	return View{m.Partition, m.Offset, m.Key, m.Headers[smp.HeaderDLQGroup], m.Headers[smp.HeaderDLQReason],
		m.Headers[smp.HeaderDLQTopic] + ":" + m.Headers[smp.HeaderDLQPartition] + "@" + m.Headers[smp.HeaderDLQOffset], string(m.Value), m.Headers}
}

// SelectReplays picks the dead letters of dlqTopic to put back: all of
// them, or those at offsets ("partition:offset"); missing lists offsets
// that hold no dead letter.
func SelectReplays(letters []smp.Message, dlqTopic string, offsets []string, all bool) (out []smp.Message, missing []string) {
	want := map[string]bool{}
	for _, o := range offsets {
		want[o] = true
	}
	for _, m := range letters {
		id := fmt.Sprintf("%d:%d", m.Partition, m.Offset)
		if all || want[id] {
			delete(want, id)
			out = append(out, Replayed(dlqTopic, m))
		}
	}
	for _, o := range offsets {
		if want[o] {
			missing = append(missing, o)
		}
	}
	return out, missing
}
