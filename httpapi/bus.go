package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"smp"
	"smp/internal/delivery"
)

// Ops is what the admin API needs of the platform's backends beyond the
// store: the event bus's admin side and the database's read routing.
type Ops struct {
	Bus      smp.EventBus
	BusAdmin smp.BusAdmin
	// Replica reports the replica's lag; ok is false without a replica.
	Replica func() (lag time.Duration, reachable, ok bool)
	// ReadTarget says where lag-tolerant reads go: sqlite, primary or replica.
	ReadTarget func() string
	// FlushCache deletes cache keys matching a safe pattern (EINVALID for
	// patterns that could touch sessions, locks or dispatch keys); nil
	// without Redis.
	FlushCache func(ctx context.Context, pattern string, dryRun bool) (int64, error)
}

type flushRequest struct {
	Pattern string `json:"pattern"`
	DryRun  bool   `json:"dry_run"`
	Reason  string `json:"reason"`
}

// handleFlushCache is POST /admin/redis/flush-cache (admin role, audited):
// the runbook's INC-004 option A, with SCAN + UNLINK and only cache:* patterns.
func (s *Server) handleFlushCache(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	if s.d.Ops.FlushCache == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "no Redis in this deployment"))
		return
	}
	var req flushRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !req.DryRun && len(strings.TrimSpace(req.Reason)) < 3 {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "reason is required (a dry run needs none)"))
		return
	}
	n, err := s.d.Ops.FlushCache(r.Context(), req.Pattern, req.DryRun)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !req.DryRun {
		if err := s.audit(r, p, "redis.flush_cache", "redis:"+req.Pattern, "", fmt.Sprintf(`{"deleted":%d}`, n), req.Reason); err != nil {
			s.writeError(w, r, err)
			return
		}
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
	out := []delivery.View{}
	for _, m := range msgs {
		out = append(out, delivery.ViewOf(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "dead_letters": out})
}

type dlqReplayRequest struct {
	Topic   string   `json:"topic"`
	Offsets []string `json:"offsets"` // "partition:offset"
	All     bool     `json:"all"`
	Reason  string   `json:"reason"`
}

// handleDLQReplay is POST /admin/bus/dlq/replay (admin role, audited):
// dead letters go back on their topic; consumers dedupe by event id.
func (s *Server) handleDLQReplay(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	if !s.busAdmin(w, r) {
		return
	}
	var req dlqReplayRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case !strings.HasSuffix(req.Topic, smp.DLQSuffix):
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "topic %q is not a dead-letter topic", req.Topic))
		return
	case req.All == (len(req.Offsets) > 0):
		s.writeError(w, r, smp.Errorf(smp.EINVALID, `give offsets ["partition:offset", ...] or all`))
		return
	case len(strings.TrimSpace(req.Reason)) < 3:
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "reason is required"))
		return
	}
	msgs, err := s.d.Ops.BusAdmin.Read(r.Context(), req.Topic, 100000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, missing := delivery.SelectReplays(msgs, req.Topic, req.Offsets, req.All)
	if len(missing) > 0 {
		s.writeError(w, r, smp.Errorf(smp.ENOTFOUND, "no dead letter at %s in %s", strings.Join(missing, ", "), req.Topic))
		return
	}
	if err := s.audit(r, p, "bus.dlq_replay", "topic:"+req.Topic, "", fmt.Sprintf(`{"replayed":%d}`, len(out)), req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.d.Ops.Bus.Publish(r.Context(), out...); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": len(out)})
}

type resetOffsetsRequest struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    *int64 `json:"offset"`
	Reason    string `json:"reason"`
}

// handleResetOffsets is POST /admin/bus/reset-offsets (admin role,
// audited): the runbook's kafka-consumer-groups --reset-offsets. The
// group's members must be stopped.
func (s *Server) handleResetOffsets(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	if !s.busAdmin(w, r) {
		return
	}
	var req resetOffsetsRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Group == "" || req.Topic == "" || req.Offset == nil || len(strings.TrimSpace(req.Reason)) < 3 {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "group, topic, partition, offset and reason are required"))
		return
	}
	if err := s.d.Ops.BusAdmin.ResetOffset(r.Context(), req.Group, req.Topic, req.Partition, *req.Offset); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.audit(r, p, "bus.reset_offsets", "group:"+req.Group, "", fmt.Sprintf(`{"topic":%q,"partition":%d,"offset":%d}`, req.Topic, req.Partition, *req.Offset), req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": req.Group, "topic": req.Topic, "partition": req.Partition, "offset": *req.Offset})
}

// audit records a manual action that is not a change of an order or of money.
func (s *Server) audit(r *http.Request, p smp.Principal, action, target, before, after, reason string) error {
	return s.d.Store.InTx(r.Context(), func(tx smp.Tx) error {
		return tx.AddAudit(r.Context(), smp.AuditEntry{At: time.Now().UTC(), Actor: p.Name, Role: p.Role, Action: action, Target: target,
			Before: before, After: after, Reason: reason})
	})
}
