package httpapi

import (
	"net/http"

	"smp"
)

// Master data (issue 21): countries, currencies, currency_rates,
// tax_configs and i18n_translations, read in every region and written in
// the owner region (ops.PutMasterData: audited, with its event on
// masterdata.<table>).

func (s *Server) masterDataRoutes() {
	if s.d.MasterData == nil {
		return
	}
	m := s.mux
	m.HandleFunc("GET /admin/masterdata", s.can("masterdata.view", s.handleMasterTables))
	m.HandleFunc("GET /admin/masterdata/{table}", s.can("masterdata.view", s.handleMasterRecords))
	m.HandleFunc("GET /admin/masterdata/{table}/{key...}", s.can("masterdata.view", s.handleMasterRecord))
	m.HandleFunc("PUT /admin/masterdata/{table}", s.can("masterdata.write", s.handlePutMasterRecord))
}

type masterTableView struct {
	Name   string   `json:"name"`
	Key    []string `json:"key"`
	Fields []string `json:"fields"`
	Topic  string   `json:"topic"`
}

// handleMasterTables is GET /admin/masterdata: this region, the owner
// region and the tables.
func (s *Server) handleMasterTables(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	out := struct {
		Region string            `json:"region"`
		Owner  string            `json:"master_region"`
		Tables []masterTableView `json:"tables"`
	}{Region: s.d.MasterData.Region(), Owner: s.d.MasterData.Owner()}
	for _, t := range smp.MasterTables {
		v := masterTableView{Name: t.Name, Key: t.Key, Topic: t.Topic()}
		for _, f := range t.Fields {
			v.Fields = append(v.Fields, f.Name)
		}
		out.Tables = append(out.Tables, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMasterRecords is GET /admin/masterdata/{table}?after=KEY&limit=N
// (1..1000, 100): rows by key, and next when more may follow.
func (s *Server) handleMasterRecords(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recs, err := s.d.MasterData.List(r.Context(), smp.MasterDataFilter{Table: r.PathValue("table"), After: r.URL.Query().Get("after"), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Records []smp.MasterRecord `json:"records"`
		Next    string             `json:"next,omitempty"`
	}{Records: recs}
	if out.Records == nil {
		out.Records = []smp.MasterRecord{}
	}
	if len(recs) == limit {
		out.Next = recs[len(recs)-1].Key
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMasterRecord is GET /admin/masterdata/{table}/{key} (a key of
// several fields is joined by /: USD/VND/2026-12-01).
func (s *Server) handleMasterRecord(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	rec, err := s.d.MasterData.Find(r.Context(), r.PathValue("table"), r.PathValue("key"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

type masterPutRequest struct {
	Fields map[string]string `json:"fields"`
	Reason string            `json:"reason"`
}

// handlePutMasterRecord is PUT /admin/masterdata/{table} {"fields": {...
// every field of the table ...}, "reason"}: the row at its new version.
func (s *Server) handlePutMasterRecord(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req masterPutRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.d.Actions.PutMasterData(r.Context(), p, r.PathValue("table"), req.Fields, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}
