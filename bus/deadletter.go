package bus

import (
	"fmt"
	"strconv"
	"strings"

	"smp"
)

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
// headers without the dlq.* ones, marked with where it came from and for
// the group that dead-lettered it (the only one that handles it again).
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
	if g := m.Headers[smp.HeaderDLQGroup]; g != "" {
		r.Headers[smp.HeaderReplayFor] = g
	}
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
