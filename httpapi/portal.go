package httpapi

import (
	"context"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"smp"
	"smp/auth"
	"smp/dispatch"
	"smp/integrations"
	"smp/orders"
	"smp/status"
	"smp/webui"
)

// can wraps h with authentication and the permission's role check
// (auth.Permissions; an unknown permission panics when routes are built).
func (s *Server) can(perm string, h adminHandler) http.HandlerFunc {
	auth.Roles(perm)
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r)
		if err == nil {
			err = auth.Check(p, perm)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, p)
	}
}

func (s *Server) portalRoutes() {
	m := s.mux
	files := http.FileServerFS(webui.Static)
	m.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		http.ServeFileFS(w, r, webui.Static, "index.html")
	})
	m.Handle("GET /admin/ui/", http.StripPrefix("/admin/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the portal's files: anything else (a directory included) is
		// the JSON 404 of every other route, not the file server's text.
		if st, err := fs.Stat(webui.Static, strings.TrimPrefix(r.URL.Path, "/")); err != nil || st.IsDir() {
			s.writeError(w, r, smp.Errorf(smp.ENOTFOUND, "no file %s in the admin portal", path.Join("/admin/ui", r.URL.Path)))
			return
		}
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	m.HandleFunc("GET /admin/me", s.can("view", s.handleMe))
	m.HandleFunc("GET /admin/dashboard", s.can("view", s.handleDashboard))
	if s.d.Status != nil {
		m.HandleFunc("GET /status", s.handleStatusPage)
		m.HandleFunc("GET /status.json", s.handleStatusJSON)
		m.HandleFunc("GET /admin/status", s.can("view", func(w http.ResponseWriter, r *http.Request, _ smp.Principal) { s.handleStatusJSON(w, r) }))
		m.HandleFunc("PUT /admin/status/components/{id}", s.can("status.set", s.handleSetStatus))
		if s.d.PublicAPI {
			m.HandleFunc("GET /v1/banners", s.handleBanners)
		}
	}
}

// securityHeaders: the portal runs only its own scripts and styles.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// handleMe is GET /admin/me: who the token belongs to and what it may do.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "role": p.Role, "can": auth.Can(p)})
}

// Sample is one point of the dashboard's latency history.
type Sample struct {
	At              time.Time `json:"at"`
	DispatchP50Ms   float64   `json:"dispatch_p50_ms"`
	DispatchP99Ms   float64   `json:"dispatch_p99_ms"`
	FirstOfferP50Ms float64   `json:"first_offer_p50_ms"`
	FirstOfferP99Ms float64   `json:"first_offer_p99_ms"`
}

// history keeps the last samples of the dashboard's time series.
type history struct {
	mu      sync.Mutex
	samples []Sample
	max     int
}

func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.max {
		h.samples = slices.Delete(h.samples, 0, len(h.samples)-h.max)
	}
}

func (h *history) all() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.samples)
}

