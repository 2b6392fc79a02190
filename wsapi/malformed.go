package wsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// knownTypes are the client message types handle answers.
var knownTypes = map[string]bool{"heartbeat": true, "availability": true, "location": true, "ack": true, "accept": true, "decline": true}

// parseClientMessage decodes one client frame. A malformed one (binary,
// not a JSON object, a field of the wrong type) is an error that says
// what is wrong, with the message's ref when one could be read, so the
// app can match the error to what it sent.
func parseClientMessage(typ websocket.MessageType, data []byte) (ClientMessage, string, error) {
	var m ClientMessage
	if typ != websocket.MessageText {
		return m, "", errors.New("messages are JSON text frames, not binary")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		var probe struct {
			Ref any `json:"ref"`
		}
		ref := ""
		if json.Unmarshal(data, &probe) == nil {
			ref, _ = probe.Ref.(string)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return m, ref, fmt.Errorf("field %q must be a JSON %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return m, ref, errors.New("not a JSON object")
	}
	if m.Type == "" {
		return m, m.Ref, errors.New(`"type" is required`)
	}
	return m, m.Ref, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64", "float32", "int", "int64":
		return "number"
	case "ptr", "bool":
		return "boolean"
	}
	return goKind
}

// malformed counts a connection's malformed messages within a minute.
type malformed struct {
	since time.Time
	n     int
}

// add counts one more at now and reports whether the minute's budget
// (max) is exceeded.
func (b *malformed) add(now time.Time, max int) bool {
	if b.since.IsZero() || now.Sub(b.since) >= time.Minute {
		b.since, b.n = now, 0
	}
	b.n++
	return b.n > max
}

// replacements is how often one technician's newer connection replaced an
// older one since the last log line about it.
type replacements struct {
	logged time.Time
	n      int
}

// noteReplacedLocked records that techID opened a connection while one
// was open (the older one is closed: a technician keeps one). An app
// reconnecting in a loop is logged once a minute at WARN with the count,
// not at every attempt. h.mu must be held.
func (h *Hub) noteReplacedLocked(techID string) {
	now := h.cfg.Now()
	r := h.replaced[techID]
	if r == nil {
		if len(h.replaced) > 10000 {
			clear(h.replaced) // bounded: only the log's rate depends on it
		}
		r = &replacements{}
		h.replaced[techID] = r
	}
	r.n++
	if !r.logged.IsZero() && now.Sub(r.logged) < time.Minute {
		return
	}
	h.cfg.Logger.Warn("ws: technician opened another connection; the older one is closed (a technician keeps one)", "technician_id", techID, "replaced", r.n)
	r.logged, r.n = now, 0
}
