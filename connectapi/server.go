// Package connectapi serves a connect.Worker as Kafka Connect's REST API
// (the paths, JSON shapes and status codes of Apache Kafka Connect, errors
// as {"error_code","message"}), on its own listener (:8083). Unlike
// Connect's open default every call needs an admin bearer token: reads the
// connect.view permission, changes connect.manage (auth.Permissions).
package connectapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smp"
	"smp/auth"
	"smp/connect"
	"smp/internal/startstop"
)

// Version is what GET / reports as the Connect version it speaks.
const Version = "3.9.0"

// Config configures the server.
type Config struct {
	// Addr is where it listens (":8083"); "127.0.0.1:0" picks a port.
	Addr   string
	Worker *connect.Worker
	// Auth resolves admin tokens.
	Auth   *auth.Authenticator
	Logger *slog.Logger
	// Gatherer, when set, is served on GET /metrics (as the platform's
	// API serves it: without a token), so that a process running only the
	// worker (smp connect) is scraped for kafka_connect_connector_status.
	Gatherer prometheus.Gatherer
}

// Server is the REST API's HTTP server. Start binds synchronously.
type Server struct {
	startstop.Base
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	srv  *http.Server
	addr string
}

// New returns the server, not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Worker == nil || cfg.Auth == nil {
		return nil, errors.New("connectapi: Worker and Auth are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("service", "kafka-connect"), mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// Handler returns the API's handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on Addr and serves until Stop.
func (s *Server) Start(ctx context.Context) error {
	if _, ok := s.StartInit(ctx); !ok {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Abort()
		return err
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	srv := s.srv
	s.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("kafka-connect server", "err", err)
		}
	})
	s.MarkStarted()
	return nil
}

// Stop shuts the server down within ctx.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv != nil {
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	}
	return s.Base.Stop(ctx)
}

// URL is the base URL once started.
func (s *Server) URL() string { return "http://" + s.addr }

func (s *Server) routes() {
	view, manage := "connect.view", "connect.manage"
	s.handle("GET /{$}", view, s.root)
	s.handle("GET /connectors", view, s.list)
	s.handle("POST /connectors", manage, s.create)
	s.handle("GET /connectors/{c}", view, s.info)
	s.handle("DELETE /connectors/{c}", manage, s.delete)
	s.handle("GET /connectors/{c}/config", view, s.config)
	s.handle("PUT /connectors/{c}/config", manage, s.putConfig)
	s.handle("GET /connectors/{c}/status", view, s.status)
	s.handle("GET /connectors/{c}/tasks/{t}/status", view, s.taskStatus)
	s.handle("POST /connectors/{c}/restart", manage, s.restart)
	s.handle("POST /connectors/{c}/tasks/{t}/restart", manage, s.restartTask)
	s.handle("PUT /connectors/{c}/pause", manage, s.pause)
	s.handle("PUT /connectors/{c}/resume", manage, s.resume)
	s.handle("PUT /connectors/{c}/stop", manage, s.stop)
	s.handle("GET /connectors/{c}/offsets", view, s.offsets)
	s.handle("PATCH /connectors/{c}/offsets", manage, s.alterOffsets)
	s.handle("DELETE /connectors/{c}/offsets", manage, s.resetOffsets)
	if s.cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "HTTP 404 Not Found")
	})
}