// sample records the engine's figures every interval until ctx ends.
func (s *Server) sample(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sampleOnce()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOnce reads only the engine's in-memory latency windows: it runs
// whether or not anyone watches, so it must cost no I/O.
func (s *Server) sampleOnce() {
	if s.d.Engine == nil {
		return
	}
	d, f := s.d.Engine.Latencies()
	s.hist.add(Sample{At: s.cfg.Now().UTC(), DispatchP50Ms: d.P50, DispatchP99Ms: d.P99, FirstOfferP50Ms: f.P50, FirstOfferP99Ms: f.P99})
}

// Dashboard is GET /admin/dashboard: everything the portal's first screen
// shows. Each part is gathered on its own: one unavailable backend shows
// as an error beside the others, never as a failed dashboard.
type Dashboard struct {
	At          time.Time             `json:"at"`
	Engine      *dispatch.Stats       `json:"engine"`
	Breakers    []integrations.Status `json:"breakers"`
	Webhooks    map[string]int64      `json:"webhook_events"`
	BusDLQ      map[string]int64      `json:"bus_dlq"`
	ConsumerLag map[string]int64      `json:"consumer_lag"`
	Replica     map[string]any        `json:"replica"`
	Alerts      []*smp.Alert          `json:"alerts_firing"`
	Status      *status.Page          `json:"status,omitempty"`
	History     []Sample              `json:"history"`
	Errors      map[string]string     `json:"errors"`
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	d := Dashboard{At: s.cfg.Now().UTC(), Breakers: []integrations.Status{}, Webhooks: map[string]int64{}, BusDLQ: map[string]int64{},
		ConsumerLag: map[string]int64{}, Alerts: []*smp.Alert{}, History: s.hist.all(), Errors: map[string]string{}}
	fail := func(part string, err error) { d.Errors[part] = smp.ErrorMessage(err) }
	if s.d.Engine != nil {
		if st, err := s.stats(ctx); err != nil {
			fail("engine", err)
		} else {
			d.Engine = &st
		}
	} else {
		d.Errors["engine"] = "the dispatch engine does not run in this process"
	}
	for _, c := range s.clients() {
		d.Breakers = append(d.Breakers, c.Status())
	}
	if n, err := s.d.Store.CountInboxEvents(ctx); err != nil {
		fail("webhook_events", err)
	} else {
		for st, c := range n {
			d.Webhooks[string(st)] = c
		}
	}
	if b := s.d.Ops.BusAdmin; b != nil {
		topics := []string{smp.TopicOrders, smp.TopicPayments, smp.TopicPartners}
		var dlqs []string
		for _, t := range topics {
			dlqs = append(dlqs, t+smp.DLQSuffix)
		}
		if offs, err := b.Offsets(ctx, dispatch.ConsumerGroup, dlqs); err != nil {
			fail("bus_dlq", err)
		} else {
			for _, o := range offs {
				d.BusDLQ[o.Topic] += o.End - o.Start
			}
		}
		for _, g := range []string{orders.ConsumerGroup, dispatch.ConsumerGroup} {
			offs, err := b.Offsets(ctx, g, topics)
			if err != nil {
				fail("consumer_lag", err)
				break
			}
			var lag int64
			for _, o := range offs {
				lag += o.Lag
			}
			d.ConsumerLag[g] = lag
		}
	}
	d.Replica = s.replicaView()
	if as, err := s.d.Store.FindAlerts(ctx, "firing", 50); err != nil {
		fail("alerts", err)
	} else if as != nil {
		d.Alerts = as
	}
	if s.d.Status != nil {
		if p, err := s.d.Status.Page(ctx); err != nil {
			fail("status", err)
		} else {
			d.Status = &p
		}
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleStatusJSON(w http.ResponseWriter, r *http.Request) {
	p, err := s.d.Status.Page(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, p)
}

// pageLang is ?lang=vi|en, else Accept-Language; EINVALID for another lang.
func pageLang(r *http.Request) (string, error) {
	switch l := r.URL.Query().Get("lang"); l {
	case "vi", "en":
		return l, nil
	case "":
		return lang(r), nil
	}
	return "", smp.Errorf(smp.EINVALID, "lang must be vi or en")
}

// handleStatusPage is GET /status: HTML, or JSON for Accept: application/json.
func (s *Server) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	l, err := pageLang(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Header.Get("Accept") == "application/json" {
		s.handleStatusJSON(w, r)
		return
	}
	p, err := s.d.Status.Page(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if err := webui.StatusPage.Execute(w, map[string]any{"Lang": l, "Page": p, "Banners": status.Banners(p, l)}); err != nil {
		s.log.Debug("status page: write", "err", err)
	}
}

// handleBanners is GET /v1/banners[?lang=vi|en]: the in-app banners.
func (s *Server) handleBanners(w http.ResponseWriter, r *http.Request) {
	l, err := pageLang(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.d.Status.Page(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "max-age=15")
	writeJSON(w, http.StatusOK, map[string]any{"banners": status.Banners(p, l)})
}

type setStatusRequest struct {
	State   smp.ComponentState `json:"state"`
	Message string             `json:"message"`
	Reason  string             `json:"reason"`
}

// handleSetStatus is PUT /admin/status/components/{id} (ops role, audited).
func (s *Server) handleSetStatus(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req setStatusRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	cs, err := s.d.Actions.SetComponentStatus(r.Context(), p, r.PathValue("id"), req.State, req.Message, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

// stuckOrders serves GET /admin/orders?stuck_after=SECONDS: orders still
// waiting for a technician (01 or 02) whose stage changed longer ago,
// oldest first.
func (s *Server) stuckOrders(ctx context.Context, after time.Duration, city string, limit int) ([]*smp.Order, error) {
	var out []*smp.Order
	for _, st := range []smp.Stage{smp.StageCreated, smp.StageDispatching} {
		os, err := s.d.Store.FindOrders(ctx, smp.OrderFilter{Stage: st, City: city, ChangedBefore: s.cfg.Now().Add(-after), Limit: limit})
		if err != nil {
			return nil, err
		}
		out = append(out, os...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StageChangedAt.Before(out[j].StageChangedAt) })
	return out[:min(len(out), limit)], nil
}

func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n > 7*24*3600 {
		return 0, smp.Errorf(smp.EINVALID, "%q is not a number of seconds", v)
	}
	return time.Duration(n * float64(time.Second)), nil
}
