package httpapi

import (
	"net/http"
	"time"

	"smp"
)

// Replication between regions (issue 21, runbook INC-012): the paths into
// this region with their lag and state, paused and resumed by ops
// (ops.SetReplicationPaused, audited). smp ctl regions calls these.

func (s *Server) regionRoutes() {
	m := s.mux
	m.HandleFunc("GET /admin/regions", s.can("regions.view", s.handleRegions))
	m.HandleFunc("POST /admin/regions/paths/{path}/pause", s.can("regions.pause", s.handleRegionPause(true)))
	m.HandleFunc("POST /admin/regions/paths/{path}/resume", s.can("regions.pause", s.handleRegionPause(false)))
}

// regionPathView is a path as smp ctl regions status shows it.
type regionPathView struct {
	Path         string    `json:"path"`
	Source       string    `json:"source"`
	Target       string    `json:"target"`
	State        string    `json:"state"`
	LagSeconds   float64   `json:"lag_seconds"`
	HeartbeatAt  time.Time `json:"heartbeat_at"`
	Reason       string    `json:"reason,omitempty"`
	SchemaNeeded int       `json:"schema_needed,omitempty"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
}

// regionHopView is a pair reached through other regions.
type regionHopView struct {
	Path        string    `json:"path"`
	Source      string    `json:"source"`
	Target      string    `json:"target"`
	Via         string    `json:"via"`
	LagSeconds  float64   `json:"lag_seconds"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

func (s *Server) pathView(p smp.ReplicationPath) regionPathView {
	state := "running"
	if p.Paused {
		state = "paused"
	}
	lag := max(s.cfg.Now().Sub(p.HeartbeatAt), 0)
	return regionPathView{Path: p.Path, Source: p.Source, Target: p.Target, State: state, LagSeconds: lag.Round(time.Millisecond).Seconds(),
		HeartbeatAt: p.HeartbeatAt, Reason: p.Reason, SchemaNeeded: p.SchemaNeeded, UpdatedBy: p.UpdatedBy}
}

// handleRegions is GET /admin/regions: this region and the paths into it
// (path, state, lag from heartbeats, why paused).
func (s *Server) handleRegions(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	st, err := s.d.Actions.ReplicationStatus(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Region string           `json:"region,omitempty"`
		Paths  []regionPathView `json:"paths"`
		// Hops are the pairs reached through other regions (heartbeats
		// mirrored onward): their lag, by the freshest way.
		Hops []regionHopView `json:"hops"`
		// Checkpoints are the source consumer groups' offsets with their
		// translation here (MirrorMaker 2's checkpoints).
		Checkpoints []smp.ReplicationGroupCheckpoint `json:"checkpoints"`
	}{Paths: []regionPathView{}, Hops: []regionHopView{}, Checkpoints: st.Checkpoints}
	if s.d.MasterData != nil {
		out.Region = s.d.MasterData.Region()
	}
	for _, rp := range st.Paths {
		out.Paths = append(out.Paths, s.pathView(rp))
	}
	for _, h := range st.Hops {
		out.Hops = append(out.Hops, regionHopView{Path: h.Path, Source: h.Source, Target: h.Target, Via: h.Via,
			LagSeconds: max(s.cfg.Now().Sub(h.HeartbeatAt), 0).Round(time.Millisecond).Seconds(), HeartbeatAt: h.HeartbeatAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRegionPause is POST /admin/regions/paths/{path}/pause|resume
// {"reason"}: the path afterwards.
func (s *Server) handleRegionPause(paused bool) func(http.ResponseWriter, *http.Request, smp.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		var req reasonRequest
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		rp, err := s.d.Actions.SetReplicationPaused(r.Context(), p, r.PathValue("path"), paused, req.Reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.pathView(rp))
	}
}