// handle registers a route behind an admin token allowed perm.
func (s *Server) handle(pattern, perm string, h http.HandlerFunc) {
	auth.Roles(perm) // panics at start for a permission not in the table
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("kafka-connect handler panicked", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := s.cfg.Auth.Admin(r.Context(), token)
		if err == nil {
			err = auth.Check(p, perm)
		}
		if err != nil {
			s.fail(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		h(w, r)
	})
}

// status maps smp error codes to the statuses Connect answers.
func status(err error) int {
	switch smp.ErrorCode(err) {
	case smp.ENOTFOUND:
		return http.StatusNotFound
	case smp.EINVALID:
		return http.StatusBadRequest
	case smp.ECONFLICT:
		return http.StatusConflict
	case smp.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case smp.EFORBIDDEN:
		return http.StatusForbidden
	case smp.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	code := status(err)
	msg := smp.ErrorMessage(err)
	if code == http.StatusInternalServerError {
		s.log.Error("kafka-connect request failed", "err", err)
	}
	writeError(w, code, msg)
}

// Error is Connect's error body.
type Error struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{ErrorCode: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return smp.Errorf(smp.EINVALID, "Request body is not valid JSON: %v", err)
	}
	return nil
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": Version, "commit": "smp", "kafka_cluster_id": "smp"})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Worker.Connectors())
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.Name == "" || body.Config == nil {
		s.fail(w, smp.Errorf(smp.EINVALID, "Connector name and config must both be given"))
		return
	}
	if _, err := s.cfg.Worker.Config(body.Name); err == nil {
		s.fail(w, smp.Errorf(smp.ECONFLICT, "Connector %s already exists", body.Name))
		return
	}
	info, _, err := s.cfg.Worker.PutConfig(body.Name, body.Config)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.cfg.Worker.Config(r.PathValue("c"))
	if err != nil {
		s.fail(w, err)
		return
	}
	st, err := s.cfg.Worker.Status(r.PathValue("c"))
	if err != nil {
		s.fail(w, err)
		return
	}
	info := connect.Info{Name: st.Name, Config: cfg, Tasks: []connect.TaskID{}, Type: st.Type}
	for _, t := range st.Tasks {
		info.Tasks = append(info.Tasks, connect.TaskID{Connector: st.Name, Task: t.ID})
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Worker.Delete(r.PathValue("c")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.cfg.Worker.Config(r.PathValue("c"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var cfg map[string]string
	if err := decode(r, &cfg); err != nil {
		s.fail(w, err)
		return
	}
	info, created, err := s.cfg.Worker.PutConfig(r.PathValue("c"), cfg)
	if err != nil {
		s.fail(w, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, info)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Worker.Status(r.PathValue("c"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func taskID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("t"))
	if err != nil {
		return 0, smp.Errorf(smp.ENOTFOUND, "Task %s-%s not found", r.PathValue("c"), r.PathValue("t"))
	}
	return id, nil
}

func (s *Server) taskStatus(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	st, err := s.cfg.Worker.TaskStatus(r.PathValue("c"), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, smp.Errorf(smp.EINVALID, "%s must be true or false", name)
	}
	return b, nil
}

// restart: without includeTasks and onlyFailed Connect restarts the
// connector instance and answers 204; with either, 202 and the status in
// which what restarts shows RESTARTING.
func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	includeTasks, err := boolParam(r, "includeTasks")
	if err != nil {
		s.fail(w, err)
		return
	}
	onlyFailed, err := boolParam(r, "onlyFailed")
	if err != nil {
		s.fail(w, err)
		return
	}
	st, err := s.cfg.Worker.Restart(r.PathValue("c"), includeTasks, onlyFailed)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !includeTasks && !onlyFailed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) restartTask(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err == nil {
		err = s.cfg.Worker.RestartTask(r.PathValue("c"), id)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.target(w, s.cfg.Worker.Pause(r.PathValue("c")), http.StatusAccepted)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	s.target(w, s.cfg.Worker.Resume(r.PathValue("c")), http.StatusAccepted)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.target(w, s.cfg.Worker.StopConnector(r.PathValue("c")), http.StatusNoContent)
}

func (s *Server) target(w http.ResponseWriter, err error, code int) {
	if err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(code)
}

// offsetsBody is Connect's offsets document.
type offsetsBody struct {
	Offsets []connect.Offset `json:"offsets"`
}

func (s *Server) offsets(w http.ResponseWriter, r *http.Request) {
	offs, err := s.cfg.Worker.Offsets(r.Context(), r.PathValue("c"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if offs == nil {
		offs = []connect.Offset{}
	}
	writeJSON(w, http.StatusOK, offsetsBody{Offsets: offs})
}

func (s *Server) alterOffsets(w http.ResponseWriter, r *http.Request) {
	var body offsetsBody
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.Offsets == nil {
		s.fail(w, smp.Errorf(smp.EINVALID, "Offsets must be specified and may not be empty"))
		return
	}
	if err := s.cfg.Worker.AlterOffsets(r.Context(), r.PathValue("c"), body.Offsets); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "The offsets for this connector have been altered successfully"})
}

func (s *Server) resetOffsets(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Worker.ResetOffsets(r.Context(), r.PathValue("c")); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "The offsets for this connector have been reset successfully"})
}
