package httpapi

import (
	"net/http"
	"strings"
	"time"

	"smp"
	"smp/bus"
	"smp/ops"
)

// Ops is what the admin API reads of the platform's backends beyond the
// store: the event bus's admin side (lag, dead letters) and the database's
// read routing. (What it changes goes through Deps.Actions.)
type Ops struct {
	BusAdmin smp.BusAdmin
	// Replica reports the replica's lag; ok is false without a replica.
	Replica func() (lag time.Duration, reachable, ok bool)
	// ReadTarget says where lag-tolerant reads go: sqlite, primary or replica.
	ReadTarget func() string
}

type flushRequest struct {
	Pattern string `json:"pattern"`
	DryRun  bool   `json:"dry_run"`
	Reason  string `json:"reason"`
}

// handleFlushCache is POST /admin/redis/flush-cache: the runbook's INC-004
// option A (ops.FlushCache).
func (s *Server) handleFlushCache(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req flushRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.d.Actions.FlushCache(r.Context(), p, req.Pattern, req.DryRun, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pattern": req.Pattern, "dry_run": req.DryRun, "keys": n})
}

// replicaView is the replica's state for ops: where reads go, and the
// replica's lag when there is one.
func (s *Server) replicaView() map[string]any {
	out := map[string]any{"reads": "unknown", "configured": false}
	if s.d.Ops.ReadTarget != nil {
		out["reads"] = s.d.Ops.ReadTarget()
	}
	if s.d.Ops.Replica != nil {
		if lag, reachable, ok := s.d.Ops.Replica(); ok {
			out["configured"], out["reachable"], out["lag_seconds"] = true, reachable, lag.Seconds()
		}
	}
	return out
}

// handleReplica is GET /admin/replica (INC-003).
func (s *Server) handleReplica(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	writeJSON(w, http.StatusOK, s.replicaView())
}

func (s *Server) busAdmin(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Ops.BusAdmin == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "no event bus in this process"))
		return false
	}
	return true
}

// handleBusLag is GET /admin/bus/lag?group=dispatch-engine[&topic=orders.events] (INC-007).
func (s *Server) handleBusLag(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.busAdmin(w, r) {
		return
	}
	group, topic := r.URL.Query().Get("group"), r.URL.Query().Get("topic")
	if group == "" {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "group is required"))
		return
	}
	if topic == "" {
		topic = smp.TopicOrders
	}
	offs, err := s.d.Ops.BusAdmin.Offsets(r.Context(), group, []string{topic})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var total int64
	for _, o := range offs {
		total += o.Lag
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": group, "topic": topic, "partitions": offs, "total_lag": total})
}

// handleDLQ is GET /admin/bus/dlq?topic=orders.events.dlq&max=10.
func (s *Server) handleDLQ(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.busAdmin(w, r) {
		return
	}
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		topic = smp.TopicOrders + smp.DLQSuffix
	}
	if !strings.HasSuffix(topic, smp.DLQSuffix) {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "topic %q is not a dead-letter topic", topic))
		return
	}
	max, err := atoi(r.URL.Query().Get("max"), 10)
	if err != nil || max < 1 || max > 10000 {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "max must be between 1 and 10000"))
		return
	}
	msgs, err := s.d.Ops.BusAdmin.Read(r.Context(), topic, max)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []bus.View{}
	for _, m := range msgs {
		out = append(out, bus.ViewOf(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "dead_letters": out})
}

type dlqReplayRequest struct {
	Topic   string   `json:"topic"`
	Offsets []string `json:"offsets"` // "partition:offset"
	All     bool     `json:"all"`
	Reason  string   `json:"reason"`
}

// handleDLQReplay is POST /admin/bus/dlq/replay: dead letters go back on
// their topic (ops.ReplayDeadLetters).
func (s *Server) handleDLQReplay(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req dlqReplayRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.d.Actions.ReplayDeadLetters(r.Context(), p, ops.DLQReplay{Topic: req.Topic, Offsets: req.Offsets, All: req.All}, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": n})
}

type resetOffsetsRequest struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    *int64 `json:"offset"`
	Reason    string `json:"reason"`
}

// handleResetOffsets is POST /admin/bus/reset-offsets: the runbook's
// kafka-consumer-groups --reset-offsets (ops.ResetOffset). The group's
// members must be stopped.
func (s *Server) handleResetOffsets(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req resetOffsetsRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	off := int64(-1) // absent: refused as missing
	if req.Offset != nil {
		off = *req.Offset
	}
	if err := s.d.Actions.ResetOffset(r.Context(), p, ops.OffsetReset{Group: req.Group, Topic: req.Topic, Partition: req.Partition, Offset: off}, req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": req.Group, "topic": req.Topic, "partition": req.Partition, "offset": off})
}
